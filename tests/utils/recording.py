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


def _relit(entry):
    for k in ("stdout", "stderr", "data"):
        if isinstance(entry.get(k), str):
            entry[k] = _lit(entry[k])
    return entry


def _record_kernel(calls, root):
    """Patch _btrfs.BtrfsKernel so that each kernel call is recorded, in
    order among the commands: ``{kernel: method, args: [...], result: ...}``
    or ``raises: {errno, strerror}``. The mount table given to the backend
    is cut down to the test's own filesystems (mounted under ``root``, and
    their other mounts) and ``/``: mounts of other tests or of the host would make the recording
    (and the ``btrfs subvolume list`` calls it holds) depend on the host.
    Returns the undo function."""
    from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs

    cls = _btrfs.BtrfsKernel
    saved = dict((m, getattr(cls, m)) for m in (
        "mounts", "is_subvolume", "subvolume_info", "nested_subvolumes", "filesystem_info", "space",
        "quotas_enabled", "sync",
        "prepare_snapshot", "take_snapshot", "close_snapshot"))

    def wrap(method, real):
        def call(self, *args):
            shown = [[a.source, a.dest] if isinstance(a, _btrfs.SnapshotJob) else a for a in args]
            entry = {"kernel": method, "args": shown}
            try:
                result = real(self, *args)
            except (IOError, OSError) as exc:
                entry["raises"] = {"errno": exc.errno, "strerror": exc.strerror}
                calls.append(entry)
                raise
            if method == "mounts" and root:
                mine = set(m["dev"] for m in result if (m["mountpoint"] + "/").startswith(root.rstrip("/") + "/"))
                result = [m for m in result if m["mountpoint"] == "/" or m["dev"] in mine]
            entry["result"] = None if isinstance(result, _btrfs.SnapshotJob) else result
            calls.append(entry)
            return result
        return call

    for m, real in saved.items():
        setattr(cls, m, wrap(m, real))

    def undo():
        for m, real in saved.items():
            setattr(cls, m, real)
    return undo


def _rooted(value, root, run_token=None):
    """``value`` with the test's working directory written as ``@ROOT@``
    (the replay puts its own temporary directory there) and without the
    run's token in pool names (``run_token``, e.g. ``-1a2b-3c4d``)."""
    if isinstance(value, str):
        value = value.replace(root, "@ROOT@")
        return value.replace(run_token, "") if run_token else value
    if isinstance(value, list):
        return [_rooted(v, root, run_token) for v in value]
    if isinstance(value, dict):
        return dict((k, _rooted(v, root, run_token)) for k, v in value.items())
    return value


@contextlib.contextmanager
def recording(out_dir, name, root=None, run_token=None):
    """``root``: the test's working directory (its loop filesystems' mount
    points are below it); given, the btrfs kernel calls are recorded too and
    paths below ``root`` are written relative to ``@ROOT@``."""
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

    def pipe(self, argvs, check=True, timeout=None, meter=None):
        entry = {"pipe": [[str(a) for a in argv] for argv in argvs], "check": bool(check)}
        if meter is None:
            rc, out, err = call(entry, real_pipe, self, argvs, check=check, timeout=timeout)
        else:
            rc, out, err = call(entry, real_pipe, self, argvs, check=check, timeout=timeout, meter=meter)
            entry["bytes"] = meter.get("bytes", 0)
        entry["stdout"] = ""  # a send stream: binary, large, of no use to a parser
        return rc, out, err

    _runner.SubprocessRunner.run = run
    _runner.SubprocessRunner.pipe = pipe
    undo_kernel = _record_kernel(calls, root) if root else None
    try:
        yield calls
    finally:
        _runner.SubprocessRunner.run = real_run
        _runner.SubprocessRunner.pipe = real_pipe
        if undo_kernel is not None:
            undo_kernel()
        if root:
            calls[:] = [_relit(_rooted(c, root, run_token)) for c in calls]
        os.makedirs(out_dir, exist_ok=True)
        fname = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.split("/")[-1])[:180] + ".yml"
        u = os.uname()
        with open(os.path.join(out_dir, fname), "w") as fh:
            yaml.dump({"test": name, "uname": "%s %s %s" % (u.sysname, u.release, u.machine), "calls": calls},
                      fh, Dumper=_Dumper, default_flow_style=None, sort_keys=False, width=1000)
