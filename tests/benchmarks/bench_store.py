# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: StateStore.save() and load() of a copy pool with 12 versions x
10,000 pairs (lvm_clone: 10,000 sources, 12 listed target pools of 10,000
volumes, a pre-pairing record and a journal), the file size, and for
comparison in the same run:

  * json.dumps / json.loads of the very same data (dump_state's dict);
  * the same data through PyYAML's pure-Python SafeDumper / SafeLoader (what
    a managed host without libyaml gets);
  * the "obvious" YAML layout (every pair a {source, target} mapping) through
    the C dumper/loader, which is why the store writes one pair per line.

Wall and CPU (process) times, best of --repeat runs; the CPU time is the
steadier figure when other work shares the 2 cores. Prints figures and
ratios; asserts nothing.

Run: PYTHONPATH=<tree holding ansible_collections/> python tests/benchmarks/bench_store.py [--pairs N] [--versions V]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import shutil
import tempfile
import time

import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils import _store
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    CopyPair,
    Journal,
    PoolDefinition,
    PoolState,
    Record,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore, dump_state, load_state


def big_state(pairs, versions):
    srcs = tuple("vg%02d/data_%05d" % (i % 13, i) for i in range(pairs))
    tps = tuple(TargetPool("tp%02d" % (v + 1), tuple("vgt%02d/clone_%02d_%05d" % (i % 11, v + 1, i) for i in range(pairs)))
                for v in range(versions))
    recs = tuple(Record(RECORD_REPLICATION, v + 1, tps[v].name, "2026-11-%02dT02:00:00Z" % (v + 1),
                        tuple(CopyPair(s, t) for s, t in zip(srcs, tps[v].volumes)), label="nightly-%02d" % (v + 1))
                 for v in range(versions))
    nxt = versions + 1
    pre = Record(RECORD_PREPAIRING, nxt, tps[0].name, "2026-11-25T01:00:00Z", recs[0].pairs)
    journal = Journal("copy", nxt, tps[0].name, recs[0].pairs, "copying", "2026-11-25T02:00:00Z",
                      replaced_version=1, label="nightly-%02d" % nxt, pid=4242)
    d = PoolDefinition("bench", "lvm_clone", srcs, versions, tps)
    return PoolState(d, recs, (pre,), versions, journal)


def timed(fn, repeat):
    """(result, best wall s, best CPU s) over ``repeat`` runs."""
    best_wall = best_cpu = float("inf")
    result = None
    for dummy in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - c0)
        best_wall = min(best_wall, time.perf_counter() - w0)
    return result, best_wall, best_cpu


def naive_layout(data):
    """dump_state's dict with every pair as a {source, target} mapping and
    every name list as a YAML list: the layout the store does not use."""
    def pairs(v):
        if isinstance(v, str):
            return [dict(zip(("source", "target"), line.split(" -> ", 1))) for line in v.splitlines()]
        return v

    def names(v):
        return v.splitlines() if isinstance(v, str) else v

    out = json.loads(json.dumps(data))
    out["definition"]["sources"] = names(out["definition"]["sources"])
    for tp in out["definition"]["target_pools"]:
        tp["volumes"] = names(tp["volumes"])
    for key in ("replication_records", "prepairing_records"):
        for rec in out[key]:
            rec["pairs"] = pairs(rec["pairs"])
    if out["journal"]:
        out["journal"]["pairs"] = pairs(out["journal"]["pairs"])
        out["journal"]["staged"] = pairs(out["journal"]["staged"])
    return out


def row(label, wall, cpu, base=None, note=""):
    ratio = ("  x%.2f" % (cpu / base)) if base else ""
    print("  %-44s wall %7.3f s  cpu %7.3f s%s%s" % (label, wall, cpu, ratio, ("  " + note) if note else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--versions", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-pure", action="store_true", help="skip the slow pure-Python YAML comparison")
    args = ap.parse_args()

    state = big_state(args.pairs, args.versions)
    tmp = tempfile.mkdtemp(prefix="bench-store-")
    try:
        store = StateStore(os.path.join(tmp, "state"))
        print("state: %d versions x %d pairs (+ pre-pairing record and journal), %d sources, %d target pools"
              % (args.versions, args.pairs, args.pairs, args.versions))
        print("PyYAML %s, C loader/dumper (libyaml): %s; cores: %s; load average: %s"
              % (yaml.__version__, _store.YAML_C, os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg())))

        dummy, save_wall, save_cpu = timed(lambda: store.save(state), args.repeat)
        loaded, load_wall, load_cpu = timed(lambda: store.load("bench"), args.repeat)
        assert loaded == state
        size = os.path.getsize(store.path("bench"))
        print("\nStateStore (the real thing: encode + verify + temp/fsync/rename/dir fsync; read + parse + build)")
        row("save()", save_wall, save_cpu)
        row("load()", load_wall, load_cpu)
        print("  file size %.2f MB (%d bytes)" % (size / 1e6, size))

        data, dwall, dcpu = timed(lambda: dump_state(state), args.repeat)
        text, ewall, ecpu = timed(lambda: _store._yaml_dump(data), args.repeat)
        parsed, pwall, pcpu = timed(lambda: _store._yaml_load(text), args.repeat)
        dummy, bwall, bcpu = timed(lambda: load_state(parsed), args.repeat)
        print("\nwhere the time goes")
        row("dump_state (model -> dict)", dwall, dcpu)
        row("YAML emit, C dumper", ewall, ecpu)
        row("YAML parse, C loader", pwall, pcpu)
        row("load_state (dict -> model)", bwall, bcpu)

        js, jdw, jdc = timed(lambda: json.dumps(data), args.repeat)
        dummy, jlw, jlc = timed(lambda: json.loads(js), args.repeat)
        print("\nsame data, other serializers (ratio = CPU time / StateStore's)")
        row("json.dumps", jdw, jdc, save_cpu)
        row("json.loads", jlw, jlc, load_cpu)

        # PyYAML's cost is per node, linear in the pairs: measured on a tenth
        # of them and scaled, to spare the shared cores ~30 s of CPU.
        scale = 10 if args.pairs >= 1000 else 1
        naive = naive_layout(dump_state(big_state(args.pairs // scale, args.versions)))
        ntext, ndw, ndc = timed(lambda: yaml.dump(naive, Dumper=yaml.CSafeDumper, sort_keys=False), 1)
        dummy, nlw, nlc = timed(lambda: yaml.load(ntext, Loader=yaml.CSafeLoader), 1)  # nosec - safe loader
        note = "(1/%d of the pairs, x%d)" % (scale, scale) if scale > 1 else ""
        row("pair-per-mapping layout, C dumper", ndw * scale, ndc * scale, save_cpu,
            "%s %.1f MB" % (note, len(ntext) * scale / 1e6))
        row("pair-per-mapping layout, C loader", nlw * scale, nlc * scale, load_cpu, note)

        if not args.skip_pure:
            pdummy, pdw, pdc = timed(lambda: yaml.dump(data, Dumper=_PureDumper, sort_keys=False,
                                                       default_flow_style=False, allow_unicode=True, width=100), 1)
            dummy, plw, plc = timed(lambda: yaml.load(text, Loader=yaml.SafeLoader), 1)  # nosec - safe loader
            row("pure-Python SafeDumper (same layout)", pdw, pdc, save_cpu)
            row("pure-Python SafeLoader (same layout)", plw, plc, load_cpu)
        print("\nno assertions: figures only (aim: save and load each under ~1 s on this machine)")
    finally:
        shutil.rmtree(tmp)


class _PureDumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
    pass


_PureDumper.add_representer(_store._Block, lambda d, v: d.represent_scalar(u"tag:yaml.org,2002:str", str(v), style="|"))
_PureDumper.add_representer(_store._Flow, lambda d, v: d.represent_sequence(u"tag:yaml.org,2002:seq", list(v), flow_style=True))


if __name__ == "__main__":
    main()
