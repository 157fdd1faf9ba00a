# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the storage tools: argv lists only, never a shell, C locale.

Backends take a runner object so that the module wrapper can hand them one
built on ``AnsibleModule.run_command`` and tests can hand them this plain
subprocess one. Both share the interface::

    run(argv, data=None, check=True) -> (rc, stdout, stderr)
    pipe([argv1, argv2], check=True) -> (rc, stdout, stderr)

``check=True`` raises CommandError on a non-zero exit status.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
from signal import SIGPIPE

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError

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


class SubprocessRunner:
    """Runs commands with subprocess, argv lists, C locale, no shell."""

    def __init__(self, env=None, timeout=None):
        self.env = dict(os.environ)
        self.env.update(C_LOCALE)
        if env:
            self.env.update(env)
        self.timeout = timeout

    def _check(self, argv):
        if isinstance(argv, (str, bytes)) or not argv:
            raise TypeError("argv must be a non-empty list, got %r" % (argv,))
        return [str(a) for a in argv]

    def run(self, argv, data=None, check=True, timeout=None):
        argv = self._check(argv)
        try:
            proc = subprocess.run(
                argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=self.env, timeout=timeout or self.timeout, check=False,
                stdin=None if data is not None else subprocess.DEVNULL,
            )
        except OSError as exc:
            raise CommandError("cannot run %s: %s" % (argv[0], exc), argv=argv, rc=None, stderr=str(exc))
        except subprocess.TimeoutExpired as exc:
            raise CommandError("%s did not finish within %s s" % (argv[0], exc.timeout), argv=argv, rc=None,
                               stdout=_as_text(exc.stdout), stderr=_as_text(exc.stderr))
        out, err = _as_text(proc.stdout), _as_text(proc.stderr)
        if check and proc.returncode != 0:
            raise command_error(argv, proc.returncode, out, err)
        return proc.returncode, out, err

    def pipe(self, argvs, check=True, timeout=None):
        """Run ``argv1 | argv2 | ...`` without a shell.

        Returns the first non-zero exit status (or 0), the last command's
        stdout and every command's stderr joined; with ``check`` raises the
        CommandError of the first command that failed."""
        argvs = [self._check(a) for a in argvs]
        procs = []
        prev = subprocess.DEVNULL
        try:
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                proc = subprocess.Popen(
                    argv, stdin=prev, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env=self.env,
                )
                if prev is not subprocess.DEVNULL:
                    prev.close()  # so the writer sees SIGPIPE if the reader dies
                prev = proc.stdout if not last else None
                procs.append(proc)
        except OSError as exc:
            for p in procs:
                p.kill()
            raise CommandError("cannot run %s: %s" % (argvs[len(procs)][0], exc), argv=argvs[len(procs)], rc=None,
                               stderr=str(exc))
        out, err_last = procs[-1].communicate(timeout=timeout or self.timeout)
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
