# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target selection (Fig. 4) and target scan (Fig. 5)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pitcopy.versions.plugins.module_utils._model import Volume
from ansible_collections.pitcopy.versions.plugins.module_utils._selection import (
    MAX_REASONS,
    TargetScan,
    block_sizes_match,
    select_implied,
    select_targets,
)
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend

TECH = "lvm_clone"
GIB = 1 << 30


def vol(name, size=GIB, kind="lv", block_size=512, techs=(TECH,), owner=None, foreign=False):
    return Volume(name, kind, size, block_size, frozenset(techs), owner=owner, foreign_data=foreign)


class ThinToo(MemoryBackend):
    def target_kinds(self, source_kind):
        return frozenset(("lv", "thin_lv")) if source_kind == "thin_lv" else frozenset((source_kind,))


def run(volumes, sources, candidates, reserved=None, backend=None):
    backend = backend or MemoryBackend(TECH)
    vols = {v.name: v for v in volumes}
    scan = TargetScan(backend, "P", TECH, "01", candidates, vols, reserved or {})
    pairs, unpaired = select_targets(scan, sources)
    return [(p.source, p.target) for p in pairs], unpaired


def test_best_fit_in_pool_order():
    vols = [vol("A", 2 * GIB), vol("B", GIB), vol("t_big", 4 * GIB), vol("t_fit", 2 * GIB), vol("t_small", GIB)]
    pairs, unpaired = run(vols, ["A", "B"], ["t_big", "t_fit", "t_small"])
    assert pairs == [("A", "t_fit"), ("B", "t_small")]
    assert unpaired == []


def test_ties_broken_by_name_and_pool_order_matters():
    vols = [vol("A"), vol("B"), vol("t2"), vol("t1")]
    assert run(vols, ["A", "B"], ["t2", "t1"])[0] == [("A", "t1"), ("B", "t2")]
    assert run(vols, ["B", "A"], ["t2", "t1"])[0] == [("B", "t1"), ("A", "t2")]


def test_smaller_source_does_not_take_the_only_big_target_when_a_fit_exists():
    vols = [vol("A", GIB), vol("B", 8 * GIB), vol("t8", 8 * GIB), vol("t1", GIB)]
    assert run(vols, ["A", "B"], ["t8", "t1"])[0] == [("A", "t1"), ("B", "t8")]


def test_every_rule_rejects_and_says_why():
    vols = [
        vol("A", 2 * GIB),
        vol("t_small", GIB),
        vol("t_bs", 4 * GIB, block_size=4096),
        vol("t_kind", 4 * GIB, kind="thin_lv"),
        vol("t_tech", 4 * GIB, techs=("zfs_send",)),
        vol("t_foreign", 4 * GIB, foreign=True),
        vol("t_other", 4 * GIB, owner="Q"),
        vol("t_res", 4 * GIB),
    ]
    cands = ["t_small", "t_bs", "t_kind", "t_tech", "t_foreign", "t_other", "t_res", "t_gone"]
    pairs, unpaired = run(vols, ["A"], cands, reserved={"t_res": "already paired with B in version 2"})
    assert pairs == []
    assert len(unpaired) == 1 and unpaired[0].source == "A" and unpaired[0].target_pool == "01"
    assert list(unpaired[0].reasons) == [
        "t_small: 1073741824 bytes is smaller than the source's 2147483648 bytes",
        "t_bs: logical block size 4096 differs from the source's 512",
        "t_kind: is of kind thin_lv; a source of kind lv needs one of: lv",
        "t_tech: cannot take part in lvm_clone copies (supports: zfs_send)",
        "t_foreign: holds data that is not a copy of pool P, so it is never overwritten",
        "t_other: carries the ownership mark of copy pool Q",
        "t_res: already paired with B in version 2",
        "t_gone: does not exist on this host",
    ]


def test_own_mark_is_eligible_and_geometry_zero_matches():
    vols = [vol("A", block_size=0), vol("t", owner="P", block_size=4096)]
    assert run(vols, ["A"], ["t"])[0] == [("A", "t")]
    assert block_sizes_match(0, 512) and block_sizes_match(512, 0) and not block_sizes_match(512, 4096)


def test_compatible_kinds_choose_smallest_across_buckets():
    vols = [vol("A", GIB, kind="thin_lv"), vol("t_lv", 3 * GIB), vol("t_thin", 2 * GIB, kind="thin_lv")]
    pairs = run(vols, ["A"], ["t_lv", "t_thin"], backend=ThinToo(TECH))[0]
    assert pairs == [("A", "t_thin")]
    vols[2] = vol("t_thin", 4 * GIB, kind="thin_lv")
    pairs = run(vols, ["A"], ["t_lv", "t_thin"], backend=ThinToo(TECH))[0]
    assert pairs == [("A", "t_lv")]


def test_size_need_not_fit_when_backend_says_so():
    class NoFit(MemoryBackend):
        def size_must_fit(self):
            return False

    vols = [vol("A", 8 * GIB), vol("t", GIB)]
    assert run(vols, ["A"], ["t"], backend=NoFit(TECH))[0] == [("A", "t")]


def test_reasons_are_capped():
    vols = [vol("A", 100 * GIB)] + [vol("t%03d" % i, GIB) for i in range(50)]
    unpaired = run(vols, ["A"], ["t%03d" % i for i in range(50)])[1]
    reasons = unpaired[0].reasons
    assert len(reasons) == MAX_REASONS + 1
    assert reasons[-1] == "... and 30 more candidates of target pool 01, none eligible"


def test_empty_target_pool_and_missing_or_wrong_source():
    unpaired = run([vol("A")], ["A"], [])[1]
    assert unpaired[0].reasons == ("target pool 01 has no target volumes",)
    unpaired = run([vol("t")], ["A"], ["t"])[1]
    assert unpaired[0].reasons == ("source A does not exist on this host",)
    be = MemoryBackend("zfs_send")
    unpaired = run([vol("A", kind="snapshot"), vol("t")], ["A"], ["t"], backend=be)[1]
    assert "source A is of kind snapshot" in unpaired[0].reasons[0]


def test_claimed_targets_are_skipped():
    vols = [vol("A"), vol("B"), vol("t1"), vol("t2"), vol("t3")]
    scan = TargetScan(MemoryBackend(TECH), "P", TECH, "01", ["t1", "t2", "t3"], {v.name: v for v in vols})
    scan.claim("B", "t2")
    pairs = select_targets(scan, ["A"])[0]
    assert [(p.source, p.target) for p in pairs] == [("A", "t1")]
    scan.claim("X", "t3")
    pairs, unpaired = select_targets(scan, ["B"])
    assert pairs == [] and "t3: already chosen for X in this record" in unpaired[0].reasons


def test_implied_targets():
    be = MemoryBackend("lvm_thin")
    vols = {"vg/A": vol("vg/A", kind="thin_lv"), "vg/B": vol("vg/B", kind="thin_lv"),
            "vg/B@P.01": vol("vg/B@P.01", kind="thin_lv"),
            "vg/C": vol("vg/C", kind="thin_lv"), "vg/C@P.01": vol("vg/C@P.01", kind="thin_lv", owner="P")}
    # vg/C@P.01: the copy of the version this one replaces (its record names it)
    pairs, unpaired = select_implied(be, "P", "01", ["vg/A", "vg/B", "vg/C"], vols, recorded={"vg/C@P.01"})
    assert [(p.source, p.target) for p in pairs] == [("vg/A", "vg/A@P.01"), ("vg/C", "vg/C@P.01")]
    assert unpaired[0].source == "vg/B"
    assert "vg/B@P.01: exists and is not a copy of pool P" in unpaired[0].reasons[0]


def test_implied_target_holding_a_copy_no_record_has_is_never_overwritten():
    """Our mark alone does not make a copy ours to destroy: without a record
    naming it (an older state file put back, a record deleted, a look-alike)
    it is verify_records' untracked_copy, left for a human."""
    be = MemoryBackend("lvm_thin")
    vols = {"vg/C": vol("vg/C", kind="thin_lv"), "vg/C@P.01": vol("vg/C@P.01", kind="thin_lv", owner="P")}
    pairs, unpaired = select_implied(be, "P", "01", ["vg/C"], vols)
    assert pairs == [] and unpaired[0].source == "vg/C"
    assert "vg/C@P.01: holds a copy with the mark of pool P that no record of the pool has" in unpaired[0].reasons[0]
    assert "untracked_copy" in unpaired[0].reasons[0]


def naive(volumes, sources, candidates, backend):
    """Fig. 5 literally, the reference the fast path must agree with."""
    taken = set()
    out = []
    for s in sources:
        src = volumes[s]
        best = None
        for t in candidates:
            v = volumes[t]
            if t in taken or v.foreign_data or (v.owner not in (None, "P")) or TECH not in v.technologies:
                continue
            if v.kind not in backend.target_kinds(src.kind) or not block_sizes_match(src.block_size, v.block_size):
                continue
            if v.size < src.size:
                continue
            if best is None or (v.size, t) < best:
                best = (v.size, t)
        if best is not None:
            taken.add(best[1])
            out.append((s, best[1]))
    return out


volume_st = st.tuples(
    st.integers(1, 6), st.sampled_from(["lv", "thin_lv"]), st.sampled_from([0, 512, 4096]),
    st.booleans(), st.sampled_from([None, None, "P", "Q"]), st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(volume_st, min_size=1, max_size=12), st.lists(volume_st, max_size=15))
def test_fast_path_agrees_with_the_literal_scan(srcs, tgts):
    volumes = {}
    sources = []
    for i, (size, kind, bs, _t, _o, _f) in enumerate(srcs):
        name = "s%02d" % i
        volumes[name] = vol(name, size, kind, bs)
        sources.append(name)
    cands = []
    for i, (size, kind, bs, tech_ok, owner, foreign) in enumerate(tgts):
        name = "t%02d" % i
        volumes[name] = vol(name, size, kind, bs, techs=(TECH,) if tech_ok else ("btrfs_send",), owner=owner,
                            foreign=foreign and owner is None)
        cands.append(name)
    backend = ThinToo(TECH)
    scan = TargetScan(backend, "P", TECH, "01", cands, volumes, {})
    pairs, unpaired = select_targets(scan, sources)
    assert [(p.source, p.target) for p in pairs] == naive(volumes, sources, cands, backend)
    assert sorted([p.source for p in pairs] + [u.source for u in unpaired]) == sorted(sources)
    assert len(set(p.target for p in pairs)) == len(pairs)
    for u in unpaired:
        assert u.reasons
