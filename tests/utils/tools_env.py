# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the real-storage tests run the storage tools themselves (to set up
and to check, beside the collection's runner): the sbin directories on PATH
(a non-login root shell, the UML and VM guests, may lack them) and the C
locale, whose messages the tests match."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import subprocess

from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

MiB = 1024 * 1024
SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))


def tool_env(**extra):
    """This process's environment with the sbin PATH, LC_ALL=C and ``extra``."""
    return dict(os.environ, LC_ALL="C", PATH=SBIN_PATH, **extra)


def run_tool(env, *argv, **kw):
    """Run a storage tool directly with ``env`` (``tool_env(...)``); its
    stdout. ``check`` (default True): a failure raises AssertionError naming
    the command, its status and its stderr. ``timeout`` defaults to 300 s."""
    check = kw.pop("check", True)
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env, timeout=kw.pop("timeout", 300), check=False, **kw)
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise AssertionError("%s failed (%s): %s" % (" ".join(map(str, argv)), proc.returncode, err.strip()))
    return out


def sha(path):
    """sha256 of the file at ``path`` (read in blocks: sources of a GiB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(MiB), b""):
            h.update(block)
    return h.hexdigest()


class PipeRecorder(SubprocessRunner):
    """The real runner, remembering the argv of every pipe it runs."""

    def __init__(self, **kw):
        super(PipeRecorder, self).__init__(**kw)
        self.pipes = []

    def pipe(self, argvs, *args, **kw):
        self.pipes.append([list(a) for a in argvs])
        return super(PipeRecorder, self).pipe(argvs, *args, **kw)
