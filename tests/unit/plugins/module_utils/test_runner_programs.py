# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runner resolves each program once, runs hooks in their own process
group with the module's environment, and quotes the tools' own words."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _runner
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, CopyFailed


def test_a_program_is_resolved_once_and_the_sbin_dirs_are_searched(tmp_path, monkeypatch):
    prog = tmp_path / "bin" / "pitcopy-probe"
    prog.parent.mkdir()
    prog.write_text("#!/bin/sh\necho probe \"$@\"\n")
    prog.chmod(0o755)
    runner = _runner.SubprocessRunner(env={"PATH": str(prog.parent)})
    assert runner.resolve("pitcopy-probe") == str(prog)
    assert runner.run(["pitcopy-probe", "x"])[1] == "probe x\n"
    prog.rename(tmp_path / "moved")
    # resolved once: the cached path is used (and fails: it moved), the
    # error names the program as the backend wrote it
    with pytest.raises(CommandError, match="cannot run pitcopy-probe"):
        runner.run(["pitcopy-probe"])
    # not on PATH, but in an sbin directory an Ansible module's PATH may lack
    monkeypatch.setattr(_runner, "SBIN_DIRS", (str(tmp_path),))
    os.rename(str(tmp_path / "moved"), str(tmp_path / "pitcopy-probe2"))
    assert _runner.SubprocessRunner(env={"PATH": "/nonexistent"}).resolve("pitcopy-probe2") == str(
        tmp_path / "pitcopy-probe2")
    assert _runner.SubprocessRunner(env={"PATH": "/nonexistent"}).resolve("no-such-program-here") is None
    assert _runner.find_program("/bin/sh") == "/bin/sh"


def test_hooks_keep_the_module_environment_and_are_killed_as_a_group(monkeypatch):
    monkeypatch.setenv("PITCOPY_HOOK_PROBE", "kept")
    runner = _runner.SubprocessRunner()
    assert runner.env["LC_ALL"] == "C"  # the tools' locale, not the hooks'
    done = runner.run_hook(["sh", "-c", "echo $PITCOPY_HOOK_PROBE; echo err >&2; exit 3"], 10)
    assert done == {"rc": 3, "stdout": "kept\n", "stderr": "err\n", "timed_out": False}
    done = runner.run_hook(["sh", "-c", "sleep 30 & sleep 30"], 0.5)
    assert done["timed_out"] is True and "killed after 0.5 s (hook timeout)" in done["stderr"]
    done = runner.run_hook(["/nonexistent/hook"], 5)
    assert done["rc"] is None and "cannot run /nonexistent/hook" in done["stderr"]


def test_the_reason_quoted_for_a_failure():
    assert _runner.command_reason(CommandError("lvs failed", argv=["lvs"], stderr="  no VG\n")) == "no VG"
    assert _runner.command_reason(CommandError("x failed", argv=["x"], stdout="said on stdout\n")) == "said on stdout"
    assert _runner.command_reason(CommandError("x failed", argv=["x"])) == "x failed"
    piped = CommandError("zfs send | zfs receive failed: full", argv=["zfs", "send", "|", "zfs", "receive"],
                         stderr="mixed\nwords")
    assert _runner.command_reason(piped) == "zfs send | zfs receive failed: full"
    assert _runner.command_reason(CopyFailed("copy failed")) == "copy failed"
    assert _runner.command_reason(OSError("disk gone")) == "disk gone"


def test_quietly_drops_command_failures_only():
    def fails(exc):
        def run():
            raise exc
        return run

    assert _runner.quietly(lambda: 5) == 5
    for exc in (CommandError("x", argv=["x"]), CopyFailed("y"), OSError("z")):
        assert _runner.quietly(fails(exc)) is None
    with pytest.raises(_runner.MutationRefused):
        _runner.quietly(fails(_runner.MutationRefused("check mode")))
