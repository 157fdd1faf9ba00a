# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests: random sequences of pool changes and copies keep the
method's invariants."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil
import tempfile
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CopyFailed,
    InvalidInput,
    NoEligibleTarget,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1 << 30

ops = st.one_of(
    st.tuples(st.just("add_source"), st.integers(1, 3)),
    st.tuples(st.just("rm_source"), st.integers(0, 20)),
    st.tuples(st.just("add_target"), st.integers(0, 2), st.integers(1, 3)),
    st.tuples(st.just("rm_target"), st.integers(0, 2), st.integers(0, 20)),
    st.tuples(st.just("prepair"), st.integers(1, 3)),
    st.tuples(st.just("copy"), st.none()),
    st.tuples(st.just("copy"), st.none()),
    st.tuples(st.just("copy"), st.integers(0, 20)),
    st.tuples(st.just("delete"), st.integers(0, 3)),
    st.tuples(st.just("crash"), st.integers(1, 8)),
)


class Interrupted(BaseException):
    """Stands for a kill at a backend step (the subprocess crash tests do
    the real SIGKILL; this one mixes interruptions into random histories)."""


class World:
    def __init__(self, technology, versions):
        self.dir = tempfile.mkdtemp(prefix="pitcopy-prop-")
        self.be = MemoryBackend(technology)
        self.engine = make_engine(self.dir + "/state", self.be)
        self.technology = technology
        self.versions = versions
        self.serial = 0
        self.sources = [self.new_volume(GIB, "S") for dummy in range(2)]
        self.tps = []
        if technology == "lvm_clone":
            self.tps = [[self.new_volume(GIB, "t%d_" % i) for dummy in range(2)] for i in range(3)]
        self.define()

    def new_volume(self, size, prefix):
        self.serial += 1
        name = "%s%d" % (prefix, self.serial)
        self.be.add_volume(name, size=size)
        return name

    def definition(self):
        return PoolDefinition("P", self.technology, tuple(self.sources), self.versions,
                              tuple(TargetPool("%02d" % (i + 1), tuple(v)) for i, v in enumerate(self.tps)))

    def define(self):
        with self.engine.session("P") as s:
            return s.plan_define(self.definition()).apply()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def live_targets_unique(state):
    """No target in two live pairs; the one sharing allowed is a pre-pairing
    record reusing the targets of the replication record it will replace
    (the one in its target pool)."""
    def unique(records):
        seen = {}
        for rec in records:
            for p in rec.pairs:
                assert p.target not in seen, "target %s in two live pairs: %s and %s" % (p.target, seen[p.target], rec)
                seen[p.target] = rec
        return seen

    in_rr = unique(state.replication_records)
    in_ppr = unique(state.prepairing_records)
    for target, ppr in in_ppr.items():
        if target in in_rr:
            assert in_rr[target].target_pool == ppr.target_pool, (target, in_rr[target], ppr)


def check_invariants(world, state, made):
    live_targets_unique(state)
    assert len(state.replication_records) <= state.definition.versions
    assert load_state(dump_state(state)) == state
    assert world.engine.store.load("P") == state
    for rec in state.replication_records:
        sources_then = made[rec.version]
        # every source in the pool at copy time has exactly one pair, and no
        # source that had left the pool by then is paired
        assert sorted(p.source for p in rec.pairs) == sorted(sources_then)
        for p in rec.pairs:
            info = world.be.copies.get(p.target)
            assert info is not None and info["version"] == rec.version and not info["staged"]
    assert not [c for c in world.be.list_copies("P") if c.staged]
    assert state.journal is None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["lvm_clone", "lvm_thin"]), st.integers(1, 3), st.lists(ops, max_size=18))
def test_random_histories_keep_the_invariants(technology, versions, history):
    # durability is the crash tests' business; here fsync only costs time
    with mock.patch("os.fsync"):
        run_history(technology, versions, history)


def run_history(technology, versions, history):
    world = World(technology, versions)
    made = {}  # version -> the pool's sources when it was taken
    try:
        for op in history:
            kind = op[0]
            with world.engine.session("P") as s:
                before = s.state
            if kind == "add_source":
                world.sources.append(world.new_volume(op[1] * GIB, "S"))
                world.define()
            elif kind == "rm_source" and len(world.sources) > 1:
                world.sources.pop(op[1] % len(world.sources))
                world.define()
            elif kind == "add_target" and world.tps:
                world.tps[op[1]].append(world.new_volume(op[2] * GIB, "t%d_" % op[1]))
                world.define()
            elif kind == "rm_target" and world.tps and world.tps[op[1]]:
                tp = world.tps[op[1]]
                gone = tp.pop(op[2] % len(tp))
                in_rr = any(p.target == gone for r in before.replication_records for p in r.pairs)
                try:
                    world.define()
                    assert not in_rr
                except InvalidInput:
                    assert in_rr  # refused only to protect a kept version
                    tp.append(gone)
            elif kind == "prepair":
                ntp = len(before.definition.target_pool_names())
                with world.engine.session("P") as s:
                    s.plan_prepair(versions=min(op[1], ntp), allow_unpaired=True).apply()
            elif kind == "copy":
                failing = None
                if op[1] is not None:
                    failing = world.sources[op[1] % len(world.sources)]
                    world.be.fail_sources.add(failing)
                try:
                    with world.engine.session("P") as s:
                        result = s.plan_copy().apply()
                    assert failing is None
                    made[result["version"]["number"]] = list(world.sources)
                    broken = set(p["source"] for p in result["broken_pairs"])
                    assert not broken & set(world.sources)
                except (NoEligibleTarget, CopyFailed):
                    with world.engine.session("P") as s:
                        assert s.state == before  # previous valid versions intact
                finally:
                    world.be.fail_sources.clear()
            elif kind == "crash":
                calls = [0]

                def crash(step, at=op[1]):
                    calls[0] += 1
                    if calls[0] == at:
                        raise Interrupted(step)

                world.be.step = crash
                try:
                    with world.engine.session("P") as s:
                        result = s.plan_copy().apply()
                    made[result["version"]["number"]] = list(world.sources)
                except Interrupted:
                    with world.engine.session("P") as s:
                        assert s.state.journal is not None
                        world.be.step = None
                        s.plan_verify(repair=True).apply()
                        if s.state.last_version > before.last_version:
                            made[s.state.last_version] = list(world.sources)
                except NoEligibleTarget:
                    pass
                finally:
                    world.be.step = None
            elif kind == "delete" and before.replication_records:
                rec = before.replication_records[op[1] % len(before.replication_records)]
                with world.engine.session("P") as s:
                    s.plan_delete(rec.version).apply()
            with world.engine.session("P") as s:
                check_invariants(world, s.state, made)
                assert s.state.last_version >= before.last_version
        with world.engine.session("P") as s:
            assert s.plan_verify().result == {"consistent": True, "findings": []}
    finally:
        world.close()
