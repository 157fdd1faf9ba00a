# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_send with target pools on another host (issue 14, push), between
two real hosts: network namespaces with their own sshd (tests/real/hosts.py).
Host a is the managed host (sources, two local target pools, the state);
host b holds two target pools reached over ssh. Marker ``btrfs``.

The two hosts share the mounts (only the network is their own), so every
test also proves that host b's paths were touched over ssh, never here: the
runner records every command, and each receive into, deletion on or agent
run for host b's storage is an ``ssh`` argv."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import sys

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_class
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import HostError, PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, SshSettings, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._remote import SshRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import ReadOnlyRunner, SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore

pytestmark = pytest.mark.btrfs

SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))


class RecordingRunner(SubprocessRunner):
    """The managed host's runner, keeping every argv it ran."""

    def __init__(self):
        super(RecordingRunner, self).__init__(env={"PATH": SBIN_PATH})
        self.log = []

    def run(self, argv, **kw):
        self.log.append([str(a) for a in argv])
        return super(RecordingRunner, self).run(argv, **kw)

    def pipe(self, argvs, **kw):
        self.log.extend([str(a) for a in argv] for argv in argvs)
        return super(RecordingRunner, self).pipe(argvs, **kw)


class World:
    name = "push"

    def __init__(self, pair, loopfs_factory, tmp_path, host=None):
        self.pair = pair
        self.a_root = pair.a.attach_btrfs(loopfs_factory)
        self.b_root = pair.b.attach_btrfs(loopfs_factory)
        self.runner = RecordingRunner()
        self.sources = [os.path.join(self.a_root, "vol", n) for n in ("db", "www")]
        os.mkdir(os.path.join(self.a_root, "vol"))
        for s in self.sources:
            self.runner.run(["btrfs", "subvolume", "create", s])
        self.local_dirs = {}
        self.remote_dirs = {}
        pools = []
        for tp in ("l1", "l2"):
            dirs = [os.path.join(self.a_root, "backup", tp, x) for x in ("x", "y")]
            for d in dirs:
                os.makedirs(d, mode=0o700)
            self.local_dirs[tp] = dirs
            pools.append(TargetPool(tp, tuple(dirs)))
        with pair.a.entered():
            self.b = SshRunner.from_pool(pair.b.destination, ssh=pair.ssh_options(), local=SubprocessRunner(
                env={"PATH": SBIN_PATH}))
            for tp in ("r1", "r2"):
                dirs = [os.path.join(self.b_root, "offsite", tp, x) for x in ("x", "y")]
                self.b.run(["mkdir", "-p", "-m", "0700", "--"] + dirs)
                self.remote_dirs[tp] = dirs
                pools.append(TargetPool(tp, tuple(dirs), host=host or pair.b.destination))
        self.target_pools = tuple(pools)
        ssh = pair.ssh_options()
        self.ssh = SshSettings(identity_file=ssh["identity_file"], options=tuple(ssh["options"]))
        self.store = StateStore(str(tmp_path / "state"))
        self.engine = RecordEngine(self.store, lambda tech: backend_class(tech)(runner=self.runner))
        self.expected = {}  # version -> {source: sha256 of its data file}

    def definition(self, versions=4):
        return PoolDefinition(name=self.name, technology="btrfs_send", sources=tuple(self.sources),
                              versions=versions, target_pools=self.target_pools, ssh=self.ssh)

    def define(self):
        with self.engine.session(self.name) as s:
            self.engine.check_definition(self.definition())
            return s.plan_define(self.definition()).apply()

    def copy(self):
        with self.engine.session(self.name) as s:
            return s.plan_copy().apply()

    def verify(self, repair=False):
        with self.engine.session(self.name) as s:
            return s.plan_verify(repair=repair).apply()

    def write(self, version):
        shas = {}
        for s in self.sources:
            data = ("version %d of %s\n" % (version, s)).encode() + os.urandom(64 * 1024)
            with open(os.path.join(s, "data"), "wb") as fh:
                fh.write(data)
            shas[s] = hashlib.sha256(data).hexdigest()
        self.runner.run(["btrfs", "filesystem", "sync", self.a_root])
        return shas

    def remote_tp(self, name):
        return name in self.remote_dirs

    def sha_on_b(self, path):
        return self.b.run(["sha256sum", "--", path])[1].split()[0]


def copy_path(pair):
    return os.path.join(pair.target, os.path.basename(pair.source))


def ssh_argvs(log):
    return [a for a in log if os.path.basename(a[0]) == "ssh"]


def touches_b_locally(world):
    """The commands run here (not over ssh) that name host b's storage. One
    read is left out: list_copies lists the subvolumes of every btrfs
    mounted here (``btrfs subvolume list``), and host b's storage is
    mounted here too, as the test hosts share the mounts; what it finds in
    host b's target directories is dropped (they are listed over ssh)."""
    return [a for a in world.runner.log if os.path.basename(a[0]) != "ssh"
            and any(w.startswith(world.b_root) for w in a)
            and a[:3] != ["btrfs", "subvolume", "list"]]


def check_kept_versions(world):
    state = world.store.load(world.name)
    kept = sorted(r.version for r in state.replication_records)
    for r in state.replication_records:
        assert r.status == "valid", (r.version, r.status)
        for p in r.pairs:
            want = world.expected[r.version][p.source]
            data = os.path.join(copy_path(p), "data")
            if world.remote_tp(r.target_pool):
                assert world.sha_on_b(data) == want, (r.version, p)
            else:
                with open(data, "rb") as fh:
                    assert hashlib.sha256(fh.read()).hexdigest() == want, (r.version, p)
    return kept


def test_push_two_local_two_remote_target_pools_rotate_six_versions(two_hosts, loopfs_factory, tmp_path):
    pair = two_hosts
    w = World(pair, loopfs_factory, tmp_path)
    with pair.a.entered():
        w.define()
        info = w.engine.session(w.name)
        for version in range(1, 7):
            w.expected[version] = w.write(version)
            result = w.copy()
            assert result["version"]["number"] == version and result["version"]["status"] == "valid"
            # the first round fills each target pool: full sends; then each
            # version is sent incrementally from the one its target pool holds
            bases = [p["base_version"] for p in result["version"]["pairs"]]
            assert bases == [version - 4 if version > 4 else None] * 2, (version, result["version"]["pairs"])
            assert all(p["bytes_sent"] > 64 * 1024 for p in result["version"]["pairs"])
        kept = check_kept_versions(w)
        assert kept == [3, 4, 5, 6]
        state = w.store.load(w.name)
        by_tp = dict((r.target_pool, r.version) for r in state.replication_records)
        # versions rotate through the four target pools in order: 5, 6 reuse l1, l2
        assert by_tp == {"l1": 5, "l2": 6, "r1": 3, "r2": 4}
        # every copy on b was received, marked and rotated over ssh
        assert touches_b_locally(w) == []
        remote_cmds = [a[-1] for a in ssh_argvs(w.runner.log)]
        assert any("btrfs receive -- %s" % d in c for c in remote_cmds for d in w.remote_dirs["r1"])
        # the records are consistent with both hosts
        result = w.verify()
        assert result["consistent"] is True, result["findings"]
        with info as s:
            pool = s.info()
        assert [tp["host"] for tp in pool["target_pools"]] == [None, None, pair.b.destination, pair.b.destination]
        assert pool["ssh"]["identity_file"] == pair.client_key

        # a copy on b deleted behind pitcopy's back: reported, repaired
        r3 = state.replication(3)
        gone = r3.pairs[0]
        w.b.run(["btrfs", "subvolume", "delete", "--", copy_path(gone)])
        result = w.verify()
        assert result["consistent"] is False
        assert [(f["version"], f["source"], f["problem"]) for f in result["findings"]] == \
            [(3, gone.source, "copy_missing")]
        repaired = w.verify(repair=True)
        state = w.store.load(w.name)
        # a pair gone: the version is incomplete, its other copy kept
        assert state.replication(3).status == "incomplete"
        assert gone.source not in [p.source for p in state.replication(3).pairs]
        assert repaired["findings"][0]["action"]
        # the repaired target pool takes the next version, which is whole again
        w.expected[7] = w.write(7)
        result = w.copy()
        assert result["version"]["target_pool"] == "r1" and result["version"]["status"] == "valid"
        # pushed incrementally from version 3 where its copy is still on b;
        # the pair whose copy was deleted is sent in full, and says so
        bases = dict((p["source"], p["base_version"]) for p in result["version"]["pairs"])
        assert bases == dict((s_, None if s_ == gone.source else 3) for s_ in w.sources), bases
        assert check_kept_versions(w) == [4, 5, 6, 7]
        # version 3's remaining copy on b was replaced over ssh
        remote_cmds = [a[-1] for a in ssh_argvs(w.runner.log)]
        assert any("btrfs subvolume delete -- %s" % w.remote_dirs["r1"][0] in c or
                   "btrfs subvolume delete -- %s" % w.remote_dirs["r1"][1] in c for c in remote_cmds)
        assert w.verify()["consistent"] is True

        # check mode: the plan of the next copy reads both hosts, changes nothing
        ro = RecordEngine(w.store, lambda tech: backend_class(tech)(runner=ReadOnlyRunner(w.runner)))
        before = open(w.store.path(w.name), "rb").read()
        with ro.session(w.name, shared=True) as s:
            assert s.plan_copy().changed
        # restoring from a copy on b is not supported yet: refused, nothing changed
        with pytest.raises(PitcopyError) as err:
            with w.engine.session(w.name) as s:
                s.plan_restore(4).apply()
        assert "is on host %s" % pair.b.destination in err.value.msg and "not supported yet" in err.value.msg
        assert open(w.store.path(w.name), "rb").read() == before
        # a version on b deleted: its copies are gone there, the others stay
        v4 = w.store.load(w.name).replication(4)
        with w.engine.session(w.name) as s:
            s.plan_delete(4).apply()
        for p in v4.pairs:
            assert w.b.run(["test", "-e", copy_path(p)], check=False)[0] == 1
        assert check_kept_versions(w) == [5, 6, 7]
        assert touches_b_locally(w) == []


def test_unreachable_host_is_refused_and_nothing_changes(two_hosts, loopfs_factory, tmp_path):
    pair = two_hosts
    # a host on the pair's own /30 that does not exist: nobody answers
    w = World(pair, loopfs_factory, tmp_path)
    with pair.a.entered():
        w.define()
    before_state = open(w.store.path(w.name), "rb").read()
    bad = tuple(TargetPool(tp.name, tp.volumes, host="root@10.231.7.3" if tp.host else None)
                for tp in w.target_pools)
    with pair.a.entered():
        bad_definition = PoolDefinition(name=w.name, technology="btrfs_send", sources=tuple(w.sources),
                                        versions=4, target_pools=bad,
                                        ssh=SshSettings(identity_file=w.ssh.identity_file,
                                                        options=w.ssh.options + ("ConnectTimeout=3",)))
        with pytest.raises(HostError) as err:
            w.engine.check_definition(bad_definition)
        assert "10.231.7.3" in err.value.msg and "cannot reach" in err.value.msg, err.value.msg
        # b's key changed, and a key b does not authorize: refused naming b, nothing saved
        for ssh, cause in ((SshSettings(identity_file=w.ssh.identity_file,
                                        options=("UserKnownHostsFile=%s" % pair.wrong_known_hosts,)),
                            "host_key_mismatch"),
                           (SshSettings(identity_file=pair.stranger_key, options=w.ssh.options),
                            "permission_denied")):
            with pytest.raises(HostError) as err:
                w.engine.check_definition(PoolDefinition(
                    name=w.name, technology="btrfs_send", sources=tuple(w.sources), versions=4,
                    target_pools=w.target_pools, ssh=ssh))
            assert err.value.details.get("cause") == cause and pair.b.destination in err.value.msg, err.value.msg
        # the defined pool's host stopped: the copy is refused before anything is made
        pair.b.stop()
        with pytest.raises(HostError) as err:
            w.copy()
        assert pair.b.destination in err.value.msg, err.value.msg
    assert open(w.store.path(w.name), "rb").read() == before_state
    # nothing on either host: no snapshot, no mark, no staged copy
    for dirs in list(w.local_dirs.values()) + list(w.remote_dirs.values()):
        for d in dirs:
            assert os.listdir(d) == []
    assert not os.path.exists(os.path.join(w.a_root, "vol", ".pitcopy", w.name, "send")) or \
        os.listdir(os.path.join(w.a_root, "vol", ".pitcopy", w.name, "send")) == []


def test_missing_remote_target_directory_is_named_with_its_host(two_hosts, loopfs_factory, tmp_path):
    pair = two_hosts
    w = World(pair, loopfs_factory, tmp_path)
    with pair.a.entered():
        w.define()
        missing = w.remote_dirs["r1"][0]
        w.b.run(["rmdir", "--", missing])
        for version in range(1, 3):
            w.expected[version] = w.write(version)
            w.copy()
        before = w.store.load(w.name)
        w.write(3)
        with pytest.raises(Exception) as err:
            w.copy()
        assert missing in err.value.msg and pair.b.destination in err.value.msg, err.value.msg
        assert w.store.load(w.name).replication_records == before.replication_records
        assert w.b.run(["ls", "-A", "--", w.remote_dirs["r1"][1]])[1] == ""


def test_push_incremental_puts_only_the_change_on_the_wire(two_hosts, loopfs_factory, tmp_path):
    """One target pool on host b: version 1 is sent in full, version 2
    (1% of the data changed) with ``btrfs send -p`` into ``ssh b btrfs
    receive``; the bytes counted in the pipe are at most 2% of the full
    stream, and the data on b is the source's."""
    pair = two_hosts
    w = World(pair, loopfs_factory, tmp_path)
    big = os.path.join(w.sources[0], "big")
    with open(big, "wb") as fh:
        fh.write(os.urandom(16 * 1024 * 1024))
    remote = tuple(tp for tp in w.target_pools if tp.name == "r1")
    definition = PoolDefinition(name=w.name, technology="btrfs_send", sources=tuple(w.sources), versions=1,
                                target_pools=remote, ssh=w.ssh)
    with pair.a.entered():
        with w.engine.session(w.name) as s:
            w.engine.check_definition(definition)
            s.plan_define(definition).apply()
        first = dict((p["source"], p) for p in w.copy()["version"]["pairs"])
        assert [first[s_]["base_version"] for s_ in w.sources] == [None, None]
        full = first[w.sources[0]]["bytes_sent"]
        assert full >= 16 * 1024 * 1024
        with open(big, "r+b") as fh:  # 1% of it rewritten
            for i in range(10):
                fh.seek(i * 1600 * 1024)
                fh.write(os.urandom(16 * 1024))
        with open(big, "rb") as fh:
            want = hashlib.sha256(fh.read()).hexdigest()
        runs_before = len(ssh_argvs(w.runner.log))
        second = dict((p["source"], p) for p in w.copy()["version"]["pairs"])
        assert [second[s_]["base_version"] for s_ in w.sources] == [1, 1]
        assert second[w.sources[0]]["bytes_sent"] <= 0.02 * full, (second, full)
        state = w.store.load(w.name)
        copy = copy_path(state.replication(2).pairs[0])
        assert w.sha_on_b(os.path.join(copy, "big")) == want
        # the base kept here is the parent the copy on b was received from
        info = w.b.run(["btrfs", "subvolume", "show", "--", copy])[1]
        base = os.path.join(os.path.dirname(w.sources[0]), ".pitcopy", w.name, "send",
                            ".pitcopy-base.2." + os.path.basename(w.sources[0]))
        base_uuid = w.runner.run(["btrfs", "subvolume", "show", "--", base])[1]
        uuid_of = [ln.split()[-1] for ln in base_uuid.splitlines() if ln.strip().startswith("UUID:")][0]
        assert any(ln.strip().startswith("Received UUID:") and ln.split()[-1] == uuid_of
                   for ln in info.splitlines()), info
        assert touches_b_locally(w) == []
        sys.stderr.write("[push incremental] %d of %d bytes (%.2f%%); %d ssh runs for version 2\n" % (
            second[w.sources[0]]["bytes_sent"], full, 100.0 * second[w.sources[0]]["bytes_sent"] / full,
            len(ssh_argvs(w.runner.log)) - runs_before))
        assert w.verify()["consistent"] is True
