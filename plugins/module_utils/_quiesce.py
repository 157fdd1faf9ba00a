# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy window: pre/post-copy hooks, filesystem freeze, and its watchdog.

API (what backends rely on; implementers keep these names):

    window = CopyWindow(definition, runner, clock=time.monotonic)
    with window.open(freeze=[mountpoint, ...]):   # runs pre-copy hooks, then
        ...point-in-time commands...              # fsfreeze -f each mountpoint;
                                                  # on exit (finally) thaws
                                                  # and runs post-copy hooks
    window.window_ms   float: first hook/freeze/command to last thaw
    window.hooks       list of {phase, argv, rc, ms, stderr}

A watchdog process armed before the first freeze thaws every frozen
mountpoint if this process dies (SIGKILL included) before disarming it.

Details an operator or a backend may rely on:

* Pre-copy hooks run in order. A failing hook (non-zero exit, could not be
  started, or over its ``timeout``) with ``abort_on_failure`` raises
  HookFailed before anything is frozen; a failing hook without it is recorded
  (``ok: False``) and the copy goes on. A hook over its timeout is killed with
  its whole process group (hooks run in a session of their own).
* Post-copy hooks run in ``finally`` once the pre-copy phase has begun, also
  after an aborting pre-copy hook or a failed copy, so that whatever an
  earlier pre-copy hook did (a table lock, a paused writer) is undone. Their
  failures are never raised here: the copy is already made and the backend
  must not undo it. Each one is a warning, and one with
  ``abort_on_failure`` is also listed in ``post_hook_failures`` for the
  engine, which records the copy and then fails the run.
* ``warnings`` lists what went wrong without stopping the copy (a failing
  hook, a mountpoint the watchdog thawed early); the engine puts them on the
  version's record and into Ansible's warnings.
* ``freeze`` takes mountpoints (absolute paths of a mount, as in
  /proc/self/mountinfo). A btrfs mountpoint is refused with InvalidInput:
  ``btrfs subvolume snapshot`` on a frozen btrfs blocks in uninterruptible
  sleep until the thaw, so freezing it would hang the copy it is meant to
  protect. Checks happen before any hook runs.
* The watchdog is a separate Python process (argv, no shell) holding the read
  end of a pipe. Before each freeze we tell it the mountpoint, after each
  thaw we tell it so; when the pipe closes (normal end, an exception, or our
  death by any signal) it thaws every mountpoint still marked frozen. It also
  thaws everything once ``max_frozen`` seconds have passed since the first
  freeze, so a hung copy command cannot keep applications blocked forever.
* ``window_ms`` runs from the start of ``open()`` (first pre-copy hook, else
  first freeze, else the first point-in-time command) to the end of the last
  thaw (or the end of the block when nothing was frozen). Post-copy hooks are
  outside it; ``quiesced_ms`` covers pre-copy hooks to the last post-copy hook.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
import select
import subprocess
import sys
import time

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CommandError,
    HookFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

#: filesystem types that must never be frozen before a snapshot (see above)
NEVER_FREEZE = frozenset(("btrfs",))

#: default for ``max_frozen``: seconds after which the watchdog thaws anyway
DEFAULT_MAX_FROZEN = 600.0

# The watchdog's program. argv: fsfreeze path, max seconds frozen.
# stdin: JSON lines ["F", mountpoint] (about to freeze) / ["T", mountpoint]
# (thawed). EOF means our parent is gone or done: thaw what is still frozen.
# It says "R" on stdout once its signal handlers are in place.
_WATCHDOG = r"""
import json, os, select, signal, subprocess, sys, time
fsfreeze = sys.argv[1]
max_frozen = float(sys.argv[2])
frozen = []
def thaw_all():
    while frozen:
        mp = frozen.pop()
        subprocess.call([fsfreeze, "--unfreeze", mp], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def on_term(signum, frame):
    raise SystemExit(0)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, on_term)
os.write(1, b"R\n")
os.close(1)
deadline = None
buf = b""
try:
    while True:
        timeout = None
        if frozen and deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([0], [], [], timeout)
        if not ready:
            thaw_all()
            deadline = None
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            op, mp = json.loads(line.decode("utf-8"))
            if op == "F":
                if deadline is None:
                    deadline = time.monotonic() + max_frozen
                frozen.append(mp)
            elif op == "T" and mp in frozen:
                frozen.remove(mp)
                if not frozen:
                    deadline = None
finally:
    thaw_all()
"""


def _unescape_mountinfo(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def read_mounts(path="/proc/self/mountinfo"):
    """Mounts of this process as a list of dicts (mount_id, parent_id, dev,
    root, mountpoint, fstype, source), in mount order. Read in Python: no
    process per lookup."""
    mounts = []
    with open(path, "r") as fh:
        for line in fh:
            left, sep, right = line.rstrip("\n").partition(" - ")
            if not sep:
                continue
            lf = left.split(" ")
            rf = right.split(" ")
            if len(lf) < 5 or len(rf) < 2:
                continue
            mounts.append({
                "mount_id": lf[0],
                "parent_id": lf[1],
                "dev": lf[2],
                "root": _unescape_mountinfo(lf[3]),
                "mountpoint": _unescape_mountinfo(lf[4]),
                "fstype": rf[0],
                "source": _unescape_mountinfo(rf[1]),
            })
    return mounts


def mount_of(path, mounts=None):
    """The mount (dict as in read_mounts) that holds ``path``: the last
    mounted one whose mountpoint is the longest prefix of its real path."""
    if mounts is None:
        mounts = read_mounts()
    real = os.path.realpath(path)
    best = None
    for m in mounts:
        mp = m["mountpoint"]
        if real == mp or mp == "/" or real.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) >= len(best["mountpoint"]):
                best = m
    return best


def _check_freezable(mountpoints, mounts):
    """Validate ``freeze`` before anything runs; returns the list, deduplicated."""
    seen = []
    for mp in mountpoints:
        if not isinstance(mp, str) or not mp.startswith("/") or "\n" in mp or "\x00" in mp:
            raise InvalidInput(
                "cannot freeze %r: give the absolute path of a mounted filesystem's mountpoint" % (mp,)
            )
        real = os.path.realpath(mp)
        m = mount_of(real, mounts)
        if m is None or m["mountpoint"] != real:
            raise InvalidInput(
                "cannot freeze %r: it is not a mountpoint; fsfreeze takes the mountpoint of a "
                "mounted filesystem (the filesystem holding it is mounted at %r)"
                % (mp, m["mountpoint"] if m else None)
            )
        if m["fstype"] in NEVER_FREEZE:
            raise InvalidInput(
                "refusing to freeze %r: it is a %s filesystem, and a snapshot of a frozen %s "
                "filesystem blocks in uninterruptible sleep until the thaw; use pre-copy hooks "
                "to quiesce applications on btrfs instead" % (mp, m["fstype"], m["fstype"])
            )
        if real not in seen:
            seen.append(real)
    return seen


class _Watchdog:
    """The process that thaws what we froze if we cannot."""

    def __init__(self, fsfreeze, max_frozen):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", _WATCHDOG, fsfreeze, repr(float(max_frozen))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            # its own session: a terminal's or Ansible's signal to our group
            # must not take the watchdog down with us
            start_new_session=True, close_fds=True,
        )
        ready = select.select([self.proc.stdout], [], [], 10.0)[0]
        line = self.proc.stdout.readline() if ready else b""
        self.proc.stdout.close()
        if line.strip() != b"R":
            self.proc.kill()
            self.proc.wait()
            raise CommandError(
                "the freeze watchdog did not start (%s); nothing was frozen" % sys.executable,
                argv=[sys.executable, "-c", "<watchdog>"], rc=self.proc.returncode,
            )

    def _send(self, op, mountpoint):
        try:
            self.proc.stdin.write(json.dumps([op, mountpoint]).encode("utf-8") + b"\n")
            self.proc.stdin.flush()
            return True
        except (IOError, OSError, ValueError):
            return False  # the watchdog is gone (killed by someone else)

    def will_freeze(self, mountpoint):
        # never freeze without a live watchdog
        if self.proc.poll() is not None or not self._send("F", mountpoint):
            raise CommandError("the freeze watchdog is gone (exit status %s); %s was not frozen"
                               % (self.proc.poll(), mountpoint), argv=["fsfreeze", "--freeze", mountpoint])

    def thawed(self, mountpoint):
        # a dead watchdog must not stop us from thawing the others
        self._send("T", mountpoint)

    def disarm(self, timeout=60.0):
        """Close the pipe; the watchdog thaws whatever is still marked frozen
        (nothing, on the normal path) and exits."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # still thawing something we failed to thaw: leave it running
            pass


class CopyWindow:
    """Hooks, freezes and the measured copy window of one copy version."""

    def __init__(self, definition, runner, clock=time.monotonic, max_frozen=DEFAULT_MAX_FROZEN,
                 mounts_path="/proc/self/mountinfo"):
        self.definition = definition
        self.runner = runner
        self.clock = clock
        self.max_frozen = max_frozen
        self.mounts_path = mounts_path
        self.window_ms = 0.0
        self.quiesced_ms = 0.0
        self.hooks = []
        self.frozen = []  # frozen right now
        self.was_frozen = []  # frozen during the last open()
        self.warnings = []
        self.post_hook_failures = []  # messages of failed post-copy hooks with abort_on_failure
        self._start = None
        self._fallback = None

    # --- hooks ---------------------------------------------------------------

    def _runner(self):
        """The runner of hooks and fsfreeze: the backend's; a plain one when
        the backend has none (the in-memory backends of the unit tests)."""
        if self.runner is None:
            if self._fallback is None:
                self._fallback = SubprocessRunner()
            return self._fallback
        return self.runner

    def _run_hook(self, phase, hook):
        argv = [str(a) for a in hook.argv]
        t0 = self.clock()
        rec = {"phase": phase, "argv": argv, "rc": None, "ms": 0.0, "stderr": "", "stdout": "",
               "timed_out": False, "ok": False}
        # through the runner, as every command: a recording or read-only
        # runner sees (or refuses) the hooks too
        done = self._runner().run_hook(argv, hook.timeout)
        rec["rc"] = done["rc"]
        rec["timed_out"] = bool(done["timed_out"])
        rec["stdout"] = (done["stdout"] or "")[-4000:]
        rec["stderr"] = (done["stderr"] or "")[-4000:]
        rec["ok"] = done["rc"] == 0 and not rec["timed_out"]
        rec["ms"] = (self.clock() - t0) * 1000.0
        self.hooks.append(rec)
        return rec

    def _hook_reason(self, rec):
        if rec["timed_out"]:
            return "did not finish within its timeout and was killed"
        if rec["rc"] is None:
            return rec["stderr"]
        last = rec["stderr"].strip().splitlines()
        return "exited with status %s%s" % (rec["rc"], (": " + last[-1]) if last else "")

    # --- freeze ---------------------------------------------------------------

    def _thaw(self, watchdog):
        errors = []
        while self.frozen:
            mp = self.frozen[-1]
            rc, out, err = self._runner().run(["fsfreeze", "--unfreeze", mp], check=False)
            if rc != 0 and "Invalid argument" in err:
                # not frozen any more: the watchdog's max_frozen thawed it
                self.warnings.append("%s was already thawed (by the watchdog after max_frozen=%s s?); "
                                     "the copy may not be one point in time" % (mp, self.max_frozen))
                watchdog.thawed(mp)
            elif rc != 0:
                errors.append(("fsfreeze --unfreeze %s" % mp, rc, err))
                # left marked in the watchdog: it retries when disarmed
            else:
                watchdog.thawed(mp)
            self.frozen.pop()
        return errors

    @contextlib.contextmanager
    def open(self, freeze=()):
        mountpoints = _check_freezable(list(freeze or ()), read_mounts(self.mounts_path) if freeze else [])
        fsfreeze = None
        if mountpoints:
            # resolved by the runner that runs ``fsfreeze --freeze`` too: the
            # watchdog thaws with the very program that froze
            fsfreeze = self._runner().resolve("fsfreeze")
            if not fsfreeze:
                raise InvalidInput("cannot freeze %s: fsfreeze (util-linux) is not installed" % ", ".join(mountpoints))
        self._start = self.clock()
        self.hooks = []
        self.frozen = []
        self.was_frozen = []
        self.post_hook_failures = []
        watchdog = None
        end = None
        thaw_errors = []
        try:
            for hook in self.definition.pre_copy_hooks:
                rec = self._run_hook("pre", hook)
                if not rec["ok"]:
                    msg = "pre-copy hook %s %s" % (json.dumps(rec["argv"]), self._hook_reason(rec))
                    if hook.abort_on_failure:
                        raise HookFailed(msg + "; the copy was not started and nothing was frozen",
                                         hook=rec)
                    self.warnings.append(msg + "; continuing (abort_on_failure is false)")
            try:
                if mountpoints:
                    watchdog = _Watchdog(fsfreeze, self.max_frozen)
                    for mp in mountpoints:
                        watchdog.will_freeze(mp)
                        self.frozen.append(mp)
                        self.was_frozen.append(mp)
                        try:
                            self._runner().run(["fsfreeze", "--freeze", mp])
                        except Exception:
                            self.frozen.pop()
                            watchdog.thawed(mp)
                            raise
                yield self
            finally:
                if watchdog is not None:
                    thaw_errors = self._thaw(watchdog)
                end = self.clock()
                if watchdog is not None:
                    watchdog.disarm()
        finally:
            if end is None:
                end = self.clock()
            self.window_ms = (end - self._start) * 1000.0
            for hook in self.definition.post_copy_hooks:
                rec = self._run_hook("post", hook)
                if not rec["ok"]:
                    msg = "post-copy hook %s %s" % (json.dumps(rec["argv"]), self._hook_reason(rec))
                    self.warnings.append(msg)
                    if hook.abort_on_failure:
                        self.post_hook_failures.append(msg)
            self.quiesced_ms = (self.clock() - self._start) * 1000.0
        if thaw_errors:
            what, rc, err = thaw_errors[0]
            raise CommandError(
                "%s failed (exit status %s): %s; the watchdog retried the thaw" % (what, rc, err.strip()),
                argv=what.split(" "), rc=rc, stderr=err,
            )
