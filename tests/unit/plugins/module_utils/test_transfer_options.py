# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_pool ``transfer`` (issue 14, item 5): the option, its store and
refusals, and the argv the send backends build from it, replayed without
storage (zfs send -w/-c/-L, the filter in the pipe, a raw stream of an
encrypted source, raw false refused). The proof on the tools:
tests/real/test_btrfs_transfer.py natively and
tests/real/test_zfs_encryption.py in the ZFS guest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import resolve_filter
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    PoolDefinition,
    TargetPool,
    TransferSettings,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._pool_options import definition, stored_options
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine
from ansible_collections.pitcopy.versions.tests.unit.replay import RecordedBeforeEncryption

CAT = shutil.which("cat")

ZDEF = PoolDefinition(name="x", technology="zfs_send", sources=("s/a", "s/b"), versions=2,
                      target_pools=(TargetPool("A", ("t/A/a", "t/A/b")), TargetPool("B", ("t/B/a", "t/B/b"))))


def zdef(**transfer):
    return PoolDefinition(name=ZDEF.name, technology=ZDEF.technology, sources=ZDEF.sources, versions=2,
                          target_pools=ZDEF.target_pools, transfer=TransferSettings(**transfer))


class Runner(object):
    """Answers ``zfs get`` with ``rows`` (name -> {prop: value}), any other
    ``run`` with success; records every argv and pipe; resolves programs
    as ``programs`` says."""

    def __init__(self, rows=None, programs=None):
        self.rows = rows or {}
        self.programs = programs if programs is not None else {"cat": CAT}
        self.argvs = []
        self.pipes = []

    def resolve(self, name):
        return self.programs.get(name)

    def run(self, argv, data=None, check=True, timeout=None):
        argv = [str(a) for a in argv]
        self.argvs.append(argv)
        if argv[:2] == ["zfs", "get"]:
            i = RecordedBeforeEncryption._props_index(argv)
            props, names = argv[i].split(","), argv[i + 1:]
            out = []
            for name, row in sorted(self.rows.items()):
                if "-r" in argv and not any(name == n or name.startswith(n + "/") for n in names):
                    continue
                if "-r" not in argv and name not in names:
                    continue
                out += ["%s\t%s\t%s\t-" % (name, p, row[p]) for p in props if p in row]
            return 0, "\n".join(out) + "\n", ""
        return 0, "", ""

    def pipe(self, argvs, check=True, timeout=None, meter=None):
        self.pipes.append([list(a) for a in argvs])
        if meter is not None:
            meter["bytes"] = 1234
        return 0, "", ""


def rows(encrypted=("s/a",)):
    out = {"s": {"type": "filesystem", "available": "1000000000", "encryption": "off"},
           "t": {"type": "filesystem", "available": "1000000000", "encryption": "off"}}
    for n in ("s/a", "s/b"):
        out[n] = {"type": "filesystem", "referenced": "1000", "encryption": "aes-256-gcm" if n in encrypted else "off"}
    return out


def sent(d, runner, bases=None):
    """The pipes one zfs_send transfer of version 2 runs (check_capacity
    first, as the engine calls it); ``bases`` found usable (their checks
    are test_zfs_incremental's and the replays')."""
    b = ZfsSendBackend(runner)
    pairs = [CopyPair("s/a", "t/A/a"), CopyPair("s/b", "t/A/b")]
    b.check_capacity(d, pairs, [], {})
    plan = b.plan_copies(d, 2, pairs)
    plan.bases = bases or {}
    b._base_problems = lambda definition, candidates: [("s/a#pitcopy-x-v1", None)] * len(candidates)
    b.transfer(plan)
    return runner.pipes, plan


# --- the option -----------------------------------------------------------------

def test_defaults_change_nothing_and_round_trip_through_the_options():
    params = dict(name="x", technology="zfs_send", sources=["s/a"], versions=1,
                  target_pools=[{"name": "A", "volumes": ["t/a"]}], snapshot_size=None, consistency="auto",
                  pre_copy_hooks=[], post_copy_hooks=[], max_age=None)
    assert definition(params).transfer == TransferSettings()
    defaults = {"raw": "auto", "compressed": False, "large_block": False, "filter": []}
    assert definition(dict(params, transfer=defaults)).transfer.is_default()
    given = {"raw": "true", "compressed": True, "large_block": True, "filter": ["pv", "-q", "-L", "10m"]}
    shaped = definition(dict(params, transfer=given))
    assert shaped.transfer == TransferSettings("true", True, True, ("pv", "-q", "-L", "10m"))
    # copy_pool_info's pool dict gives the options back (the rotation role compares them)
    again = stored_options(shaped.as_dict())
    assert again["transfer"] == {"raw": "true", "compressed": True, "large_block": True,
                                 "filter": ["pv", "-q", "-L", "10m"]}
    assert definition(dict(params, **dict((k, again[k]) for k in ("transfer",)))).transfer == shaped.transfer


@pytest.mark.parametrize("transfer, words", [
    (dict(raw="fast"), ["transfer.raw 'fast'", "auto, true, false"]),
    (dict(raw=True), ["transfer.raw True", "auto, true, false"]),
    (dict(compressed="yes"), ["transfer.compressed 'yes'", "true or false"]),
    (dict(large_block=1), ["transfer.large_block 1", "true or false"]),
    (dict(filter="pv -L 10m"), ["transfer.filter 'pv -L 10m'", "list of strings", "never a shell string"]),
    (dict(filter=("",)), ["transfer.filter ['']", "name the program"]),
    (dict(filter=("bin/pv",)), ["transfer.filter ['bin/pv']", "relative path"]),
])
def test_bad_values_refused_naming_the_value_and_what_is_accepted(tmp_path, transfer, words):
    d = zdef(**transfer)
    with pytest.raises(InvalidInput) as exc:
        check_definition(d)
    for w in words:
        assert w in exc.value.msg
    # nothing written: the engine refuses before the lock, no state file
    be = MemoryBackend("zfs_send")
    eng = make_engine(tmp_path / "state", be)
    with pytest.raises(InvalidInput):
        eng.check_definition(d)
    with pytest.raises(InvalidInput):
        with eng.session("x") as s:
            s.plan_define(d)
    assert not os.path.exists(eng.store.path("x")) and be.calls == []


@pytest.mark.parametrize("technology, transfer, words", [
    ("zfs_snapshot", dict(compressed=True), ["only applies to technology zfs_send or btrfs_send", "zfs_snapshot"]),
    ("lvm_clone", dict(filter=("cat",)), ["only applies to technology", "lvm_clone"]),
    ("btrfs_send", dict(large_block=True), ["large_block true only applies to technology zfs_send"]),
    ("btrfs_send", dict(raw="true"), ["transfer.raw 'true' only applies to technology zfs_send"]),
])
def test_options_a_technology_cannot_use_are_refused(technology, transfer, words):
    tps = () if technology == "zfs_snapshot" else (TargetPool("A", ("/b/a",)),)
    d = PoolDefinition(name="x", technology=technology, sources=("/s/a" if "btrfs" in technology else "s/a",),
                       versions=1, target_pools=tps, transfer=TransferSettings(**transfer))
    with pytest.raises(InvalidInput) as exc:
        check_definition(d)
    for w in words:
        assert w in exc.value.msg


def test_store_keeps_the_options_writes_nothing_for_defaults_and_refuses_damage(tmp_path):
    store = StateStore(str(tmp_path / "state"))
    be = MemoryBackend("btrfs_send")
    be.extra_target_kinds = {"directory"}
    be.add_volume("/d/s1")
    be.add_volume("/b/t1", size=2 << 30, kind="directory")
    eng = make_engine(tmp_path / "state", be)
    plain = PoolDefinition(name="P", technology="btrfs_send", sources=("/d/s1",), versions=1,
                           target_pools=(TargetPool("01", ("/b/t1",)),))
    with eng.session("P") as s:
        s.plan_define(plain).apply()
    with open(store.path("P")) as fh:
        assert "transfer" not in fh.read()  # an existing pool's file is as before
    shaped = PoolDefinition(name="P", technology="btrfs_send", sources=("/d/s1",), versions=1,
                            target_pools=(TargetPool("01", ("/b/t1",)),),
                            transfer=TransferSettings(compressed=True, filter=("cat",)))
    with eng.session("P") as s:
        plan = s.plan_define(shaped)
        # a changed transfer option is a redefinition, with its diff
        assert plan.changed
        assert plan.before["transfer"] == {"raw": "auto", "compressed": False, "large_block": False, "filter": []}
        assert plan.after["transfer"] == {"raw": "auto", "compressed": True, "large_block": False, "filter": ["cat"]}
        plan.apply()
    with eng.session("P") as s:
        assert not s.plan_define(shaped).changed
    assert eng.store.load("P").definition.transfer == shaped.transfer
    with open(store.path("P")) as fh:
        text = fh.read()
    assert "transfer:" in text and "filter: [cat]" in text
    for good, bad, words in [("raw: auto", "raw: fast", "'fast'"),
                             ("compressed: true", "compressed: 'yes'", "expected true or false"),
                             ("filter: [cat]", "filter: 'cat -u'", "expected a list")]:
        with open(store.path("P"), "w") as fh:
            fh.write(text.replace(good, bad))
        # a hand edit (what verify_records reseal would accept) with a bad value
        with pytest.raises(Exception) as exc:
            eng.store.load_hand_edit("P")
        assert "transfer" in str(exc.value) and words in str(exc.value), str(exc.value)


# --- zfs_send argv ---------------------------------------------------------------

def test_zfs_auto_sends_the_encrypted_source_raw_and_the_other_as_before():
    pipes, plan = sent(zdef(), Runner(rows()))
    assert [p[0] for p in pipes] == [["zfs", "send", "-w", "s/a@pitcopy-x-v2"], ["zfs", "send", "s/b@pitcopy-x-v2"]]
    assert all(len(p) == 2 and p[1][:2] == ["zfs", "receive"] for p in pipes)
    assert [s.bytes_sent for s in plan.staged] == [1234, 1234]


def test_zfs_options_and_the_filter_sit_in_the_pipe():
    runner = Runner(rows(encrypted=()))
    pipes, _plan = sent(zdef(raw="true", compressed=True, large_block=True, filter=("cat", "-u")), runner)
    assert pipes[0] == [["zfs", "send", "-w", "-c", "-L", "s/a@pitcopy-x-v2"], [CAT, "-u"], pipes[0][2]]
    assert pipes[0][2][:2] == ["zfs", "receive"] and pipes[0][2][-1] == "t/A/a.pitcopy-staging-v2"
    pipes, _plan = sent(zdef(raw="false", compressed=True), Runner(rows(encrypted=())))
    assert [p[0] for p in pipes] == [["zfs", "send", "-c", "s/a@pitcopy-x-v2"], ["zfs", "send", "-c", "s/b@pitcopy-x-v2"]]


def test_zfs_incremental_raw_from_an_encrypted_base_and_full_onto_a_decrypted_one():
    base = {"s/a": (1, CopyPair("s/a", "t/A/a"))}
    r = rows()
    r["t/A/a"] = {"type": "filesystem", "encryption": "aes-256-gcm"}
    pipes, plan = sent(zdef(), Runner(r), bases=base)
    assert pipes[0][0] == ["zfs", "send", "-w", "-i", "s/a#pitcopy-x-v1", "s/a@pitcopy-x-v2"]
    r["t/A/a"]["encryption"] = "off"  # received before raw sends: decrypted
    pipes, plan = sent(zdef(), Runner(r), bases=base)
    assert pipes[0][0] == ["zfs", "send", "-w", "s/a@pitcopy-x-v2"]
    assert "was not sent raw" in plan.facts["full_sends"]["s/a"]


def test_zfs_raw_false_refuses_an_encrypted_source_before_anything_is_made():
    runner = Runner(rows())
    b = ZfsSendBackend(runner)
    with pytest.raises(InvalidInput) as exc:
        b.check_capacity(zdef(raw="false"), [CopyPair("s/a", "t/A/a"), CopyPair("s/b", "t/A/b")], [], {})
    msg = exc.value.msg
    assert "transfer.raw false" in msg and "s/a" in msg and "aes-256-gcm" in msg and "s/b" not in msg
    assert "auto" in msg and "nothing was changed" in msg
    assert [a[:2] for a in runner.argvs] == [["zfs", "get"]] and runner.pipes == []


def test_a_filter_that_is_not_installed_is_refused_naming_it():
    d = zdef(filter=("mbuffer", "-q"))
    with pytest.raises(InvalidInput) as exc:
        resolve_filter(d, Runner(programs={}))
    assert "'mbuffer' was not found" in exc.value.msg and "install it" in exc.value.msg
    with pytest.raises(InvalidInput) as exc:
        resolve_filter(zdef(filter=("/nonexistent/pv",)), Runner())
    assert "'/nonexistent/pv'" in exc.value.msg and "not an executable file" in exc.value.msg
    assert resolve_filter(zdef(filter=("cat", "-u")), Runner()) == [CAT, "-u"]
    assert resolve_filter(zdef(), Runner()) == []
    runner = Runner(rows(), programs={})
    with pytest.raises(InvalidInput):
        ZfsSendBackend(runner).check_capacity(d, [CopyPair("s/a", "t/A/a")], [], {})
    assert runner.pipes == []


# --- btrfs_send: compressed-data where the tools have it ---------------------------

class BtrfsHelp(Runner):
    def __init__(self, help_text, version="btrfs-progs v5.16.2"):
        super(BtrfsHelp, self).__init__()
        self.help_text, self.version = help_text, version

    def run(self, argv, data=None, check=True, timeout=None):
        self.argvs.append(list(argv))
        if argv[:2] == ["btrfs", "--version"]:
            return 0, self.version + "\n", ""
        return 0, self.help_text, ""


def bdef(**transfer):
    return PoolDefinition(name="P", technology="btrfs_send", sources=("/d/s1",), versions=1,
                          target_pools=(TargetPool("01", ("/b/t1",)),), transfer=TransferSettings(**transfer))


def test_btrfs_compressed_refused_naming_the_versions_needed(tmp_path):
    stream = tmp_path / "send_stream_version"
    stream.write_text(u"2\n")
    b = BtrfsSendBackend(BtrfsHelp("usage: btrfs send [-ve] [-p <parent>] <subvol>\n"))
    b.SEND_STREAM_VERSION = str(stream)
    with pytest.raises(InvalidInput) as exc:
        b._check_transfer(bdef(compressed=True))
    msg = exc.value.msg
    assert "btrfs-progs 6.0 or later" in msg and "btrfs-progs v5.16.2" in msg and "Linux 6.0" in msg
    stream.write_text(u"1\n")
    b = BtrfsSendBackend(BtrfsHelp("  --compressed-data   send data that is compressed\n"))
    b.SEND_STREAM_VERSION = str(stream)
    with pytest.raises(InvalidInput) as exc:
        b._check_transfer(bdef(compressed=True))
    assert "send stream version 1" in exc.value.msg
    stream.write_text(u"2\n")
    b._check_transfer(bdef(compressed=True, filter=("cat",)))
    assert b._filter == [CAT] and b._send_options(bdef(compressed=True)) == ["--compressed-data"]
    assert b._send_options(bdef()) == []
