# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Line coverage of chosen files from a pytest run, with the standard library
only (coverage.py is not among the pinned test requirements).

    PYTHONPATH=.cache/coll-link .venv/bin/python tests/utils/line_coverage.py \\
        plugins/module_utils/_lvm.py plugins/module_utils/_zfs.py plugins/module_utils/_btrfs.py \\
        -- -c pytest.ini --rootdir . tests/unit -q -p no:cacheprovider

Executable lines are the line numbers of the files' compiled code objects
(what ``python -m trace --missing`` counts, docstrings excluded); a line
counts as covered when the tracer saw it run. ``--missing`` lists the lines
not run. Only frames of the chosen files are traced, so the run stays fast.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os
import sys
import threading


def _code_lines(code):
    lines = set()
    for _start, _end, line in code.co_lines():
        if line is not None:
            lines.add(line)
    for const in code.co_consts:
        if hasattr(const, "co_lines"):
            lines |= _code_lines(const)
    return lines


def executable_lines(path):
    with open(path) as fh:
        source = fh.read()
    code = compile(source, path, "exec")
    lines = _code_lines(code)
    # a docstring is a constant expression, not a statement worth counting
    docs = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines - docs


def main(argv):
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    files, pytest_args = argv[:split], argv[split + 1:]
    missing = "--missing" in files
    files = [f for f in files if f != "--missing"]
    wanted = dict((os.path.basename(f), os.path.realpath(f)) for f in files)
    hits = dict((f, set()) for f in wanted.values())
    names = set(wanted)

    def local(frame, event, arg):
        if event == "line":
            hits[frame.f_code.co_filename].add(frame.f_lineno)
        return local

    real = {}

    def tracer(frame, event, arg):
        fn = frame.f_code.co_filename
        if os.path.basename(fn) not in names:
            return None
        path = real.get(fn)
        if path is None:
            path = real[fn] = os.path.realpath(fn)
        if path not in hits:
            return None
        if fn not in hits:
            hits[fn] = hits[path]  # the same file under another path (a symlinked tree)
        hits[fn].add(frame.f_lineno)
        return local

    import pytest

    class Retrace(object):
        """Some tests' tools (hypothesis) set their own tracer and clear it
        afterwards: ours is put back before every test."""

        @staticmethod
        def pytest_runtest_setup(item):
            if sys.gettrace() is not tracer:
                sys.settrace(tracer)

    sys.settrace(tracer)
    threading.settrace(tracer)
    try:
        rc = pytest.main(pytest_args, plugins=[Retrace()])
    finally:
        sys.settrace(None)
        threading.settrace(None)
    print("\n%-40s %6s %6s %7s" % ("file", "lines", "run", "cover"))
    for f in files:
        path = os.path.realpath(f)
        lines = executable_lines(path)
        run = lines & hits[path]
        print("%-40s %6d %6d %6.1f%%" % (f, len(lines), len(run), 100.0 * len(run) / max(1, len(lines))))
        if missing:
            print("  not run: %s" % _ranges(sorted(lines - run)))
    return rc


def _ranges(numbers):
    """``[1, 2, 3, 7]`` as ``1-3, 7``."""
    runs = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join("%d-%d" % (a, b) if a != b else "%d" % a for a, b in runs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
