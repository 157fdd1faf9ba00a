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


def load_case(tool, name):
    with open(os.path.join(RECORDED, tool, name + ".yml")) as fh:
        return yaml.safe_load(fh)


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

    def _next(self, kind, argv, data=None):
        self.seen.append(argv)
        if self.pos >= len(self.calls):
            raise AssertionError("%s: command #%d %r was not recorded (the recording has %d commands)"
                                 % (self.name, self.pos, argv, len(self.calls)))
        want = self.calls[self.pos]
        got = {"argv": argv} if kind == "argv" else {"pipe": argv}
        if want.get(kind) != argv:
            raise AssertionError("%s: command #%d is %r, the recording has %r"
                                 % (self.name, self.pos, got, dict((k, want.get(k)) for k in ("argv", "pipe") if k in want)))
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

    def pipe(self, argvs, check=True, timeout=None):
        want = self._next("pipe", [[str(a) for a in argv] for argv in argvs])
        return self._answer(want, check)

    def run_hook(self, argv, timeout):
        raise AssertionError("%s: a hook %r was run; the recordings hold none" % (self.name, argv))

    def assert_done(self):
        left = self.calls[self.pos:]
        assert not left, "%s: %d recorded commands were never run, the first: %r" % (
            self.name, len(left), left[0].get("argv") or left[0].get("pipe"))
