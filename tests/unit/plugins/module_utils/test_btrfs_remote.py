# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_send target pools on another host (issue 14, push), fast: a fake
local runner stands for ssh and answers the agent's requests, so what is
checked is the argv the managed host runs, how the remote command splits
for the remote shell, and that a user's names travel intact (as JSON on the
agent's stdin, or as quoted words). The agent itself runs here for real,
under python3, on a plain directory (marks need no btrfs).
tests/real/test_btrfs_push.py proves the whole push between two hosts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shlex
import subprocess
import sys

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs_remote import RemoteSite, agent_source
from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition, check_values
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, SshSettings, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import (
    MutationRefused,
    ReadOnlyRunner,
    SubprocessRunner,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import _dump_definition, _load_definition

HOSTILE_HOSTS = ["-oProxyCommand=touch /tmp/pwned", "root@b;touch x", "b c", "$(x)", "root@-b", "a\nb", ""]


class FakeSsh(SubprocessRunner):
    """The managed host's runner: every ssh argv is kept; the remote command
    is split as the remote shell would, and answered like the target host."""

    def __init__(self, answers=None):
        super(FakeSsh, self).__init__()
        self.calls = []
        self.answers = answers or {}

    def resolve(self, name):
        return name

    def remote(self, argv):
        assert argv[0] == "ssh" and "--" in argv
        words = shlex.split(argv[-1])
        assert words[0] == "env"
        return [w for w in words[1:] if "=" not in w or not w.split("=", 1)[0].isupper()]

    def run(self, argv, data=None, check=True, timeout=None):
        argv = [str(a) for a in argv]
        words = self.remote(argv)
        self.calls.append((words, data))
        if words[:2] == ["sh", "-c"]:  # SshRunner.resolve
            return 0, "/usr/bin/%s\n" % words[-1], ""
        if words[1:3] == ["-S", "-c"]:  # the agent
            request = json.loads(data.decode("utf-8"))
            # a scan answers nothing here: every read is then asked on its own
            return 0, json.dumps([[True, self.answers.get(op, [] if op == "scan" else None)]
                                  for op, _args in request]), ""
        return 0, "", ""


def remote_definition(host="root@backup", ssh=None, technology="btrfs_send"):
    return PoolDefinition(name="p", technology=technology, sources=("/srv/db",), versions=2,
                          target_pools=(TargetPool("l", ("/backup/l",)),
                                        TargetPool("r", ("/offsite/r",), host=host)),
                          ssh=ssh)


def test_agent_request_carries_hostile_paths_intact_on_stdin_not_in_the_command():
    local = FakeSsh(answers={"read_mark": None})
    site = RemoteSite("root@backup", SshSettings(port=2222, identity_file="/k", options=("A=b",)), local)
    weird = "/offsite/r/it's $(touch pwned); `x` \"q\" -x"
    assert site.call("read_mark", weird) is None
    words, data = local.calls[-1]
    # the remote shell sees exactly: python3 -S -c <agent>, nothing of the user's
    assert words == ["/usr/bin/python3", "-S", "-c", agent_source()]
    assert json.loads(data.decode("utf-8")) == [["read_mark", [weird]]]


def test_remote_deletions_are_one_quoted_argv_on_the_target_host():
    local = FakeSsh(answers={"is_subvolume": True})
    backend = BtrfsSendBackend(runner=local)
    backend.use_definition(remote_definition())
    doomed = ["/offsite/r/db", "/offsite/r/.pitcopy-staging.db"]
    assert backend._delete_subvolumes(doomed) == doomed
    deletes = [w for w, _d in local.calls if "subvolume" in w]
    assert deletes == [["/usr/bin/btrfs", "subvolume", "delete", "--"] + doomed]
    assert backend.host_of("/offsite/r/db") == "root@backup" and backend.host_of("/backup/l/db") is None


def test_remote_site_in_check_mode_refuses_changes_before_anything_runs():
    local = FakeSsh(answers={"exists": False})
    site = RemoteSite("root@backup", None, ReadOnlyRunner(local))
    assert site.call("exists", "/offsite/r/db") is False  # reads run
    before = len(local.calls)
    for op, args in (("write_mark", ("/offsite/r/db", {}, True)), ("rename", ("/a", "/b")),
                     ("remove_mark", ("/a",)), ("unlink", ("/a",))):
        with pytest.raises(MutationRefused):
            site.call(op, *args)
    assert len(local.calls) == before
    # and a command that changes the host goes through the read-only judge
    with pytest.raises(MutationRefused):
        site.runner.run(["btrfs", "subvolume", "delete", "--", "/offsite/r/db"])


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_hostile_hosts_are_refused_naming_the_value(host):
    with pytest.raises(InvalidInput) as err:
        check_values(remote_definition(host=host))
    assert "target_pools[1].host" in err.value.msg and repr(host) in err.value.msg


def test_hostile_ssh_settings_are_refused():
    for ssh, hint in ((SshSettings(options=("BatchMode=no",)), "BatchMode"),
                      (SshSettings(options=("-oProxyCommand=x",)), "Key=value"),
                      (SshSettings(port=0), "1 to 65535"),
                      (SshSettings(identity_file="relative/key"), "absolute path")):
        with pytest.raises(InvalidInput) as err:
            check_values(remote_definition(ssh=ssh))
        assert err.value.msg.startswith("ssh: ") and hint in err.value.msg


def test_host_is_refused_where_the_technology_cannot_push_yet():
    from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_class

    for tech, source, targets in (("zfs_send", "tank/db", ("backup/l", "backup/r")),
                                  ("lvm_clone", "vg/db", ("vg/l", "vg/r"))):
        d = PoolDefinition(name="p", technology=tech, sources=(source,), versions=2,
                           target_pools=(TargetPool("l", targets[:1]), TargetPool("r", targets[1:], host="root@b")))
        with pytest.raises(InvalidInput) as err:
            check_definition(d, backend_class(tech)(runner=FakeSsh()))
        assert "root@b" in err.value.msg and tech in err.value.msg and "only btrfs_send" in err.value.msg
    # ssh without any remote target pool means nothing: refused, not ignored
    d = PoolDefinition(name="p", technology="btrfs_send", sources=("/srv/db",), versions=1,
                       target_pools=(TargetPool("l", ("/backup/l",)),), ssh=SshSettings(port=22))
    with pytest.raises(InvalidInput) as err:
        check_definition(d, BtrfsSendBackend(runner=FakeSsh()))
    assert "ssh" in err.value.msg and "host" in err.value.msg


def test_state_file_keeps_host_and_ssh_and_an_older_file_loads_without_them():
    d = remote_definition(ssh=SshSettings(port=2222, identity_file="/k", options=("A=b",)))
    dumped = _dump_definition(d)
    assert dumped["target_pools"][1]["host"] == "root@backup" and "host" not in dumped["target_pools"][0]
    assert _load_definition(dumped) == d
    older = dict(dumped)
    older.pop("ssh")
    older["target_pools"] = [dict(tp) for tp in dumped["target_pools"]]
    older["target_pools"][1].pop("host")
    loaded = _load_definition(older)
    assert loaded.ssh is None and all(tp.host is None for tp in loaded.target_pools)
    assert "ssh" not in _dump_definition(loaded)


def test_the_agent_runs_the_backend_s_own_mark_functions(tmp_path):
    """The agent's source is the backend's functions: run it for real (here,
    as on the target host) and read its marks with the local code."""
    from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs

    copy = str(tmp_path / "it's a copy")
    mark = {"pitcopy": 1, "pool": "p", "version": 3}
    request = [["write_mark", [copy, mark, True]], ["read_mark", [copy]], ["exists", [copy]],
               ["listdir", [str(tmp_path / "missing")]], ["unlink", [str(tmp_path / "missing")]]]
    proc = subprocess.run([sys.executable, "-c", agent_source()], input=json.dumps(request).encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    answers = json.loads(proc.stdout.decode())
    assert answers[0] == [True, None] and answers[1] == [True, mark] and answers[2] == [True, False]
    assert answers[3][0] is False and answers[3][1][0] == 2  # ENOENT, as an OSError would say
    assert answers[4] == [True, None]
    assert _btrfs.read_mark(copy) == mark
    assert sorted(os.listdir(str(tmp_path))) == [_btrfs.MARK_PREFIX + "it's a copy" + _btrfs.MARK_SUFFIX]


def test_ssh_connections_are_shared_per_settings_in_a_private_directory():
    from ansible_collections.pitcopy.versions.plugins.module_utils._remote import SshRunner

    def control(**ssh):
        argv = SshRunner.from_pool("root@b", ssh=ssh, local=FakeSsh()).ssh_argv(["true"])
        opts = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")
        return opts.get("ControlMaster"), opts.get("ControlPath"), opts.get("ControlPersist")

    master, path, persist = control(identity_file="/k1")
    assert master == "auto" and persist == "60" and path.endswith("-%C")
    st = os.lstat(os.path.dirname(path))
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == os.geteuid()
    # another identity or known_hosts never rides on this connection
    assert control(identity_file="/k2")[1] != path
    assert control(identity_file="/k1", options=["UserKnownHostsFile=/x"])[1] != path
    assert control(identity_file="/k1")[1] == path
    # the user's own sharing settings win: none of ours
    assert control(options=["ControlMaster=no"]) == ("no", None, None)


def test_every_global_a_shipped_function_reads_is_in_the_agent():
    """The agent is built from a list of the backend's functions: one that
    calls a helper left off the list fails only on the target host (as
    fs_info did when its ioctl helper was factored out). Compiled, not run:
    every global name the shipped code reads must be defined in the agent."""
    import builtins
    import types

    from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs_remote

    namespace = {}
    source = agent_source()
    exec(compile(source.replace("\nmain()\n", "\n"), "<agent>", "exec"), namespace)  # pylint: disable=exec-used

    def global_names(code):
        names = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                names |= global_names(const)
        return names

    # the target host receives copies, it never snapshots: the kernel seam's
    # snapshot step is shipped with its class but never called there
    never_called = {"BtrfsKernel.prepare_snapshot"}
    missing = {}
    for obj in _btrfs_remote._SHIPPED:
        funcs = [obj] if isinstance(obj, types.FunctionType) else [
            f for f in vars(obj).values() if isinstance(f, (types.FunctionType, staticmethod))]
        for f in funcs:
            f = getattr(f, "__func__", f)
            if f.__qualname__ in never_called:
                continue
            for name in global_names(f.__code__):
                # attribute names appear in co_names too: only those that are
                # module globals of _btrfs/_quiesce can be missing helpers
                module = sys.modules[f.__module__]
                if hasattr(module, name) and not hasattr(builtins, name) and name not in namespace:
                    missing.setdefault(f.__qualname__, []).append(name)
    assert not missing, missing


class LocalAgent(FakeSsh):
    """ssh to a host that is this one: the agent runs here for real."""

    def run(self, argv, data=None, check=True, timeout=None):
        words = self.remote([str(a) for a in argv])
        self.calls.append((words, data))
        if words[:2] == ["sh", "-c"]:
            return 0, "%s\n" % sys.executable, ""
        proc = subprocess.run([sys.executable] + words[1:], input=data, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_a_phase_of_reads_is_one_agent_run_per_host(tmp_path):
    """The reads of a host's target directories are answered by one
    ``scan`` run until the host changes; a mark written or removed keeps
    the scan true, any other change (a rename) makes the next read scan
    again; the answers are those the operations give one by one."""
    from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs

    d = str(tmp_path / "r")
    os.mkdir(d)
    os.mkdir(os.path.join(d, "db"))
    _btrfs.write_mark(os.path.join(d, "db"), {"pitcopy": 1, "pool": "p", "version": 1})
    _btrfs.write_mark(os.path.join(d, "gone"), {"pitcopy": 1, "pool": "p", "version": 2})
    local = LocalAgent()
    site = RemoteSite("root@backup", None, local)
    site.dirs.append(d)
    reads = [("listdir", (d,)), ("exists", (d + "/db",)), ("read_mark", (d + "/db",)),
             ("read_mark", (d + "/gone",)), ("exists", (d + "/gone",)), ("exists", (d + "/other",)),
             ("read_mark", (d + "/other",)), ("is_subvolume", (d + "/db",)), ("target_problem", (d,))]
    cached = [site.call(op, *args) for op, args in reads]
    assert site.runs == 1
    # the same answers as one agent run per read
    one_by_one = RemoteSite("root@backup", None, LocalAgent())
    assert cached == [one_by_one.call(op, *args) for op, args in reads]
    assert one_by_one.runs == len(reads)
    assert cached[2]["version"] == 1 and cached[4] is False and cached[6] is None
    site.write_mark(d + "/new", {"pitcopy": 1, "pool": "p", "version": 3})
    assert site.call("read_mark", d + "/new")["version"] == 3 and site.runs == 2
    site.remove_marks([d + "/gone", d + "/new"])
    assert site.call("read_mark", d + "/gone") is None and site.runs == 3
    assert sorted(os.listdir(d)) == [".pitcopy-mark.db.json", "db"]
    site.call("rename", d + "/db", d + "/db2")
    assert site.call("exists", d + "/db2") is True and site.runs == 5  # scanned again
