# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole sources restored elsewhere with lvm_clone (copy_version
state=restored, restore_to without paths): where the new LV goes, its marks,
the refusals, and a run killed before each of its commands, finished by what
verify_records repair=true calls (restore_elsewhere again), against a small
model of the lvm commands: ``lvs``/``vgs`` JSON reports as LVM prints them,
``lvcreate``, ``lvchange`` and ``lvremove``; the block copy works on the
model's data. The proof on real LVM is tests/real/test_lvm_restore_elsewhere.py
in the UML guest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._backend import Backend
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CommandError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import LvmCloneBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import TECHNOLOGIES

MiB = 1024 * 1024
POOL = "P"
A, B = "vg0/a", "vg0/b"
TA, TB = "bk/t01a", "bk/t01b"
DEF = PoolDefinition(POOL, "lvm_clone", (A, B), 2, (TargetPool("01", (TA, TB)),))
PA, PB = CopyPair(A, TA, "uuid-t01a"), CopyPair(B, TB, "uuid-t01b")
ACCEPTED = "accepted: an LV name prefix"


class Killed(BaseException):
    """The process died here."""


def _sum(data):
    return hashlib.sha256(data).hexdigest()


class LvmModel:
    """VGs and LVs (tags, permission, activation, data) as the lvm
    commands the backend runs see and change them. ``kill_at``: raise
    Killed before that mutating step (1-based; the block copy is a step)."""

    def __init__(self):
        self.vgs = {"vg0": 64 * MiB, "bk": 64 * MiB, "small": 4 * MiB}  # free bytes
        self.lvs = {}
        self.data = {}
        self.kill_at = None
        self.count = 0
        self.log = []
        self.uuids = 0

    def step(self, what):
        self.count += 1
        if self.kill_at is not None and self.count == self.kill_at:
            raise Killed(what)
        self.log.append(what)

    def add(self, name, size=8 * MiB, tags=(), writable=True, data=b""):
        vg, lv = name.split("/")
        self.uuids += 1
        self.lvs[name] = {"vg": vg, "lv": lv, "size": size, "tags": list(tags), "rw": writable, "active": True,
                          "uuid": "uuid-%s" % lv if lv.startswith("t0") else "uuid-%d" % self.uuids}
        self.vgs[vg] -= size
        self.data[name] = data

    def _row(self, name):
        lv = self.lvs[name]
        attr = "-%si-%s-----" % ("w" if lv["rw"] else "r", "a" if lv["active"] else "-")
        return {"vg_name": lv["vg"], "lv_name": lv["lv"], "lv_attr": attr, "lv_size": str(lv["size"]),
                "origin": "", "pool_lv": "", "lv_tags": ",".join(lv["tags"]), "segtype": "linear",
                "data_percent": "", "metadata_percent": "", "snap_percent": "", "lv_metadata_size": "",
                "lv_kernel_minor": "-1", "vg_extent_size": str(4 * MiB), "vg_free": str(self.vgs[lv["vg"]]),
                "vg_size": str(256 * MiB), "lv_uuid": lv["uuid"]}

    def run(self, argv, data=None, check=True):
        argv = [str(a) for a in argv]
        rc, out, err = self._run(argv)
        if check and rc != 0:
            raise CommandError("%s failed" % argv[0], argv=argv, rc=rc, stdout=out, stderr=err)
        return rc, out, err

    def _run(self, argv):
        if argv[0] in ("lvs", "vgs"):
            asked = argv[8:] or sorted(self.vgs)  # none named: all
            missing = [v for v in asked if v not in self.vgs]
            if argv[0] == "lvs":
                rows = [self._row(n) for n in sorted(self.lvs) if self.lvs[n]["vg"] in asked]
                doc = {"report": [{"lv": rows}]}
            else:
                doc = {"report": [{"vg": [{"vg_name": v, "vg_free": str(self.vgs[v]), "vg_extent_size": str(4 * MiB)}
                                          for v in asked if v in self.vgs]}]}
            err = "".join('  Volume group "%s" not found\n' % v for v in missing)
            return (5 if missing else 0), json.dumps(doc), err
        if argv[0] == "lvcreate":
            size = int(argv[argv.index("-L") + 1].rstrip("b"))
            name = "%s/%s" % (argv[-1], argv[argv.index("-n") + 1])
            tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--addtag"]
            self.step("lvcreate %s %s" % (name, " ".join(tags)))
            if self.vgs[argv[-1]] < size:
                return 5, "", '  Volume group "%s" has insufficient free space.\n' % argv[-1]
            self.add(name, size, tags, data=b"\0" * 16)
            return 0, "", ""
        if argv[0] == "lvchange":
            name = argv[-1]
            self.step(" ".join(argv[2:]))
            lv = self.lvs[name]
            for i, a in enumerate(argv):
                if a == "--deltag":
                    lv["tags"].remove(argv[i + 1])
                elif a == "--addtag":
                    lv["tags"].append(argv[i + 1])
                elif a == "-ay":
                    lv["active"] = True
            return 0, "", ""
        if argv[0] == "lvremove":
            self.step("lvremove %s" % argv[-1])
            lv = self.lvs.pop(argv[-1])
            self.vgs[lv["vg"]] += lv["size"]
            self.data.pop(argv[-1])
            return 0, "", ""
        raise AssertionError("unexpected command %r" % (argv,))


@pytest.fixture
def lvm(monkeypatch):
    m = LvmModel()
    for src, tgt, text in ((A, TA, b"v1 of a"), (B, TB, b"v1 of b")):
        m.add(src, data=b"live " + src.encode())
        m.add(tgt, writable=False, data=text, tags=[
            "pitcopy_pool=" + POOL, "pitcopy_version=1", "pitcopy_source=" + src,
            "pitcopy_size=%d" % (8 * MiB), "pitcopy_sha256=" + _sum(text)])

    def copy_blocks(src, dst, length, only_changed=False, digest=None, progress=None):
        m.step("copy %s -> %s" % (src, dst))
        data = m.data[src]
        if digest is not None:
            digest.update(data)
        m.data[dst] = data
        return length, length

    monkeypatch.setattr(_lvm, "dm_path", lambda name: name)
    monkeypatch.setattr(_lvm, "_copy_blocks", copy_blocks)
    return m


def restored(m, new, copy, data):
    """A finished restore: the copy's data in a new writable LV in ``new``'s
    VG carrying only the tag naming the copy (LV UUID and checksum)."""
    lv = m.lvs[new]
    assert m.data[new] == data and lv["rw"] and lv["active"], lv
    assert lv["tags"] == ["pitcopy_restored_from=%s:%s" % (m.lvs[copy]["uuid"], _sum(data))], lv["tags"]


def test_each_source_becomes_a_new_lv_beside_it_in_its_vg(lvm):
    b = LvmCloneBackend(runner=lvm)
    planned = b.restore_elsewhere_volumes(DEF, 1, [PA, PB], "r1_")
    assert planned == [(PA, "vg0/r1_a"), (PB, "vg0/r1_b")]
    assert lvm.log == []  # planning reads only
    for p, new in planned:
        assert b.restored_elsewhere(DEF, 1, p, new) is None
        b.restore_elsewhere(DEF, 1, p, new)
    restored(lvm, "vg0/r1_a", TA, b"v1 of a")
    restored(lvm, "vg0/r1_b", TB, b"v1 of b")
    # a plain LV of the copy's size, marked restoring until its blocks are written and checked
    assert lvm.log[:3] == ["lvcreate vg0/r1_a pitcopy_restored_from=uuid-t01a:%s pitcopy_restoring" % _sum(b"v1 of a"),
                           "copy bk/t01a -> vg0/r1_a", "--deltag pitcopy_restoring vg0/r1_a"]
    assert lvm.lvs["vg0/r1_a"]["size"] == 8 * MiB
    # not copies of the pool; the copies and production as they were
    assert sorted(c.target for c in b.list_copies(POOL)) == [TA, TB]
    assert lvm.data[A] == b"live vg0/a" and lvm.data[TA] == b"v1 of a" and not lvm.lvs[TA]["rw"]
    # again: done, nothing run
    lvm.log[:] = []
    for p, new in planned:
        assert b.restored_elsewhere(DEF, 1, p, new) is True
        b.restore_elsewhere(DEF, 1, p, new)
    assert lvm.log == []


def test_one_source_to_a_vg_lv_name_in_any_existing_vg(lvm):
    b = LvmCloneBackend(runner=lvm)
    assert b.restore_elsewhere_volumes(DEF, 1, [PA], "bk/cmp") == [(PA, "bk/cmp")]
    b.restore_elsewhere(DEF, 1, PA, "bk/cmp")
    restored(lvm, "bk/cmp", TA, b"v1 of a")


def test_the_same_target_lv_holding_a_later_version_is_another_copy(lvm):
    """A clone target keeps its LV UUID across versions: the checksum in the
    tag tells the LV made from version 1 from one of version 3."""
    b = LvmCloneBackend(runner=lvm)
    b.restore_elsewhere(DEF, 1, PA, "vg0/r1_a")
    t = lvm.lvs[TA]
    t["tags"] = [x for x in t["tags"] if not x.startswith(("pitcopy_version=", "pitcopy_sha256="))]
    t["tags"] += ["pitcopy_version=3", "pitcopy_sha256=" + _sum(b"v3 of a")]
    lvm.data[TA] = b"v3 of a"
    found = b.restored_elsewhere(DEF, 3, PA, "vg0/r1_a")
    assert found.startswith("LV vg0/r1_a exists and was not made from the copy bk/t01a of version 3"), found
    assert "pitcopy_restored_from=<that copy's LV UUID>:<its sha256" in found
    lvm.log[:] = []
    with pytest.raises(InvalidInput) as exc:
        b.restore_elsewhere(DEF, 3, PA, "vg0/r1_a")
    assert "it was left as it is" in exc.value.msg and lvm.log == [] and lvm.data["vg0/r1_a"] == b"v1 of a"


@pytest.mark.parametrize("kill_at", [1, 2, 3])
def test_a_run_killed_before_each_step_is_finished_in_one_try(lvm, kill_at):
    # the three steps: lvcreate (with both marks), the block copy, the restoring mark removed
    lvm.kill_at = kill_at
    with pytest.raises(Killed):
        LvmCloneBackend(runner=lvm).restore_elsewhere(DEF, 1, PA, "vg0/r1_a")
    lvm.kill_at = None
    # the LV exists, with both marks, from the moment it exists
    left = lvm.lvs.get("vg0/r1_a")
    assert left is None if kill_at == 1 else "pitcopy_restoring" in left["tags"], left
    b = LvmCloneBackend(runner=lvm)
    # what plan_restore_elsewhere asks: made again, never "somebody's"
    assert b.restored_elsewhere(DEF, 1, PA, "vg0/r1_a") is None
    b.restore_elsewhere(DEF, 1, PA, "vg0/r1_a")  # what verify_records repair calls
    restored(lvm, "vg0/r1_a", TA, b"v1 of a")
    assert len([x for x in lvm.log if x.startswith("lvcreate")]) == 1


def test_an_unfinished_lv_is_written_again_not_created(lvm):
    b = LvmCloneBackend(runner=lvm)
    tag = "pitcopy_restored_from=uuid-t01a:" + _sum(b"v1 of a")
    lvm.add("vg0/r1_a", tags=[tag, "pitcopy_restoring"], data=b"half")
    lvm.lvs["vg0/r1_a"]["active"] = False
    lvm.log[:] = []
    b.restore_elsewhere(DEF, 1, PA, "vg0/r1_a")
    assert lvm.log == ["-ay vg0/r1_a", "copy bk/t01a -> vg0/r1_a", "--deltag pitcopy_restoring vg0/r1_a"]
    restored(lvm, "vg0/r1_a", TA, b"v1 of a")


def test_a_copy_changed_behind_our_back_fails_and_leaves_nothing(lvm):
    lvm.data[TA] = b"changed"
    with pytest.raises(CopyFailed) as exc:
        LvmCloneBackend(runner=lvm).restore_elsewhere(DEF, 1, PA, "vg0/r1_a")
    assert "no longer matches its pitcopy_sha256= tag" in exc.value.msg, exc.value.msg
    assert "vg0/r1_a" not in lvm.lvs and lvm.log[-1] == "lvremove vg0/r1_a"


def test_lvcreate_refusing_leaves_nothing(lvm):
    lvm.vgs["vg0"] = 0  # taken between the plan and the run
    with pytest.raises(CopyFailed) as exc:
        LvmCloneBackend(runner=lvm).restore_elsewhere(DEF, 1, PA, "vg0/r1_a")
    assert "insufficient free space" in exc.value.msg and "vg0/r1_a" not in lvm.lvs


@pytest.mark.parametrize("restore_to, pairs, why", [
    ("", [PA], "is empty"),
    ("bad prefix", [PA], "is not a usable LV name prefix"),
    ("-x", [PA], "is not a usable LV name prefix"),
    ("vg0/two", [PA, PB], "names one LV but 2 sources are restored (vg0/a, vg0/b)"),
    ("vg0/a b", [PA], "is not a usable LV name"),
    ("nope/x", [PA], "puts the new LV nope/x in VG nope, which does not exist"),
    ("vg0/a", [PA], "names vg0/a itself"),
    ("bk/t01a", [PA], "names bk/t01a itself"),
])
def test_bad_restore_to_is_refused_naming_it_and_what_is_accepted(lvm, restore_to, pairs, why):
    before = json.dumps(lvm.lvs, sort_keys=True)
    with pytest.raises(InvalidInput) as exc:
        LvmCloneBackend(runner=lvm).restore_elsewhere_volumes(DEF, 1, pairs, restore_to)
    msg = exc.value.msg
    assert repr(restore_to) in msg and why in msg and ACCEPTED in msg and "in any existing VG" in msg, msg
    assert "nothing was changed" in msg and json.dumps(lvm.lvs, sort_keys=True) == before and lvm.log == []


def test_a_vg_without_room_is_refused_with_the_numbers(lvm):
    with pytest.raises(CapacityError) as exc:
        LvmCloneBackend(runner=lvm).restore_elsewhere_volumes(DEF, 1, [PA], "small/x")
    msg = exc.value.msg
    assert "need %d bytes" % (8 * MiB) in msg and "in VG small (small/x: %d)" % (8 * MiB) in msg, msg
    assert "has %d bytes" % (4 * MiB) in msg and "nothing was changed" in msg and lvm.log == []
    # both sources in vg0: 16 MiB asked of 8 free
    lvm.vgs["vg0"] = 8 * MiB
    with pytest.raises(CapacityError) as exc:
        LvmCloneBackend(runner=lvm).restore_elsewhere_volumes(DEF, 1, [PA, PB], "r1_")
    assert "need %d bytes" % (16 * MiB) in exc.value.msg, exc.value.msg
    # an LV there already does not count (restored_elsewhere says whose it is)
    lvm.add("vg0/r1_b", tags=["x"])
    lvm.vgs["vg0"] = 8 * MiB
    assert LvmCloneBackend(runner=lvm).restore_elsewhere_volumes(DEF, 1, [PA, PB], "r1_")


def test_a_copy_of_another_version_or_not_the_recorded_lv_is_refused(lvm):
    b = LvmCloneBackend(runner=lvm)
    for version, p, why in [(2, PA, "it holds version 1"),
                            (1, CopyPair(A, TA, "uuid-other"), "is not copy pool P's copy")]:
        with pytest.raises(InvalidInput) as exc:
            b.restore_elsewhere_volumes(DEF, version, [p], "r1_")
        assert why in exc.value.msg and "nothing was changed" in exc.value.msg, exc.value.msg
    assert lvm.log == []


def test_a_backend_outside_the_table_is_refused_naming_every_technology():
    class Other(LvmCloneBackend):
        technology = "memcopy"

    with pytest.raises(InvalidInput) as exc:
        Backend.restore_elsewhere_volumes(Other(runner=None), DEF, 1, [PA], "r1_")
    assert "not supported for technology memcopy; supported: %s." % ", ".join(TECHNOLOGIES) in exc.value.msg
