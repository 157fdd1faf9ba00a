# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recording what the real storage tools answer (tests side only).

``recording(out_dir, name)`` wraps ``SubprocessRunner.run`` and ``.pipe`` for
the duration of one test and writes the calls, in order, to
``out_dir/<name>.yml``::

    test: tests/real/test_lvm.py::test_x
    uname: Linux 6.1.0 x86_64
    calls:
    - argv: [lvs, --reportformat, json, ...]
      data: null            # what was fed on stdin (text), if anything
      rc: 0
      stdout: '...'
      stderr: ''
    - pipe: [[zfs, send, ...], [zfs, receive, ...]]
      rc: 0
      ...

The files are the raw material of the replay cases under
tests/unit/plugins/module_utils/recorded/; nothing here runs in the fast
tests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import re

import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils import _runner


def _text(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class _Literal(str):
    pass


def _literal(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def _lit(value):
    return _Literal(value) if isinstance(value, str) else value


@contextlib.contextmanager
def recording(out_dir, name):
    calls = []
    real_run = _runner.SubprocessRunner.run
    real_pipe = _runner.SubprocessRunner.pipe

    def call(entry, real, *args, **kw):
        try:
            rc, out, err = real(*args, **kw)
        except _runner.CommandError as exc:
            # the replay raises the same error: keep what it was built from
            entry.update(rc=exc.rc, stdout=_lit(exc.stdout or ""), stderr=_lit(exc.stderr or ""),
                         error_argv=list(exc.argv or ()), error=exc.msg)
            calls.append(entry)
            raise
        entry.update(rc=rc, stdout=_lit(out), stderr=_lit(err))
        calls.append(entry)
        return rc, out, err

    def run(self, argv, data=None, check=True, timeout=None):
        entry = {"argv": [str(a) for a in argv], "data": _lit(_text(data)), "check": bool(check)}
        return call(entry, real_run, self, argv, data=data, check=check, timeout=timeout)

    def pipe(self, argvs, check=True, timeout=None):
        entry = {"pipe": [[str(a) for a in argv] for argv in argvs], "check": bool(check)}
        rc, out, err = call(entry, real_pipe, self, argvs, check=check, timeout=timeout)
        entry["stdout"] = ""  # a send stream: binary, large, of no use to a parser
        return rc, out, err

    _runner.SubprocessRunner.run = run
    _runner.SubprocessRunner.pipe = pipe
    try:
        yield calls
    finally:
        _runner.SubprocessRunner.run = real_run
        _runner.SubprocessRunner.pipe = real_pipe
        os.makedirs(out_dir, exist_ok=True)
        fname = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.split("/")[-1])[:180] + ".yml"
        u = os.uname()
        with open(os.path.join(out_dir, fname), "w") as fh:
            yaml.dump({"test": name, "uname": "%s %s %s" % (u.sysname, u.release, u.machine), "calls": calls},
                      fh, Dumper=_Dumper, default_flow_style=None, sort_keys=False, width=1000)
