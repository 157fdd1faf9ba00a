# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A version chronology in the spirit of the spec's Appendix A: seven copy
versions, with sources and target volumes added and removed between them,
and the records asserted before and after every step."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.utils import snapshot_env

GIB = 1 << 30


class Chronology:
    def __init__(self, tmp_path):
        self.be = MemoryBackend("lvm_clone")
        self.engine = make_engine(tmp_path / "state", self.be)
        self.sources = ["A", "B"]
        self.tps = {"01": ["a", "b"], "02": ["c", "d"]}
        for name in ("A", "B", "a", "b", "c", "d"):
            self.be.add_volume(name, size=GIB)

    def definition(self):
        return PoolDefinition("P", "lvm_clone", tuple(self.sources), 2,
                              tuple(TargetPool(k, tuple(v)) for k, v in sorted(self.tps.items())))

    def define(self):
        with self.engine.session("P") as s:
            return s.plan_define(self.definition()).apply()

    def prepair(self, n=1, **kw):
        with self.engine.session("P") as s:
            return s.plan_prepair(versions=n, **kw).apply()

    def copy(self):
        with self.engine.session("P") as s:
            version = s.state.last_version + 1
            for src in self.sources:
                self.be.set_data(src, "%s@v%d" % (src, version))
            result = s.plan_copy().apply()
        for p in result["version"]["pairs"]:
            assert self.be.copy_data(p["target"]) == "%s@v%d" % (p["source"], version)
        return result

    def records(self):
        with self.engine.session("P") as s:
            info = s.info()

        def flat(r):
            return (r["version"], r["target_pool"], " ".join("%s_%s" % (p["source"], p["target"]) for p in r["pairs"]))

        return [flat(r) for r in info["replication_records"]], [flat(r) for r in info["prepairing_records"]]


def short(result):
    v = result["version"]
    return (v["number"], v["target_pool"], v["pre_copy_record"],
            " ".join("%s_%s" % (p["source"], p["target"]) for p in v["pairs"]), result["replaced_version"],
            " ".join("%s_%s" % (p["source"], p["target"]) for p in result["broken_pairs"]))


def test_seven_versions(tmp_path):
    c = Chronology(tmp_path)
    c.define()
    assert c.records() == ([], [])

    # T1-: pre-pair both upcoming versions (Table 3.6)
    c.prepair(2)
    assert c.records() == ([], [(1, "01", "A_a B_b"), (2, "02", "A_c B_d")])
    # T1: V1 from its pre-pairing record
    assert short(c.copy()) == (1, "01", "prepairing", "A_a B_b", None, "")
    assert c.records() == ([(1, "01", "A_a B_b")], [(2, "02", "A_c B_d")])

    # source C and targets e (01), f (02) join: V2's pre-pairing record gets C
    c.sources.append("C")
    c.tps["01"].append("e")
    c.tps["02"].append("f")
    for name in ("C", "e", "f"):
        c.be.add_volume(name, size=GIB)
    assert c.define()["unpaired"] == []
    assert c.records() == ([(1, "01", "A_a B_b")], [(2, "02", "A_c B_d C_f")])
    # T2: V2
    assert short(c.copy()) == (2, "02", "prepairing", "A_c B_d C_f", None, "")
    assert c.records() == ([(1, "01", "A_a B_b"), (2, "02", "A_c B_d C_f")], [])

    # A leaves the source pool; T3: V3 replaces V1 and reuses its pairs,
    # A's pair is broken and its target a goes to the newcomer C (best fit)
    c.sources.remove("A")
    c.define()
    assert short(c.copy()) == (3, "01", "replication", "B_b C_a", 1, "A_a")
    assert c.records() == ([(2, "02", "A_c B_d C_f"), (3, "01", "B_b C_a")], [])

    # target d holds V2: it cannot leave target pool 02 while V2 exists
    c.tps["02"].remove("d")
    with pytest.raises(InvalidInput, match="target d of target pool 02 holds the copy of B in version 2"):
        c.define()
    c.tps["02"].insert(1, "d")

    # a big source D joins with a big target in each target pool
    c.sources.append("D")
    c.tps["02"].append("g")
    c.tps["01"].append("h")
    c.be.add_volume("D", size=2 * GIB)
    c.be.add_volume("g", size=2 * GIB)
    c.be.add_volume("h", size=4 * GIB)
    c.define()
    c.prepair(1)
    assert c.records()[1] == [(4, "02", "B_d C_f D_g")]
    # T4: V4 replaces V2, and V2's pair of A (which left at T3) is broken now
    assert short(c.copy()) == (4, "02", "prepairing", "B_d C_f D_g", 2, "A_c")
    assert c.records() == ([(3, "01", "B_b C_a"), (4, "02", "B_d C_f D_g")], [])

    # pre-pair V5, then take away the target it chose for D: re-paired or reported
    c.prepair(1)
    assert c.records()[1] == [(5, "01", "B_b C_a D_h")]
    c.tps["01"].remove("e")  # unused: nothing changes
    with c.engine.session("P") as s:
        plan = s.plan_define(c.definition())
        assert plan.changed and plan.result["unpaired"] == []
        plan.apply()
    assert c.records()[1] == [(5, "01", "B_b C_a D_h")]
    c.tps["01"].remove("h")
    result = c.define()
    assert [u["source"] for u in result["unpaired"]] == ["D"]
    assert "e: does not exist" not in " ".join(result["unpaired"][0]["reasons"])
    assert result["unpaired"][0]["reasons"] == [
        "a: already chosen for C in this record",
        "b: already chosen for B in this record",
    ]
    assert c.records()[1] == [(5, "01", "B_b C_a")]
    c.tps["01"].append("i")
    c.be.add_volume("i", size=2 * GIB)
    assert c.define()["unpaired"] == []
    assert c.records()[1] == [(5, "01", "B_b C_a D_i")]
    # T5
    assert short(c.copy()) == (5, "01", "prepairing", "B_b C_a D_i", 3, "")
    assert c.records() == ([(4, "02", "B_d C_f D_g"), (5, "01", "B_b C_a D_i")], [])

    # C leaves; T6 breaks C's pair of the record it replaces
    c.sources.remove("C")
    c.define()
    assert short(c.copy()) == (6, "02", "replication", "B_d D_g", 4, "C_f")
    assert c.records() == ([(5, "01", "B_b C_a D_i"), (6, "02", "B_d D_g")], [])

    # E joins; T7 gives E the target that C's broken pair released
    c.sources.append("E")
    c.be.add_volume("E", size=GIB)
    c.define()
    assert short(c.copy()) == (7, "01", "replication", "B_b D_i E_a", 5, "C_a")
    assert c.records() == ([(6, "02", "B_d D_g"), (7, "01", "B_b D_i E_a")], [])

    # the replaced versions' copies are gone, kept ones intact
    assert sorted((x.target, x.version) for x in c.be.list_copies("P")) == [
        ("a", 7), ("b", 7), ("d", 6), ("g", 6), ("i", 7)]
    with c.engine.session("P") as s:
        assert s.plan_verify().result == {"consistent": True, "findings": []}
        assert s.state.last_version == 7


def test_snapshot_rotation_with_implied_targets(tmp_path):
    be, engine, definition = snapshot_env(tmp_path, "lvm_thin", ("vg/A", "vg/B"), 3)
    with engine.session("P") as s:
        s.plan_define(definition).apply()
        pp = s.plan_prepair(versions=3).apply()
        assert [r["target_pool"] for r in pp["records"]] == ["01", "02", "03"]
        assert pp["records"][1]["pairs"] == [{"source": "vg/A", "target": "vg/A@P.02"},
                                             {"source": "vg/B", "target": "vg/B@P.02"}]
        for n in range(1, 6):
            be.set_data("vg/A", "A%d" % n)
            r = s.plan_copy(label="run%d" % n).apply()
            assert r["version"]["number"] == n
            assert r["replaced_version"] == (n - 3 if n > 3 else None)
        info = s.info()
    assert [(r["version"], r["target_pool"], r["label"]) for r in info["replication_records"]] == [
        (3, "03", "run3"), (4, "01", "run4"), (5, "02", "run5")]
    assert be.copy_data("vg/A@P.01") == "A4"
    assert be.copy_data("vg/A@P.02") == "A5"
    assert be.volumes["vg/A@P.01"].owner == "P"
    # a foreign volume squatting on the next implied name is never overwritten
    be.remove_volume("vg/B@P.03")
    be.add_volume("vg/B@P.03", kind="thin_lv", foreign_data=True)
    with engine.session("P") as s:
        with pytest.raises(Exception) as exc:
            s.plan_copy()
        assert "vg/B@P.03: exists and is not a copy of pool P" in str(exc.value.details["unpaired"])
