# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: target selection for 10,000 sources against 10,000 candidate
targets per target pool, mixed sizes and kinds; and, for comparison, a naive
all-pairs scan (every source against every candidate) timed on a smaller size
and extrapolated quadratically. Prints figures and ratios; asserts nothing.

Run: PYTHONPATH=<tree holding ansible_collections/> python tests/benchmarks/bench_selection.py [N]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import random
import sys
import time

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    PoolDefinition,
    TargetPool,
    Volume,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._selection import TargetScan, select_targets
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FakeClock, MemoryBackend, SimpleWindow

TECH = "lvm_clone"
GIB = 1 << 30


class MixedKindsBackend(MemoryBackend):
    """lv sources take lv targets; thin_lv sources take lv or thin_lv."""

    def target_kinds(self, source_kind):
        return frozenset(("lv", "thin_lv")) if source_kind == "thin_lv" else frozenset((source_kind,))


def environment(n, seed=1):
    rnd = random.Random(seed)
    volumes = {}
    sources = []
    targets = []
    for i in range(n):
        name = "vg/src%05d" % i
        volumes[name] = Volume(name, rnd.choice(("lv", "lv", "thin_lv")), rnd.randint(1, 64) * GIB,
                               rnd.choice((512, 512, 4096)), frozenset((TECH,)))
        sources.append(name)
    for i in range(n):
        name = "tg/t%05d" % i
        # a few percent more room than the sources need, so nearly all pair
        volumes[name] = Volume(name, rnd.choice(("lv", "lv", "thin_lv")), rnd.randint(1, 66) * GIB,
                               rnd.choice((512, 512, 4096)), frozenset((TECH,)))
        targets.append(name)
    return volumes, sources, targets


def engine_selection(backend, volumes, sources, targets):
    scan = TargetScan(backend, "bench", TECH, "01", targets, volumes, {})
    return select_targets(scan, sources)


def naive_selection(backend, volumes, sources, targets):
    """Fig. 5 literally: scan every candidate for every source, keep the best."""
    taken = set()
    pairs = []
    unpaired = 0
    for s in sources:
        src = volumes[s]
        kinds = backend.target_kinds(src.kind)
        best = None
        for t in targets:
            v = volumes[t]
            if t in taken or TECH not in v.technologies or v.kind not in kinds:
                continue
            if v.block_size != src.block_size or v.size < src.size:
                continue
            if best is None or (v.size, t) < best:
                best = (v.size, t)
        if best is None:
            unpaired += 1
        else:
            taken.add(best[1])
            pairs.append(CopyPair(s, best[1]))
    return pairs, unpaired


class DictStore:
    """The StateStore API on a dict: the engine's own time, without YAML and
    fsync (bench_store.py measures those)."""

    def __init__(self):
        self.states = {}

    @contextlib.contextmanager
    def locked(self, name):
        yield

    def load(self, name):
        return self.states.get(name)

    def save(self, state):
        self.states[state.definition.name] = state

    def path(self, name):
        return "<memory>/" + name

    def pool_names(self):
        return sorted(self.states)


def engine_round(n):
    """Whole plans on n sources: pre-pair two versions, take three copies."""
    backend = MixedKindsBackend(TECH)
    volumes, sources, targets = environment(n, seed=2)
    backend.volumes = dict(volumes)
    more = ["tg/u%05d" % i for i in range(n)]
    for name, t in zip(more, targets):
        v = volumes[t]
        backend.volumes[name] = Volume(name, v.kind, v.size, v.block_size, v.technologies)
    engine = RecordEngine(DictStore(), lambda t: backend, clock=FakeClock(), window_factory=SimpleWindow)
    definition = PoolDefinition("bench", TECH, tuple(sources), 2,
                                (TargetPool("01", tuple(targets)), TargetPool("02", tuple(more))))
    timings = []
    with engine.session("bench") as s:
        s.plan_define(definition).apply()
        t0 = time.perf_counter()
        s.plan_prepair(versions=2, allow_unpaired=True).apply()
        timings.append(("plan_prepair(versions=2) + apply", time.perf_counter() - t0))
        for i in range(3):
            t0 = time.perf_counter()
            try:
                plan = s.plan_copy()
            except Exception as exc:  # pylint: disable=broad-except
                # unpaired sources refuse the copy; drop them and go on
                keep = set(u["source"] for u in exc.details["unpaired"])
                definition = PoolDefinition("bench", TECH, tuple(x for x in definition.sources if x not in keep),
                                            2, definition.target_pools)
                s.plan_define(definition).apply()
                t0 = time.perf_counter()
                plan = s.plan_copy()
            decided = time.perf_counter() - t0
            plan.apply()
            timings.append(("plan_copy() decision, version %d (%s)" % (
                i + 1, plan.result["version"]["pre_copy_record"]), decided))
            timings.append(("  apply incl. memory backend, version %d" % (i + 1), time.perf_counter() - t0 - decided))
        t0 = time.perf_counter()
        s.plan_prepair(versions=2, allow_unpaired=True).apply()
        timings.append(("plan_prepair(versions=2) + apply, after 3 versions", time.perf_counter() - t0))
        t0 = time.perf_counter()
        s.plan_verify()
        timings.append(("plan_verify() (2 kept versions + 2 pre-pairings)", time.perf_counter() - t0))
        pairs = len(s.state.replication_records[-1].pairs)
    return timings, pairs


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    backend = MixedKindsBackend(TECH)
    volumes, sources, targets = environment(n)
    runs = []
    for dummy in range(3):
        t0 = time.perf_counter()
        pairs, unpaired = engine_selection(backend, volumes, sources, targets)
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    print("engine selection: %d sources x %d candidates: best of 3 %.3f s (runs: %s); %d paired, %d unpaired"
          % (n, n, best, ", ".join("%.3f" % r for r in runs), len(pairs), len(unpaired)))

    small = max(200, n // 20)
    v2, s2, t2 = environment(small)
    t0 = time.perf_counter()
    npairs, nunp = naive_selection(backend, v2, s2, t2)
    naive_small = time.perf_counter() - t0
    epairs, eunp = engine_selection(backend, v2, s2, t2)
    same = [(p.source, p.target) for p in npairs] == [(p.source, p.target) for p in epairs]
    naive_full = naive_small * (n / float(small)) ** 2
    print("naive all-pairs scan: %d x %d took %.3f s; extrapolated to %d x %d: %.1f s" % (
        small, small, naive_small, n, n, naive_full))
    print("same choices as the engine at %d x %d: %s" % (small, small, same))
    print("ratio naive (extrapolated) / engine: %.0fx" % (naive_full / best))

    timings, pairs = engine_round(n)
    print("engine plans on %d sources (%d pairs per version), two target pools of %d, state kept in memory:"
          % (n, pairs, n))
    for label, secs in timings:
        print("  %-52s %.3f s" % (label, secs))


if __name__ == "__main__":
    main()
