# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_remote: the ssh argv, the quoting of the remote command, the checks of
destinations and ssh settings, and ssh's failures read from its stderr.

Fast: no ssh here. The quoting is proven against real shells (sh and bash
parse the command string locally, as the remote login shell would); the
stderr texts are what ssh 9.2 printed in the two-host tests
(tests/real/test_remote_hosts.py proves the same cases live)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex
import shutil

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, HostError, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._remote import (
    SshRunner,
    check_destination,
    check_ssh_options,
    pipe_across,
    remote_command,
    ssh_failure,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

HOSTILE = ["two words", "it's", 'say "hi"', "a;touch pwned", "$(touch pwned)", "`touch pwned`", "line\nbreak",
           "-leading-dash", "--", "star*?[x]", "back\\slash", "dollar$HOME", "tab\there", "", "'", '"', "ünï",
           "a|b&c>d<e", "~root", "#comment", "!event"]
ENV = ["env", "LANGUAGE=C", "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1"]


# --- the remote command ------------------------------------------------------------

def test_remote_command_splits_back_into_exactly_the_argv():
    argv = ["btrfs", "receive"] + HOSTILE
    assert shlex.split(remote_command(argv)) == ENV + argv


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_a_real_shell_hands_every_hostile_word_over_intact(shell, tmp_path):
    if not shutil.which(shell):
        pytest.fail("%s is needed to prove the quoting" % shell)
    # what sshd does with the string: <login shell> -c <string>
    out = SubprocessRunner().run([shell, "-c", remote_command(["printf", "%s\\0"] + HOSTILE)], )[1]
    assert out.split("\0")[:-1] == HOSTILE
    assert not list(tmp_path.iterdir())


def test_the_remote_tools_get_the_c_locale():
    out = SubprocessRunner(env={"LC_ALL": "de_DE.UTF-8"}).run(
        ["sh", "-c", remote_command(["sh", "-c", 'printf "%s %s" "$LC_ALL" "$LANGUAGE"'])])[1]
    assert out == "C C"


@pytest.mark.parametrize("argv, why", [
    (["-x", "a"], "no leading '-'"),
    (["A=1", "rm"], "without '='"),
    (["ls", "a\x00b"], "NUL byte"),
])
def test_remote_command_refuses_what_env_or_the_kernel_would_misread(argv, why):
    with pytest.raises(InvalidInput) as err:
        remote_command(argv)
    assert why in err.value.msg


@pytest.mark.parametrize("argv", ["ls -l", [], None])
def test_remote_command_takes_only_an_argv_list(argv):
    with pytest.raises(TypeError):
        remote_command(argv)


# --- destinations and ssh settings ---------------------------------------------------

@pytest.mark.parametrize("dest", ["backup", "root@backup.example.org", "pit_copy@10.0.0.2", "u.s-er@h-1",
                                  "::1", "[fe80::1%eth0]", "admin@2001:db8::2"])
def test_destinations_accepted(dest):
    assert check_destination(dest) == dest


@pytest.mark.parametrize("dest, hint", [
    ("-oProxyCommand=touch x", "leading '-'"),
    ("root@-oProxyCommand=x", "host part"),
    ("two words", "whitespace"),
    ("host\nother", "control characters"),
    ("host\tx", "whitespace"),
    ("", "[user@]host"),
    ("root@", "host part"),
    ("@host", "user part"),
    ("ro ot@host", "whitespace"),
    ("a;b@host", "user part"),
    ("host;reboot", "host part"),
    ("$(id)@host", "user part"),
    ("user@host:/path", "host part"),
])
def test_destinations_refused_with_the_value_and_what_is_accepted(dest, hint):
    with pytest.raises(InvalidInput) as err:
        check_destination(dest)
    assert repr(dest) in err.value.msg and hint in err.value.msg
    assert "[user@]host" in err.value.msg


def test_destination_must_be_a_string():
    with pytest.raises(InvalidInput):
        check_destination(None)


@pytest.mark.parametrize("ssh, hint", [
    ({"port": 0}, "1 to 65535"), ({"port": "22"}, "1 to 65535"), ({"port": True}, "1 to 65535"),
    ({"identity_file": "id_ed25519"}, "absolute path"), ({"identity_file": "/k\n"}, "absolute path"),
    ({"options": "Compression=yes"}, "list of Key=value"),
    ({"options": ["Compression yes"]}, "Key=value"), ({"options": ["-oProxyCommand=x"]}, "Key=value"),
    ({"options": ["Proxy Command=x"]}, "Key=value"), ({"options": ["A=b\nc"]}, "control"),
    ({"options": ["BatchMode=no"]}, "always yes"),
    ({"password": "x"}, "accepted are port, identity_file, options"),
])
def test_ssh_settings_refused(ssh, hint):
    with pytest.raises(InvalidInput) as err:
        check_ssh_options(ssh)
    assert hint in err.value.msg


def test_ssh_settings_accepted():
    assert check_ssh_options({"port": 2222, "identity_file": "/etc/pitcopy/id", "options": ["Compression=yes"]}) == \
        {"port": 2222, "identity_file": "/etc/pitcopy/id", "options": ("Compression=yes",)}
    assert check_ssh_options(None) == {"port": None, "identity_file": None, "options": ()}


# --- the ssh argv --------------------------------------------------------------------

def test_ssh_argv_batch_mode_strict_host_keys_then_destination_and_one_string():
    argv = SshRunner("root@b", local=SubprocessRunner()).ssh_argv(["btrfs", "receive", "/a b"])
    assert argv[:4] == ["ssh", "-T", "-o", "BatchMode=yes"]
    assert "StrictHostKeyChecking=yes" in argv and "ConnectTimeout=15" in argv
    assert argv[-3:] == ["--", "root@b", remote_command(["btrfs", "receive", "/a b"])]
    assert "-p" not in argv and "-i" not in argv


def test_ssh_argv_pool_settings_and_the_user_s_options_win_over_defaults():
    r = SshRunner.from_pool("b", ssh={"port": 2200, "identity_file": "/k", "options": [
        "StrictHostKeyChecking=accept-new", "UserKnownHostsFile=/etc/kh"]}, local=SubprocessRunner())
    argv = r.ssh_argv(["true"])
    opts = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    # ssh keeps the first value of a setting: BatchMode first, the user's before our defaults
    assert opts[0] == "BatchMode=yes"
    assert opts.index("StrictHostKeyChecking=accept-new") < opts.index("ConnectTimeout=15")
    assert "StrictHostKeyChecking=yes" not in opts
    assert argv[argv.index("-p") + 1] == "2200" and argv[argv.index("-i") + 1] == "/k"
    assert "IdentitiesOnly=yes" in opts


# --- ssh's failures, from its real stderr ------------------------------------------------

MISMATCH = (
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS "
    "CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nIT IS POSSIBLE THAT SOMEONE IS "
    "DOING SOMETHING NASTY!\nSomeone could be eavesdropping on you right now (man-in-the-middle attack)!\nIt is also "
    "possible that a host key has just been changed.\nThe fingerprint for the ED25519 key sent by the remote host is"
    "\nSHA256:E/46kWjB/TSOijn7P9xhwO5nW26WezSus4KuHg9R28E.\nPlease contact your system administrator.\nAdd correct "
    "host key in /tmp/t/wrong_known_hosts to get rid of this message.\nOffending ED25519 key in "
    "/tmp/t/wrong_known_hosts:1\n  remove with:\n  ssh-keygen -f \"/tmp/t/wrong_known_hosts\" -R \"10.231.7.2\"\n"
    "Host key for 10.231.7.2 has changed and you have requested strict checking.\nHost key verification failed.\n")
STDERR = {
    "host_key_mismatch": MISMATCH,
    "host_key_unknown": "No ED25519 host key is known for 10.231.7.2 and you have requested strict checking.\n"
                        "Host key verification failed.\n",
    "permission_denied": "root@10.231.7.2: Permission denied (publickey).\n",
    "unreachable": "ssh: connect to host 10.231.7.2 port 2222: Connection refused\n",
}


@pytest.mark.parametrize("cause", sorted(STDERR))
def test_ssh_failures_become_host_errors_naming_host_and_cause(cause):
    exc = ssh_failure("root@10.231.7.2", None, STDERR[cause])
    assert isinstance(exc, HostError) and exc.details["cause"] == cause
    assert "root@10.231.7.2" in exc.msg and exc.details["host"] == "root@10.231.7.2"


def test_ssh_failure_messages_say_what_happened_and_what_to_do():
    mismatch = ssh_failure("b", None, MISMATCH).msg
    assert "does not match the key known_hosts holds for it (/tmp/t/wrong_known_hosts:1)" in mismatch
    assert "nothing was run there" in mismatch
    assert "StrictHostKeyChecking=accept-new" in ssh_failure("b", None, STDERR["host_key_unknown"]).msg
    denied = ssh_failure("b", 2222, "Warning: Identity file /nonexist/key not accessible: No such file or directory."
                                    "\nroot@b: Permission denied (publickey).\n", identity_file="/nonexist/key")
    assert denied.msg.startswith("permission denied by b (port 2222): ssh key authentication with identity_file "
                                 "/nonexist/key failed")
    assert "the identity file /nonexist/key cannot be read" in denied.msg
    for err, why in [("ssh: connect to host 192.0.2.1 port 22: Network is unreachable\n", "Network is unreachable"),
                     ("ssh: Could not resolve hostname nx.invalid: Temporary failure in name resolution\n",
                      "cannot resolve host name nx.invalid"),
                     ("kex_exchange_identification: Connection closed by remote host\n", "kex_exchange")]:
        exc = ssh_failure("nx", None, err)
        assert exc.details["cause"] == "unreachable" and why in exc.msg, exc.msg


@pytest.mark.parametrize("err", ["Connection to 10.231.7.2 closed by remote host.\r\n",
                                 "client_loop: send disconnect: Broken pipe\r\n",
                                 "Timeout, server 10.231.7.2 not responding.\r\n"])
def test_a_session_lost_while_the_command_ran_says_it_may_have_run_in_part(err):
    exc = ssh_failure("root@10.231.7.2", None, "ERROR: partial output of the tool\n" + err)
    assert exc.details["cause"] == "connection_lost"
    assert exc.msg.startswith("the ssh connection to root@10.231.7.2 was lost while the command ran (")
    assert "may have run in part" in exc.msg and "\r" not in exc.msg


def test_permission_denied_is_ssh_s_line_not_a_tool_s_words():
    assert ssh_failure("b", None, "cp: cannot open '/x': Permission denied (os error 13)\n") is None
    assert ssh_failure("b", None, "mkdir: Permission denied\n") is None


@pytest.mark.parametrize("err", ["command-line: line 0: Bad configuration option: bogus\n",
                                 'command-line line 0: unsupported option "maybe".\n'])
def test_bad_ssh_options_are_invalid_input(err):
    exc = ssh_failure("b", None, err)
    assert isinstance(exc, InvalidInput) and "ssh refused the ssh options for b" in exc.msg


def test_a_remote_command_s_own_255_is_not_taken_for_ssh():
    assert ssh_failure("b", None, "custom tool: gave up\n") is None


class CannedLocal(SubprocessRunner):
    """A local runner whose ssh prints what ssh printed; other commands run."""

    def __init__(self, rc, err):
        super(CannedLocal, self).__init__()
        self.canned = (rc, "", err)
        self.calls = []

    #: what ``ssh -O check`` of the shared connection answers (0: its master runs)
    master = 0

    def run(self, argv, data=None, check=True, timeout=None):
        self.calls.append(argv)
        if "-O" in argv:
            return self.master, "", "" if self.master == 0 else "Control socket connect: No such file or directory\n"
        return self.canned


def test_run_raises_host_error_for_ssh_failures_even_without_check():
    local = CannedLocal(255, STDERR["permission_denied"])
    r = SshRunner("root@10.231.7.2", local=local)
    with pytest.raises(HostError) as err:
        r.run(["/sbin/btrfs", "subvolume", "list", "/x"], check=False)
    assert err.value.details["cause"] == "permission_denied"


def test_run_reports_the_remote_command_s_failure_with_its_host():
    r = SshRunner("backup", local=CannedLocal(1, "ERROR: cannot find /x\n"))
    with pytest.raises(CommandError) as err:
        r.run(["/sbin/btrfs", "receive", "/x"])
    assert err.value.msg == "/sbin/btrfs failed on backup with exit status 1: ERROR: cannot find /x"
    assert r.run(["/sbin/btrfs", "receive", "/x"], check=False)[0] == 1
    r255 = SshRunner("backup", local=CannedLocal(255, "custom tool: gave up\n"))
    with pytest.raises(CommandError) as err:
        r255.run(["/opt/tool"])
    assert err.value.rc == 255 and "failed on backup" in err.value.msg


def test_a_silent_255_with_the_shared_connection_gone_is_a_lost_connection():
    """A client of a shared connection says nothing when the session dies
    (the master's stderr is not ours): the master gone tells it apart from
    the command's own 255."""
    local = CannedLocal(255, "")
    local.master = 255
    r = SshRunner("backup", local=local)
    with pytest.raises(HostError) as err:
        r.run(["/opt/tool"], check=False)
    assert err.value.details["cause"] == "connection_lost" and "backup" in err.value.msg
    assert local.calls[-1][-4:] == ["-O", "check", "--", "backup"]
    # without sharing nothing is asked: the 255 is the command's
    alone = CannedLocal(255, "")
    alone.master = 255
    with pytest.raises(CommandError):
        SshRunner("backup", local=alone, share=False).run(["/opt/tool"])
    assert not any("-O" in c for c in alone.calls)


# --- pipes, with a loopback "host": the command string parsed by a local sh -----------

class LoopbackSsh(SshRunner):
    """An SshRunner whose 'ssh' is a local sh -c <the remote command>."""

    def ssh_argv(self, argv):
        return ["sh", "-c", remote_command(argv)]

    def resolve(self, name):
        return None


def test_pipe_across_keeps_hostile_arguments_and_data(tmp_path):
    local = SubprocessRunner()
    host = LoopbackSsh("backup", local=local)
    dest = tmp_path / "it's $(x);.bin"
    rc, out, err = pipe_across([(local, ["printf", "%s\\0"] + HOSTILE), (host, ["dd", "of=" + str(dest), "status=none"])])
    assert rc == 0 and dest.read_bytes().decode().split("\0")[:-1] == HOSTILE
    assert host.pipe([["cat", str(dest)], ["wc", "-c"]])[1].strip() == str(len(dest.read_bytes()))


def test_pipe_across_reports_the_failing_receiver_with_its_host_not_the_sender_s_sigpipe():
    local = SubprocessRunner()
    host = LoopbackSsh("backup", local=local)
    with pytest.raises(CommandError) as err:
        pipe_across([(local, ["yes"]), (host, ["sh", "-c", "head -c 10 >/dev/null; echo 'ERROR: refused' >&2; exit 3"])])
    exc = err.value
    assert exc.msg == "sh failed on backup with exit status 3: ERROR: refused"
    assert exc.stderr.startswith("(yes was stopped by SIGPIPE when sh -c exited)\n")
    assert exc.details["failed_command"][0] == "sh" and exc.argv[0] == "yes" and "|" in exc.argv
    with pytest.raises(CommandError) as err:
        pipe_across([(host, ["cat", "/no/such/file"]), (local, ["wc", "-c"])])
    assert err.value.msg.startswith("cat failed on backup with exit status 1: ")
    rc, dummy, text = pipe_across([(local, ["echo", "x"]), (host, ["sh", "-c", "exit 4"])], check=False)
    assert rc == 4


def test_pipe_across_refuses_runners_that_do_not_share_the_local_one():
    with pytest.raises(ValueError):
        pipe_across([(SubprocessRunner(), ["true"]), (LoopbackSsh("b", local=SubprocessRunner()), ["true"])])
    with pytest.raises(ValueError):
        pipe_across([(SubprocessRunner(), ["true"])])


def test_hooks_on_another_host_are_not_pretended():
    with pytest.raises(NotImplementedError):
        SshRunner("b", local=SubprocessRunner()).run_hook(["true"], 5)


def test_check_mode_wraps_the_ssh_runner_and_judges_the_remote_argv():
    from ansible_collections.pitcopy.versions.plugins.module_utils._runner import MutationRefused, ReadOnlyRunner

    local = CannedLocal(0, "")
    ro = ReadOnlyRunner(SshRunner("backup", local=local))
    ro.run(["/sbin/btrfs", "subvolume", "show", "/x"])
    assert local.calls[-1][-2:] == ["backup", remote_command(["/sbin/btrfs", "subvolume", "show", "/x"])]
    with pytest.raises(MutationRefused):
        ro.run(["/sbin/btrfs", "subvolume", "delete", "/x"])
    assert len(local.calls) == 1
