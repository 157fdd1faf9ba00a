# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wrapper itself: runner on run_command, the one error path, PyYAML guard."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.pitcopy.versions.plugins.module_utils import _module
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, PoolBusy
from ansible_collections.pitcopy.versions.plugins.modules import copy_pool_info
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import (
    AnsibleExitJson,
    AnsibleFailJson,
    _exit_json,
    _fail_json,
    set_module_args,
)


@pytest.fixture
def module(tmp_path):
    with set_module_args({"state_dir": str(tmp_path / "s")}), mock.patch.multiple(
        basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json
    ):
        yield _module.PitcopyModule(argument_spec={})


def test_shared_defaults():
    with set_module_args({}), mock.patch.multiple(basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json):
        m = _module.PitcopyModule(argument_spec={})
    assert m.params["state_dir"] == "/var/lib/pitcopy"
    assert m.params["lock_timeout"] == 30.0


def test_runner_passes_words_verbatim(module):
    runner = module.runner()
    rc, out, err = runner.run(["echo", "$HOME", "~", "a;b", "$(id)"])
    assert (rc, out, err) == (0, "$HOME ~ a;b $(id)\n", "")


def test_runner_c_locale_and_data(module):
    runner = module.runner()
    assert runner.run(["printenv", "LC_ALL"])[1] == "C\n"
    assert runner.run(["printenv", "LANGUAGE"])[1] == "C\n"
    assert runner.run(["cat"], data="no newline added")[1] == "no newline added"


def test_runner_failure_raises_command_error(module):
    runner = module.runner()
    with pytest.raises(CommandError) as info:
        runner.run(["ls", "/nonexistent/pitcopy"])
    assert info.value.rc != 0
    assert "/nonexistent/pitcopy" in info.value.stderr
    assert info.value.argv == ["ls", "/nonexistent/pitcopy"]
    rc, out, err = runner.run(["false"], check=False)
    assert rc == 1


def test_runner_missing_tool(module):
    with pytest.raises(CommandError) as info:
        module.runner().run(["pitcopy-no-such-tool"])
    assert "pitcopy-no-such-tool" in info.value.msg


def test_runner_timeout_and_pipe(module):
    runner = module.runner()
    with pytest.raises(CommandError) as info:
        runner.run(["sleep", "5"], timeout=0.2)
    assert "sleep" in info.value.msg
    assert runner.pipe([["printf", "a\\nb\\n"], ["wc", "-l"]])[1].strip() == "2"


def test_command_error_becomes_fail_json_with_rc(module):
    exc = CommandError("lvs failed with exit status 5: boom", argv=["lvs"], rc=5, stdout="o", stderr="boom\n")
    with pytest.raises(AnsibleFailJson) as info:
        module._guard(mock.Mock(side_effect=exc))
    result = info.value.result
    assert result["msg"] == "lvs failed with exit status 5: boom"
    assert (result["rc"], result["stdout"], result["stderr"], result["cmd"]) == (5, "o", "boom\n", ["lvs"])
    assert result["changed"] is False


def test_domain_error_details_reach_result(module):
    exc = PoolBusy("copy pool web is busy", pool="web")
    with pytest.raises(AnsibleFailJson) as info:
        module._guard(mock.Mock(side_effect=exc))
    assert info.value.result["msg"] == "copy pool web is busy"
    assert info.value.result["pool"] == "web"


def test_unexpected_error_is_reported_not_raised(module):
    with pytest.raises(AnsibleFailJson) as info:
        module._guard(mock.Mock(side_effect=KeyError("x")))
    assert "internal error" in info.value.result["msg"]
    assert "exception" in info.value.result


def test_missing_pyyaml(tmp_path):
    with set_module_args({"state_dir": str(tmp_path)}), mock.patch.multiple(
        basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json
    ), mock.patch.object(_module, "HAS_YAML", False):
        with pytest.raises(AnsibleFailJson) as info:
            copy_pool_info.main()
    assert "PyYAML" in info.value.result["msg"]


def test_exit_is_not_swallowed(tmp_path):
    """exit_json must propagate: the broad error path must not catch it."""
    with set_module_args({"state_dir": str(tmp_path / "st")}), mock.patch.multiple(
        basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json
    ):
        with pytest.raises(AnsibleExitJson):
            copy_pool_info.main()


def test_oserror_names_the_path_and_the_journal():
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import Journal

    class State(object):
        journal = Journal(operation="restore", version=2, target_pool="01", pairs=(), phase="restoring",
                          started="2026-11-25T00:00:00Z")

    exc = OSError(28, "No space left on device", "/srv/.pitcopy/web/restore/.pitcopy-aside.db")
    err = _module.host_error(exc, "pitcopy.versions.copy_version", "web", State())
    assert err.msg == (
        "copy_version failed for copy pool web: a system call failed on /srv/.pitcopy/web/restore/.pitcopy-aside.db: "
        "No space left on device (ENOSPC); the restore of version 2 of copy pool web is journaled in phase "
        "restoring; run pitcopy.versions.verify_records with repair: true to finish or roll it back")
    err = _module.host_error(OSError(1, "Operation not permitted", "/a", None, "/b"), "copy_version", "web", None)
    assert "on /a -> /b: Operation not permitted (EPERM); no journal was left" in err.msg


def test_oserror_while_acting_is_a_domain_error(module):
    plan = mock.Mock(changed=True)
    plan.apply.side_effect = OSError(2, "No such file or directory", "/gone")
    session = mock.Mock(state=None)
    engine = mock.MagicMock()
    engine.session.return_value.__enter__.return_value = session
    with mock.patch.object(module, "engine", return_value=engine):
        with pytest.raises(AnsibleFailJson) as info:
            module._guard(module._plan_and_apply, "web", lambda s: plan)
    assert "internal error" not in info.value.result["msg"]
    assert "a system call failed on /gone: No such file or directory (ENOENT)" in info.value.result["msg"]
    assert info.value.result["errno"] == 2 and info.value.result["path"] == "/gone"
