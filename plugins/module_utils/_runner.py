# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the storage tools: argv lists only, never a shell, C locale.

This file is the one way the collection starts a command. Backends take a
runner object so that the module wrapper can hand them one built on
``AnsibleModule.run_command`` and tests can hand them this plain subprocess
one (or a fake that replays recorded output). They share the interface::

    run(argv, data=None, check=True) -> (rc, stdout, stderr)
    pipe([argv1, argv2], check=True) -> (rc, stdout, stderr)
    run_hook(argv, timeout) -> dict(rc, stdout, stderr, timed_out)
    resolve(name) -> absolute path of a program, or None

``check=True`` raises CommandError on a non-zero exit status. A program name
is resolved to its path once per runner (PATH, then the sbin directories an
Ansible module's PATH may lack), so the freeze watchdog and the freeze
itself run the same ``fsfreeze``; argv and error messages keep the name the
backend wrote.

In check mode (and for read-only module runs) the modules wrap the runner in
ReadOnlyRunner, which refuses every command not on its read-only list: check
mode cannot change the host by construction, whatever a backend would call.

What does not go through a runner, and why: the freeze watchdog (a Python
helper process that must outlive us, _quiesce._Watchdog), the btrfs snapshot
ioctl and the block copies of lvm_clone (no process at all), and the state
files (_store.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import shutil
import signal
import subprocess
import threading
from signal import SIGPIPE

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, CopyFailed

C_LOCALE = {"LC_ALL": "C", "LANGUAGE": "C", "LVM_SUPPRESS_FD_WARNINGS": "1"}


def _as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def command_error(argv, rc, out, err):
    """The CommandError for a failed command, with the tool's own words."""
    first = (_as_text(err).strip() or _as_text(out).strip()).splitlines()
    reason = first[-1] if first else "no output"
    return CommandError(
        "%s failed with exit status %s: %s" % (argv[0], rc, reason),
        argv=argv, rc=rc, stdout=_as_text(out), stderr=_as_text(err),
    )


def command_reason(exc):
    """The words a failure message quotes for ``exc``: the tool's own
    (stderr, else stdout) for a failed command, the summary for a pipe
    (whose stderr mixes every command's), the message otherwise."""
    if isinstance(exc, CommandError):
        if "|" in (exc.argv or ()):
            return exc.msg
        return (exc.stderr or exc.stdout or exc.msg).strip()
    return getattr(exc, "msg", None) or str(exc)


def quietly(fn):
    """``fn()`` as best-effort clean-up after a failure that is already being
    reported: a failing command there must not replace the first error, so
    CommandError, CopyFailed and OSError give None. Anything else (a bug, a
    refused mutation in check mode) still raises."""
    try:
        return fn()
    except (CommandError, CopyFailed, OSError):
        return None


#: where programs are looked for after PATH: an Ansible module's PATH (a
#: non-login shell, sudo's secure_path) may lack the sbin directories
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def find_program(name, path=None):
    """The absolute path of program ``name`` (PATH, then SBIN_DIRS), or None.
    A name with a slash is taken as given."""
    if "/" in name:
        return name
    return shutil.which(name, path=path) or shutil.which(name, path=os.pathsep.join(SBIN_DIRS))


class _Relay(object):
    """Copies a pipe's stream from one process to the next in a thread,
    counting the bytes (``meter["bytes"]``). Both ends are closed when the
    stream ends or the reader goes (the writer then gets SIGPIPE, as it
    would with a direct pipe)."""

    CHUNK = 1 << 20

    def __init__(self, src, dst, meter):
        self.src, self.dst, self.meter = src, dst, meter
        meter["bytes"] = 0
        self.thread = threading.Thread(target=self._copy)
        self.thread.daemon = True
        self.thread.start()

    def _copy(self):
        rfd, wfd = self.src.fileno(), self.dst.fileno()
        splice = getattr(os, "splice", None)  # Python 3.10+, Linux: no copy through user space
        try:
            while True:
                if splice is not None:
                    try:
                        n = splice(rfd, wfd, self.CHUNK)
                    except OSError as exc:
                        if exc.errno != errno.EINVAL:
                            raise
                        splice = None
                        continue
                else:
                    chunk = os.read(rfd, self.CHUNK)
                    n = len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(wfd, view):]
                if not n:
                    break
                self.meter["bytes"] += n
        except OSError:
            pass  # the reader went (EPIPE): its own exit status says why
        finally:
            self.src.close()
            self.dst.close()

    def join(self):
        self.thread.join()


class SubprocessRunner:
    """Runs commands with subprocess, argv lists, C locale, no shell."""

    def __init__(self, env=None, timeout=None):
        self.env = dict(os.environ)
        self.env.update(C_LOCALE)
        if env:
            self.env.update(env)
        self.timeout = timeout
        self._programs = {}
        # processes started, by program and subcommand ("zfs rename": 3):
        # what a run costs where every process is expensive (an emulated
        # guest), read by the benchmarks (tests/benchmarks/bench_vm_zfs.py)
        self.started = {}

    def _count(self, argv):
        key = " ".join([os.path.basename(argv[0])] + [a for a in argv[1:2] if not a.startswith("-")])
        self.started[key] = self.started.get(key, 0) + 1

    def processes(self):
        """How many processes this runner has started."""
        return sum(self.started.values())

    def resolve(self, name):
        """The path of program ``name``, looked up once per runner; None when
        it is not installed."""
        if name not in self._programs:
            found = find_program(name, self.env.get("PATH"))
            if found is None:
                return None  # not cached: it may be installed later in the run
            self._programs[name] = found
        return self._programs[name]

    def _exe(self, argv):
        """argv with its program resolved (the name as given when not found,
        so the error says which program is missing)."""
        return [self.resolve(argv[0]) or argv[0]] + argv[1:]

    def _check(self, argv):
        if isinstance(argv, (str, bytes)) or not argv:
            raise TypeError("argv must be a non-empty list, got %r" % (argv,))
        return [str(a) for a in argv]

    def run(self, argv, data=None, check=True, timeout=None):
        return self._complete(argv, check, timeout, input=data,
                              stdin=None if data is not None else subprocess.DEVNULL)

    def _complete(self, argv, check, timeout, **stdin):
        """Run ``argv`` to its end, its stdin as ``stdin`` says (``input=``
        bytes, or ``stdin=`` a descriptor); (rc, stdout, stderr), a
        CommandError when it cannot run, times out or (with ``check``)
        fails."""
        argv = self._check(argv)
        self._count(argv)
        try:
            proc = subprocess.run(self._exe(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=self.env, timeout=timeout or self.timeout, check=False, **stdin)
        except OSError as exc:
            raise CommandError("cannot run %s: %s" % (argv[0], exc), argv=argv, rc=None, stderr=str(exc))
        except subprocess.TimeoutExpired as exc:
            raise CommandError("%s did not finish within %s s" % (argv[0], exc.timeout), argv=argv, rc=None,
                               stdout=_as_text(exc.stdout), stderr=_as_text(exc.stderr))
        out, err = _as_text(proc.stdout), _as_text(proc.stderr)
        if check and proc.returncode != 0:
            raise command_error(argv, proc.returncode, out, err)
        return proc.returncode, out, err

    def pipe(self, argvs, check=True, timeout=None, meter=None):
        """Run ``argv1 | argv2 | ...`` without a shell.

        Returns the first non-zero exit status (or 0), the last command's
        stdout and every command's stderr joined; with ``check`` raises the
        CommandError of the first command that failed. With ``meter`` (a
        dict) the stream between the first two commands passes through this
        process, which counts it: ``meter["bytes"]`` is what the second
        command was given (a send stream's size, measured, not estimated)."""
        argvs = [self._check(a) for a in argvs]
        for argv in argvs:
            self._count(argv)
        procs = []
        prev = subprocess.DEVNULL
        relay = None
        try:
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                metered = meter is not None and i == 1
                proc = subprocess.Popen(
                    self._exe(argv), stdin=subprocess.PIPE if metered else prev, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=self.env,
                )
                if metered:
                    relay = _Relay(prev, proc.stdin, meter)
                    proc.stdin = None  # the relay's now: communicate() must not close it
                elif prev is not subprocess.DEVNULL:
                    prev.close()  # so the writer sees SIGPIPE if the reader dies
                prev = proc.stdout if not last else None
                procs.append(proc)
        except OSError as exc:
            for p in procs:
                p.kill()
            if relay is not None:
                relay.join()
            raise CommandError("cannot run %s: %s" % (argvs[len(procs)][0], exc), argv=argvs[len(procs)], rc=None,
                               stderr=str(exc))
        out, err_last = procs[-1].communicate(timeout=timeout or self.timeout)
        if relay is not None:
            relay.join()
        errs = []
        results = []
        for p in procs[:-1]:
            e = p.stderr.read()
            p.wait()
            errs.append(_as_text(e))
            results.append(p.returncode)
        errs.append(_as_text(err_last))
        results.append(procs[-1].returncode)
        failed = _pipe_failure(argvs, results, errs)
        if failed is None:
            return 0, _as_text(out), "".join(errs)
        argv, rc, e = failed
        if check:
            raise command_error(argv, rc, "", e)
        return rc, _as_text(out), "".join(errs)

    def stream_out(self, argv, write, timeout=None):
        """Run ``argv`` and hand its stdout to ``write(chunk)`` as it comes
        (a send stream written to a medium, hashed on the way, never held
        whole in memory). Raises the CommandError of a failure; the caller
        discards what ``write`` got then."""
        argv = self._check(argv)
        self._count(argv)
        try:
            proc = subprocess.Popen(self._exe(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self.env)
        except OSError as exc:
            raise CommandError("cannot run %s: %s" % (argv[0], exc), argv=argv, rc=None, stderr=str(exc))
        errs = []
        reader = threading.Thread(target=lambda: errs.append(proc.stderr.read()))
        reader.daemon = True
        reader.start()
        try:
            fd = proc.stdout.fileno()
            while True:
                chunk = os.read(fd, _Relay.CHUNK)
                if not chunk:
                    break
                write(chunk)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        try:
            proc.wait(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise CommandError("%s did not finish within %s s" % (argv[0], timeout or self.timeout), argv=argv,
                               rc=None)
        reader.join()
        err = _as_text(errs[0] if errs else b"")
        if proc.returncode != 0:
            raise command_error(argv, proc.returncode, "", err)
        return 0, "", err

    def run_from(self, argv, stdin_fd, check=True, timeout=None):
        """Run ``argv`` with its stdin read from the open file descriptor
        ``stdin_fd`` (a stream on a medium, received)."""
        return self._complete(argv, check, timeout, stdin=stdin_fd)

    def run_hook(self, argv, timeout):
        """Run a user's hook command: its own session (so a timeout kills the
        whole process group, grandchildren too), no stdin, output kept.
        Returns dict(rc, stdout, stderr, timed_out); rc None when it could
        not be started (stderr says why). Never raises for the hook's own
        failure: the copy window decides what a failed hook means."""
        argv = self._check(argv)
        self._count(argv)
        try:
            # env=None: the user's command gets the environment the module
            # was given (its locale too), not the storage tools' C locale
            proc = subprocess.Popen(
                self._exe(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True, close_fds=True, env=None,
            )
        except OSError as exc:
            return dict(rc=None, stdout="", stderr="cannot run %s: %s" % (argv[0], exc), timed_out=False)
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                # a grandchild left the group and holds the pipes; stop reading
                proc.kill()
                for fh in (proc.stdout, proc.stderr):
                    fh.close()
                proc.wait()
                out, err = b"", b""
            err = (err or b"") + (b"\nkilled after %s s (hook timeout)" % str(timeout).encode())
        return dict(rc=proc.returncode, stdout=_as_text(out), stderr=_as_text(err), timed_out=timed_out)


def _pipe_failure(argvs, results, errs):
    """(argv, rc, stderr) of the command whose failure broke a pipe, or None.

    A writer killed by SIGPIPE (-13, or 141 through a shell) only says that
    its reader went away: when a later command failed too, that one holds the
    reason (``btrfs receive`` refusing the stream, say), so it is reported,
    with the writer's fate added. Otherwise the first failure counts."""
    failures = [(argv, rc, e) for argv, rc, e in zip(argvs, results, errs) if rc != 0]
    if not failures:
        return None
    first = failures[0]
    if first[1] in (-SIGPIPE, 128 + SIGPIPE):
        later = [f for f in failures[1:] if f[1] not in (-SIGPIPE, 128 + SIGPIPE)]
        if later:
            argv, rc, e = later[0]
            # the note first: command_error quotes the stderr's last line
            note = "(%s was stopped by SIGPIPE when %s exited)" % (" ".join(first[0][:2]), " ".join(argv[:2]))
            return argv, rc, note + "\n" + e
    return first


# --- check mode: a runner that can only read ----------------------------------------

#: Commands that only read, by program: None = every use of the program reads
#: (report tools), else the accepted first words after the program name.
READ_ONLY_COMMANDS = {
    "lvs": None, "vgs": None, "pvs": None,
    "zfs": ("list", "get", "holds"),
    "zpool": ("list", "get", "status"),
    "btrfs": (("subvolume", "show"), ("subvolume", "list"), ("subvolume", "get-default"),
              ("filesystem", "show"), ("filesystem", "df"), ("filesystem", "usage"),
              ("qgroup", "show"), ("property", "get"), ("property", "list")),
    "blkid": None, "lsblk": None, "findmnt": None, "cmp": None,
    "udevadm": ("info",),
}


def is_read_only(argv, data=None):
    """Whether ``argv`` (with ``data`` on its stdin) only reads the host.

    The ``lvm`` shell reads its commands from stdin: read-only when every
    line is a report command (or ``exit``)."""
    argv = [str(a) for a in argv]
    prog = os.path.basename(argv[0]) if argv else ""
    if prog == "lvm":
        if len(argv) > 1:
            return is_read_only(argv[1:])
        if data is None:
            return False
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        lines = [ln.split() for ln in text.splitlines() if ln.strip()]
        return all(words == ["exit"] or is_read_only(words) for words in lines)
    if prog not in READ_ONLY_COMMANDS:
        return False
    allowed = READ_ONLY_COMMANDS[prog]
    if allowed is None:
        return True
    words = tuple(a for a in argv[1:] if not a.startswith("-"))
    for entry in allowed:
        entry = entry if isinstance(entry, tuple) else (entry,)
        if words[:len(entry)] == entry:
            return True
    return False


class MutationRefused(RuntimeError):
    """A read-only run (check mode) tried to change the host: a bug in the
    collection, never the user's error, so no PitcopyError: nothing catches
    it as a failed command and the module reports an internal error."""


class ReadOnlyRunner:
    """The runner of check mode and of read-only module runs: runs what only
    reads (``is_read_only``) on the runner it wraps, refuses everything else
    (MutationRefused) before anything starts."""

    def __init__(self, runner, why="check mode"):
        self.inner = runner
        self.why = why

    def _refuse(self, what):
        raise MutationRefused(
            "refused to run %s: %s only reads the host, and this command may change it "
            "(a pitcopy bug; please report it); nothing was run" % (what, self.why))

    def resolve(self, name):
        return self.inner.resolve(name)

    def run(self, argv, data=None, check=True, timeout=None):
        if not is_read_only(argv, data):
            self._refuse(" ".join(str(a) for a in argv))
        return self.inner.run(argv, data=data, check=check, timeout=timeout)

    def pipe(self, argvs, check=True, timeout=None, meter=None):
        for argv in argvs:
            if not is_read_only(argv):
                self._refuse(" | ".join(" ".join(str(a) for a in a_) for a_ in argvs))
        if meter is not None:
            return self.inner.pipe(argvs, check=check, timeout=timeout, meter=meter)
        return self.inner.pipe(argvs, check=check, timeout=timeout)

    def stream_out(self, argv, write, timeout=None):
        # a stream goes to a medium: the writing is the caller's, so this
        # is never a read-only run's business
        self._refuse(" ".join(str(a) for a in argv))

    def run_from(self, argv, stdin_fd, check=True, timeout=None):
        self._refuse(" ".join(str(a) for a in argv))

    def run_hook(self, argv, timeout):
        # a hook is the user's command: whatever it does, it is not a read
        self._refuse("the hook %s" % " ".join(str(a) for a in argv))
