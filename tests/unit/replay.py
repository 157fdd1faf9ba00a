# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replaying the real tools' recorded output (tests/utils/recording.py).

``ReplayRunner(calls)`` is a backend runner that expects exactly the
recorded commands, in the recorded order: each ``run``/``pipe`` must have the
recorded argv (and stdin), and gets the recorded exit status, stdout and
stderr (or the recorded CommandError). A command the recording does not
have next fails the test with both argvs; ``assert_done()`` fails when
recorded commands were never asked for.

``ReplayKernel(runner)`` does the same for the btrfs backends' kernel
seam (_btrfs.BtrfsKernel: ioctls, subvolume roots, free space, mounts), in
one order with the commands.

Case files live in tests/unit/plugins/module_utils/recorded/<tool>/; each
was written by ``pytest tests/real --pitcopy-record DIR`` on a real host
(its ``uname`` and ``test`` say where), never by hand.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError

RECORDED = os.path.join(os.path.dirname(__file__), "plugins", "module_utils", "recorded")


def load_case(tool, name, root=None):
    """The recorded case; with ``root``, the paths the recording wrote as
    ``@ROOT@`` (the native test's own directory) are put below ``root``."""
    with open(os.path.join(RECORDED, tool, name + ".yml")) as fh:
        case = yaml.safe_load(fh)
    return _rooted(case, root) if root else case


def _rooted(value, root):
    if isinstance(value, str):
        return value.replace("@ROOT@", root)
    if isinstance(value, list):
        return [_rooted(v, root) for v in value]
    if isinstance(value, dict):
        return dict((k, _rooted(v, root)) for k, v in value.items())
    return value


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class ReplayRunner(object):
    def __init__(self, calls, name="recording", observer=None):
        self.calls = list(calls)
        self.name = name
        self.pos = 0
        self.seen = []
        # observer(recorded call): lets a test keep a model of what the
        # commands did that is not in their output (the contents of devices)
        self.observer = observer

    def resolve(self, name):
        return "/usr/sbin/" + name

    def processes(self):
        """Recorded calls answered so far (SubprocessRunner.processes)."""
        return self.pos

    def _next(self, kind, argv, data=None):
        self.seen.append(argv)
        if self.pos >= len(self.calls):
            raise AssertionError("%s: call #%d %r was not recorded (the recording has %d calls)"
                                 % (self.name, self.pos, argv, len(self.calls)))
        want = self.calls[self.pos]
        got = {kind: argv}
        if kind == "kernel":
            match = want.get("kernel") == argv[0] and want.get("args") == list(argv[1])
        else:
            match = want.get(kind) == argv
        if not match:
            recorded = dict((k, want.get(k)) for k in ("argv", "pipe", "kernel", "args") if k in want)
            raise AssertionError("%s: call #%d is %r, the recording has %r" % (self.name, self.pos, got, recorded))
        if kind == "argv" and (want.get("data") or None) != (_text(data) or None):
            raise AssertionError("%s: command #%d %r: stdin %r, recorded %r"
                                 % (self.name, self.pos, argv, _text(data), want.get("data")))
        self.pos += 1
        if self.observer is not None:
            self.observer(want)
        return want

    def _answer(self, want, check):
        if "raises" in want:
            raise CommandError(want["raises"], argv=want.get("argv"), rc=None, stderr=want["raises"])
        rc, out, err = want["rc"], want.get("stdout") or "", want.get("stderr") or ""
        if check and rc != 0:
            raise CommandError(want["error"], argv=want.get("error_argv") or want.get("argv"), rc=rc,
                               stdout=out, stderr=err)
        return rc, out, err

    def run(self, argv, data=None, check=True, timeout=None):
        want = self._next("argv", [str(a) for a in argv], data)
        return self._answer(want, check)

    def pipe(self, argvs, check=True, timeout=None, meter=None):
        want = self._next("pipe", [[str(a) for a in argv] for argv in argvs])
        if meter is not None:
            meter["bytes"] = want.get("bytes", 0)  # as counted in the recorded run
        return self._answer(want, check)

    def run_hook(self, argv, timeout):
        raise AssertionError("%s: a hook %r was run; the recordings hold none" % (self.name, argv))

    def kernel(self, method, args):
        """A call of the btrfs kernel seam (_btrfs.BtrfsKernel): the recorded
        result, or the recorded OSError."""
        want = self._next("kernel", [method, list(args)])
        if "raises" in want:
            raise OSError(want["raises"]["errno"], want["raises"]["strerror"])
        return want.get("result")

    def assert_done(self):
        left = self.calls[self.pos:]
        assert not left, "%s: %d recorded calls were never made, the first: %r" % (
            self.name, len(left), left[0].get("argv") or left[0].get("pipe") or
            [left[0].get("kernel"), left[0].get("args")])


class ReplayKernel(object):
    """_btrfs.BtrfsKernel answered from a recording, in one order with the
    commands of ``runner`` (a ReplayRunner): each call must be the recorded
    one with the recorded arguments. A snapshot job is the pair (source,
    dest) it was recorded as."""

    def __init__(self, runner):
        self.runner = runner

    def mounts(self, path):
        return self.runner.kernel("mounts", [path])

    def is_subvolume(self, path):
        return self.runner.kernel("is_subvolume", [path])

    def subvolume_info(self, path):
        return self.runner.kernel("subvolume_info", [path])

    def nested_subvolumes(self, path):
        return self.runner.kernel("nested_subvolumes", [path])

    def filesystem_info(self, path):
        return self.runner.kernel("filesystem_info", [path])

    def space(self, path):
        return self.runner.kernel("space", [path])

    def quotas_enabled(self, fsid):
        return self.runner.kernel("quotas_enabled", [fsid])

    def sync(self, path):
        return self.runner.kernel("sync", [path])

    def prepare_snapshot(self, source, dest):
        self.runner.kernel("prepare_snapshot", [source, dest])
        return [source, dest]

    def take_snapshot(self, job):
        return self.runner.kernel("take_snapshot", [job])

    def close_snapshot(self, job):
        return self.runner.kernel("close_snapshot", [job])


class RecordedBeforeEncryption(object):
    """A ReplayRunner for ZFS recordings made before zfs_send knew about
    encryption (none of their datasets was encrypted): the ``zfs get``
    columns added since (``encryption``, ``keystatus``) are taken out of the
    props before the argv is compared, so the recorded output answers
    (without those rows: read as unencrypted, as those datasets were), and
    the encryption probe of a restore (``zfs get encryption,keystatus,
    keylocation,encryptionroot``), which the recording lacks, is answered
    with no rows. Everything else is compared as recorded.
    tests/real/test_zfs_encryption.py is the proof on encrypted datasets."""

    ADDED = ("encryption", "keystatus")
    PROBE = "encryption,keystatus,keylocation,encryptionroot"

    def __init__(self, runner):
        self.runner = runner

    def __getattr__(self, name):
        return getattr(self.runner, name)

    @staticmethod
    def _props_index(argv):
        i = 2
        while i < len(argv):
            if argv[i] in ("-o", "-t", "-d", "-s"):
                i += 2
            elif argv[i].startswith("-"):
                i += 1
            else:
                return i
        return None

    def run(self, argv, data=None, check=True, timeout=None):
        argv = [str(a) for a in argv]
        if argv[:2] == ["zfs", "get"]:
            i = self._props_index(argv)
            if i is not None and argv[i] == self.PROBE:
                return 0, "", ""
            if i is not None:
                kept = [p for p in argv[i].split(",") if p not in self.ADDED]
                argv = argv[:i] + [",".join(kept)] + argv[i + 1:]
        return self.runner.run(argv, data=data, check=check, timeout=timeout)
