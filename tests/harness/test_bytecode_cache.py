# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/bytecode-cache/sitecustomize.py: code imported from a zip (as an
AnsiballZ module task imports it) is compiled once and then loaded from the
cache, under the new zip's file names; changed source is compiled again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
HOOK_DIR = os.path.join(HERE, "..", "bytecode-cache")

# The hook replaces zipimport._compile_source; a probe counts the compiles it
# lets through by wrapping the original it keeps.
RUN = r"""
import json, sys, zipimport
hook = sys.modules["sitecustomize"]
compiled = []
original = hook._compile_source
def counting(pathname, source):
    compiled.append(pathname.rsplit("/", 1)[-1])
    return original(pathname, source)
hook._compile_source = counting
sys.path.insert(0, sys.argv[1])
import payload
import traceback
try:
    payload.fail()
except ValueError:
    frame = traceback.extract_tb(sys.exc_info()[2])[-1].filename
print(json.dumps({"answer": payload.answer(), "compiled": compiled, "hooked": zipimport._compile_source.__name__,
                  "file": payload.answer.__code__.co_filename, "traceback_file": frame}))
"""


def make_zip(path, source):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("payload.py", source)
    return path


def run(zip_path, cache):
    env = dict(os.environ, PYTHONPATH=HOOK_DIR, PITCOPY_ZIPIMPORT_CACHE=str(cache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run([sys.executable, "-c", RUN, str(zip_path)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, check=True, universal_newlines=True).stdout
    return json.loads(out)


SOURCE = "def answer():\n    return %d\n\ndef fail():\n    raise ValueError('x')\n"


def test_second_import_from_a_new_zip_loads_the_cached_code_under_its_own_paths(tmp_path):
    cache = tmp_path / "cache"
    first = run(make_zip(tmp_path / "task1.zip", SOURCE % 41), cache)
    assert first["hooked"] == "_cached_compile"
    # once, though zipimport asks twice per import (get_filename, get_code)
    assert first["compiled"] == ["payload.py"] and first["answer"] == 41
    assert len(os.listdir(str(cache))) == 1
    # the next task: the same code in another temporary zip
    second = run(make_zip(tmp_path / "task2.zip", SOURCE % 41), cache)
    assert second["compiled"] == [] and second["answer"] == 41
    # file names are this zip's, in nested code objects and tracebacks too
    want = os.path.join(str(tmp_path / "task2.zip"), "payload.py")
    assert second["file"] == want and second["traceback_file"] == want


def test_changed_source_is_compiled_again_never_served_stale(tmp_path):
    cache = tmp_path / "cache"
    run(make_zip(tmp_path / "a.zip", SOURCE % 1), cache)
    changed = run(make_zip(tmp_path / "b.zip", SOURCE % 2), cache)
    assert changed["compiled"] == ["payload.py"] and changed["answer"] == 2
    assert len(os.listdir(str(cache))) == 2


def test_an_unwritable_cache_only_costs_the_compile(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    got = run(make_zip(tmp_path / "a.zip", SOURCE % 7), blocker / "cache")
    # zipimport compiles a module twice per import (get_filename, then
    # get_code); with a cache the second is a hit, without one both compile
    assert got["answer"] == 7 and got["compiled"] == ["payload.py", "payload.py"]


def test_nothing_is_hooked_without_a_cache_directory_named(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOOK_DIR)
    env.pop("PITCOPY_ZIPIMPORT_CACHE", None)
    out = subprocess.run([sys.executable, "-c", "import zipimport; print(zipimport._compile_source.__name__)"],
                         env=env, stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout
    assert out.strip() == "_compile_source"
