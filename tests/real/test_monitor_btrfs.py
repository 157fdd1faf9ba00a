# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Nagios plugin (roles/monitoring/files/check_pitcopy) run as the
monitoring role installs it, as a subprocess without Ansible, against the
REAL state files of copy pools on native btrfs: OK, WARNING past max_age,
CRITICAL when a copy was deleted behind pitcopy's back, UNKNOWN when a
state file is damaged; its textfile parsed by prometheus_client."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.pitcopy.versions.plugins.module_utils import _monitor
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import World, btrfs, write

pytestmark = pytest.mark.btrfs

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "roles", "monitoring", "files", "check_pitcopy")


class AgedWorld(World):
    """A World whose pool has a ``max_age``."""

    max_age = "1h"

    def definition(self):
        return replace(super(AgedWorld, self).definition(), max_age=self.max_age)


def install(tmp_path):
    """What the monitoring role puts on the host: the module_utils under
    LIB/ansible_collections/pitcopy/versions/plugins/module_utils with the
    package files, and check_pitcopy with this Python in its first line and
    LIB_DIR pointing there. Returns the script's path."""
    module_utils = os.path.dirname(os.path.abspath(_monitor.__file__))
    lib = tmp_path / "lib"
    dest = lib / "ansible_collections" / "pitcopy" / "versions" / "plugins" / "module_utils"
    shutil.copytree(module_utils, str(dest), ignore=shutil.ignore_patterns("__pycache__"))
    for pkg in (lib / "ansible_collections", lib / "ansible_collections" / "pitcopy",
                lib / "ansible_collections" / "pitcopy" / "versions",
                lib / "ansible_collections" / "pitcopy" / "versions" / "plugins", dest):
        (pkg / "__init__.py").touch()
    with open(SCRIPT) as f:
        text = f.read()
    first, rest = text.split("\n", 1)
    assert first.startswith("#!")
    rest = rest.replace('LIB_DIR = "/usr/local/lib/pitcopy"', 'LIB_DIR = %r' % str(lib))
    script = tmp_path / "check_pitcopy"
    script.write_text("#!%s\n%s" % (sys.executable, rest))
    script.chmod(0o755)
    return str(script)


def check(script, state_dir, *args):
    # no PYTHONPATH: the installed copy alone must do, as on a managed host
    env = dict((k, v) for k, v in os.environ.items() if k not in ("PYTHONPATH", "PITCOPY_LIB_DIR"))
    proc = subprocess.run([script, "--state-dir", state_dir] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=120, check=False)
    assert proc.stderr == "", proc.stderr
    return proc.returncode, proc.stdout


def metrics(path):
    out = {}
    with open(path) as f:
        for family in text_string_to_metric_families(f.read()):
            for sample in family.samples:
                out.setdefault(sample.name, {})[sample.labels.get("pool")] = sample.value
    return out


def test_the_plugin_on_real_state_files(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    script = install(tmp_path)
    w = AgedWorld(tmp_path, runner, src, dst, "btrfs_snapshot", name="mon")
    for n in ("a", "b"):
        w.add_source(n)
    w.define()
    for s_ in w.sources:
        write(os.path.join(s_, "data"), "v1\n")
    w.copy()
    w.copy()
    state_dir = w.store.state_dir
    path = w.store.path(w.name)
    before = open(path, "rb").read()

    # OK: two valid versions, the newest seconds old, max_age 1h
    code, out = check(script, state_dir)
    assert code == 0, out
    assert out.startswith("PITCOPY OK - 1 copy pool OK | '%s_age'=" % w.name)
    assert "'%s_kept'=2;;;0" % w.name in out and ";3600;;0" in out
    prom = str(tmp_path / "pitcopy.prom")
    code, out = check(script, state_dir, "--textfile", prom, "--last-run-success", "1")
    assert code == 0, out
    m = metrics(prom)
    assert m["pitcopy_versions_kept"] == {w.name: 2.0} and m["pitcopy_records_consistent"] == {w.name: 1.0}
    assert m["pitcopy_stale"] == {w.name: 0.0} and m["pitcopy_last_run_success"] == {None: 1.0}
    assert 0 <= m["pitcopy_newest_valid_version_age_seconds"][w.name] < 600
    assert open(path, "rb").read() == before  # the plugin only reads

    # WARNING: the same records, a max_age they are older than
    w.max_age = "1s"
    w.define()
    time.sleep(2.1)
    code, out = check(script, state_dir)
    assert code == 1, out
    assert out.startswith("PITCOPY WARNING - %s: stale" % w.name) and "max_age 1s, STALE" in out

    # CRITICAL: the newest version's copy of source a deleted behind our back
    w.max_age = "1h"
    w.define()
    before = open(path, "rb").read()
    newest = max(w.state().replication_records, key=lambda r: r.version)
    gone = newest.pairs[0].target
    btrfs("property", "set", "-ts", gone, "ro", "false")
    btrfs("subvolume", "delete", gone)
    code, out = check(script, state_dir)
    assert code == 2, out
    assert out.startswith("PITCOPY CRITICAL - %s: records do not match the host" % w.name)
    assert gone in out
    code, out = check(script, state_dir, "--textfile", prom)
    assert code == 0, out
    assert metrics(prom)["pitcopy_records_consistent"] == {w.name: 0.0}

    # it only read: no repair of the missing copy, the records as they were
    assert open(path, "rb").read() == before

    # UNKNOWN: the state file damaged; another pool beside it is still checked
    w2 = AgedWorld(tmp_path, runner, src, dst, "btrfs_snapshot", name="mon2")
    w2.add_source("c", parent="vol2")
    w2.define()
    w2.copy()
    with open(path, "ab") as f:
        f.write(b"\x00damaged by hand\n")
    code, out = check(script, state_dir, "--textfile", prom)
    assert code == 0, out
    m = metrics(prom)
    assert m["pitcopy_state_readable"] == {w.name: 0.0, w2.name: 1.0}
    assert m["pitcopy_records_consistent"] == {w2.name: 1.0}
    code, out = check(script, state_dir)
    assert code == 3, out
    assert out.startswith("PITCOPY UNKNOWN - %s: not checked" % w.name)
    assert "OK: %s:" % w2.name in out
    code, out = check(script, state_dir, "--pool", w2.name)
    assert code == 0, out
