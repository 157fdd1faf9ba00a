# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_remote.SshRunner between two real hosts (network namespaces, each with
its own sshd: tests/real/hosts.py), the groundwork of off-host copies
(issue 14). Marker ``btrfs``: they run in the native btrfs stage (root, ip
netns, loop devices for the hosts' storage).

The managed host is host a; every command below runs there (``entered``),
and ssh reaches host b over the pair's own veth link."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import time

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, HostError
from ansible_collections.pitcopy.versions.plugins.module_utils._remote import SshRunner, pipe_across
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

pytestmark = pytest.mark.btrfs

SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))

#: names a user may give a volume; each must arrive as one argument, intact
HOSTILE = ["two words", "it's", 'say "hi"', "a;touch pwned", "$(touch pwned)", "`touch pwned`",
           "line\nbreak", "-leading-dash", "star*?[x]", "back\\slash", "dollar$HOME", "tab\there", "ünï"]


@pytest.fixture
def local():
    return SubprocessRunner(env={"PATH": SBIN_PATH})


def remote(pair, local, host=None, **kw):
    ssh = pair.ssh_options()
    ssh.update(kw)
    return SshRunner.from_pool((host or pair.b).destination, ssh=ssh, local=local)


def test_command_runs_on_the_other_host_with_hostile_names_intact(two_hosts, local, tmp_path):
    pair = two_hosts
    target = tmp_path / "b-files"
    target.mkdir()
    with pair.a.entered():
        b = remote(pair, local)
        # it is host b that answers: its own address, seen from inside
        out = b.run(["ip", "-o", "-4", "addr", "show", "dev", "pcv0"])[1]
        assert " %s/30 " % pair.b.address in out
        for name in HOSTILE:
            b.run(["touch", "--", str(target / name)])
        rc, out, err = b.run(["printf", "%s\\0"] + HOSTILE)
    assert (rc, err) == (0, "")
    assert out.split("\0")[:-1] == HOSTILE
    assert sorted(os.listdir(str(target))) == sorted(HOSTILE)
    # no word was run as a command, on either side
    assert not os.path.exists(str(target / "pwned")) and not os.path.exists("pwned")
    assert not any(n.startswith("pwned") for n in os.listdir(str(tmp_path)))


def test_remote_locale_programs_and_failures(two_hosts, local):
    pair = two_hosts
    with pair.a.entered():
        b = remote(pair, local)
        assert b.run(["sh", "-c", 'printf %s "$LC_ALL"'])[1] == "C"
        # resolved once, on host b, sbin included (a non-login PATH may lack it)
        assert b.resolve("ip") in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")
        assert b.resolve("no-such-program-pitcopy") is None
        with pytest.raises(CommandError) as info:
            b.run(["ls", "/no/such/dir"])
        assert b.run(["ls", "/no/such/dir"], check=False)[0] == 2
    msg = info.value.msg
    assert msg.startswith("ls failed on %s with exit status 2: " % pair.b.destination), msg
    assert "/no/such/dir" in msg and info.value.details["host"] == pair.b.destination


def test_round_trip_time(two_hosts, local, capsys):
    pair = two_hosts
    with pair.a.entered():
        b = remote(pair, local)
        b.run(["true"])
        times = []
        for dummy in range(5):
            t0 = time.monotonic()
            b.run(["true"])
            times.append(time.monotonic() - t0)
    with capsys.disabled():
        print("\nssh round trip (connection + true), 5 runs: median %.0f ms, min %.0f ms"
              % (sorted(times)[2] * 1000, min(times) * 1000))
    assert max(times) < 10


def test_pipe_across_hosts_keeps_the_data_and_names_the_failing_side(two_hosts, local, tmp_path):
    pair = two_hosts
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "stream.bin"
    src.write_bytes(data)
    dest = tmp_path / "on b" / "it's $(x).bin"
    dest.parent.mkdir()
    with pair.a.entered():
        b = remote(pair, local)
        rc, out, err = pipe_across([(local, ["cat", str(src)]), (b, ["dd", "of=" + str(dest), "bs=64k", "status=none"])])
        assert rc == 0
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
        # and back: b sends, a receives
        rc, out, err = pipe_across([(b, ["cat", str(dest)]), (local, ["sha256sum"])])
        assert out.split()[0] == hashlib.sha256(data).hexdigest()
        # the receiver on b fails: it is the one reported, with its host, not the writer's SIGPIPE
        with pytest.raises(CommandError) as info:
            pipe_across([(local, ["cat", str(src)]), (b, ["dd", "of=/no/such/dir/x", "status=none"])])
        # the sender fails: reported as the local command
        with pytest.raises(CommandError) as sender:
            pipe_across([(local, ["cat", str(tmp_path / "missing")]), (b, ["dd", "of=/dev/null", "status=none"])])
        rc, dummy, err = pipe_across([(local, ["cat", str(src)]), (b, ["sh", "-c", "exit 3"])], check=False)
        assert rc == 3
    exc = info.value
    assert exc.msg.startswith("dd failed on %s with exit status 1: " % pair.b.destination), exc.msg
    assert "/no/such/dir/x" in exc.msg
    assert exc.details["failed_command"][0] == "dd" and "|" in exc.argv
    assert sender.value.msg.startswith("cat failed with exit status 1: "), sender.value.msg
    assert "missing" in sender.value.msg


def test_btrfs_stream_from_host_a_storage_into_host_b_storage(two_hosts, local, loopfs_factory):
    """The transfer step to come, by hand: btrfs send on a's storage |
    ssh b btrfs receive on b's storage."""
    pair = two_hosts
    a_store = pair.a.attach_btrfs(loopfs_factory, size=256 * 1024 * 1024)
    b_store = pair.b.attach_btrfs(loopfs_factory, size=256 * 1024 * 1024)
    assert a_store != b_store and os.path.ismount(a_store) and os.path.ismount(b_store)
    sub = os.path.join(a_store, "data volume")
    local.run(["btrfs", "subvolume", "create", sub])
    payload = os.urandom(1024 * 1024)
    with open(os.path.join(sub, "file;1"), "wb") as fh:
        fh.write(payload)
    snap = os.path.join(a_store, "v1 $(x)")
    local.run(["btrfs", "subvolume", "snapshot", "-r", sub, snap])
    with pair.a.entered():
        b = remote(pair, local)
        pipe_across([(local, ["btrfs", "send", "-q", snap]), (b, ["btrfs", "receive", b_store])])
        out = b.run(["btrfs", "subvolume", "show", os.path.join(b_store, "v1 $(x)")])[1]
    assert "Received UUID:" in out
    with open(os.path.join(b_store, "v1 $(x)", "file;1"), "rb") as fh:
        assert fh.read() == payload


def test_unreachable_host(two_hosts, local):
    pair = two_hosts
    with pair.a.entered():
        with pytest.raises(HostError) as refused:
            remote(pair, local, port=2222).run(["true"])
        with pytest.raises(HostError) as unrouted:
            # on no network of host a (no default route there): ssh gives up at once
            SshRunner.from_pool("root@192.0.2.1", ssh=pair.ssh_options(), local=local).run(["true"])
    assert refused.value.details["cause"] == "unreachable"
    assert refused.value.msg.startswith("cannot reach %s (port 2222) over ssh: Connection refused" % pair.b.destination)
    assert unrouted.value.details["cause"] == "unreachable" and "root@192.0.2.1" in unrouted.value.msg
    assert "unreachable" in unrouted.value.msg.lower() or "timed out" in unrouted.value.msg


def test_host_key_mismatch_and_unknown_host_key(two_hosts, local, tmp_path):
    pair = two_hosts
    marker = tmp_path / "ran"
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pair.a.entered():
        wrong = SshRunner.from_pool(pair.b.destination, ssh=pair.ssh_options(known_hosts=pair.wrong_known_hosts),
                                    local=local)
        with pytest.raises(HostError) as mismatch:
            wrong.run(["touch", str(marker)])
        with pytest.raises(HostError) as mismatch_pipe:
            pipe_across([(local, ["echo", "x"]), (wrong, ["touch", str(marker)])])
        unknown = SshRunner.from_pool(pair.b.destination, ssh=pair.ssh_options(known_hosts=str(empty)), local=local)
        with pytest.raises(HostError) as not_known:
            unknown.run(["touch", str(marker)])
    assert not marker.exists()
    for exc in (mismatch.value, mismatch_pipe.value):
        assert exc.details["cause"] == "host_key_mismatch"
        assert exc.msg.startswith("the ssh host key of %s does not match" % pair.b.destination), exc.msg
    assert not_known.value.details["cause"] == "host_key_unknown"
    assert empty.read_text() == ""  # strict: nothing learnt


def test_permission_denied(two_hosts, local, tmp_path):
    pair = two_hosts
    marker = tmp_path / "ran"
    with pair.a.entered():
        stranger = remote(pair, local, identity_file=pair.stranger_key)
        with pytest.raises(HostError) as denied:
            stranger.run(["touch", str(marker)])
        with pytest.raises(HostError) as denied_user:
            SshRunner.from_pool("pitcopy-nouser@%s" % pair.b.address, ssh=pair.ssh_options(), local=local).run(["true"])
    assert not marker.exists()
    exc = denied.value
    assert exc.details["cause"] == "permission_denied"
    assert exc.msg.startswith("permission denied by %s: ssh key authentication with identity_file %s failed"
                              % (pair.b.destination, pair.stranger_key)), exc.msg
    assert denied_user.value.details["cause"] == "permission_denied"
    assert "pitcopy-nouser@%s" % pair.b.address in denied_user.value.msg


def test_the_hosts_go_away_and_a_killed_run_s_leftovers_are_removed(real_workdir):
    """What the fixture's teardown relies on: destroy kills each sshd and
    deletes the namespaces; the namespaces of a run that was killed before
    its teardown (its pid gone) are removed by the next run."""
    import subprocess

    from ansible_collections.pitcopy.versions.tests.real import hosts

    pair = hosts.HostPair.create(os.path.join(real_workdir, "pair"))
    names = [h.netns for h in pair.hosts]
    pids = [h.sshd.pid for h in pair.hosts]
    assert pair.destroy() == []
    listed = hosts.run(["ip", "netns", "list"])[1]
    assert not any(n in listed for n in names)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = "pitcopy-%d-abcdef-a" % gone.pid
    hosts.run(["ip", "netns", "add", stale])
    try:
        hosts.remove_stale()
        assert stale not in hosts.run(["ip", "netns", "list"])[1]
    finally:
        hosts.remove_netns(stale)


def test_a_session_lost_while_the_command_runs(two_hosts, local):
    """The remote command kills its own sshd session: not 'unreachable'
    (it did run), but a lost connection, named as such."""
    pair = two_hosts
    with pair.a.entered():
        b = remote(pair, local)
        with pytest.raises(HostError) as lost:
            b.run(["sh", "-c", "kill -9 $PPID; sleep 5"])
    assert lost.value.details["cause"] == "connection_lost"
    assert lost.value.msg.startswith("the ssh connection to %s was lost while the command ran" % pair.b.destination)
