# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fig. 7 and Fig. 8: the copy record of a version, and the pre-pairing records.

Fig. 7 (700-716): the copy record of version n is built from the pre-pairing
record of n if there is one, else from the replication record of the version
it replaces, else from new pairs (target selection, Fig. 4/5 in
_selection.py). Fig. 8 (800-816): the pre-copy record is verified on the way:
pairs of sources that left the pool are broken, new sources are paired, a
pair whose target no longer fits is chosen again. The pre-pairing records
(prepair_record) are copy records built ahead, re-verified whenever the pool
changes ([0012]-[0013]).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    SessionBase,
    _is_int,
    _target_pool_volumes,
    iso,
    pool_dict,
    replaced_record,
    unpaired_summary,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, NoEligibleTarget
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    PRE_COPY_NONE,
    PRE_COPY_PREPAIRING,
    PRE_COPY_REPLICATION,
    RECORD_PREPAIRING,
    CopyPair,
    Record,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._selection import (
    UNTRACKED_TARGET,
    TargetScan,
    select_implied,
    select_targets,
)


class CopyRecord:
    """The pairs one version will use (Fig. 7 + Fig. 8), and where they came from."""

    def __init__(self, version, target_pool, pairs, pre_copy, pre_copy_kind, replaced, broken, unpaired):
        self.version = version
        self.target_pool = target_pool
        self.pairs = tuple(pairs)
        self.pre_copy = pre_copy
        self.pre_copy_kind = pre_copy_kind
        self.replaced = replaced
        self.broken = tuple(broken)
        self.unpaired = list(unpaired)


class CopyRecordSteps(SessionBase):
    """Fig. 7 and Fig. 8 on one pool; prepair_record."""

    @staticmethod
    def _reserved(records_rr, records_ppr):
        reserved = {}
        for rec in records_rr:
            for p in rec.pairs:
                reserved[p.target] = "already paired with %s in version %d" % (p.source, rec.version)
        for rec in records_ppr:
            for p in rec.pairs:
                reserved.setdefault(p.target, "reserved for %s by the pre-pairing record of version %d" % (
                    p.source, rec.version))
        return reserved

    def _build(self, state, definition, backend, version, volumes, prepairing=None, use_prepairing=True, when=None):
        """Fig. 7 and Fig. 8: the copy record of ``version`` (taken at
        ``when``, which a ``retention`` grid needs to choose its target pool)."""
        prepairing = state.prepairing_records if prepairing is None else prepairing
        tp = replace(state, definition=definition).target_pool_for(version, when, self.engine.tz)
        ppr = None
        if use_prepairing:
            for r in prepairing:
                if r.version == version and r.target_pool == tp:
                    ppr = r
        replaced = replaced_record(state, tp)
        if ppr is not None:
            pre, kind = ppr, PRE_COPY_PREPAIRING
        elif replaced is not None:
            pre, kind = replaced, PRE_COPY_REPLICATION
        else:
            pre, kind = None, PRE_COPY_NONE
        sources = list(definition.sources)
        in_pool = set(sources)
        # steps 612-614: pairs whose source left the pool; a pre-pairing
        # record was already trimmed when the pool changed, so the version
        # being replaced speaks for those sources too
        broken = []
        for rec in (pre, replaced):
            for p in (rec.pairs if rec is not None else ()):
                if p.source not in in_pool and p not in broken:
                    broken.append(p)
        # the only copies with our mark a copy may overwrite: those of the
        # version it replaces (one no record has is an untracked copy)
        recorded = set(p.target for p in (replaced.pairs if replaced is not None else ()))
        if backend.implied_targets:
            pairs, unpaired = select_implied(backend, definition.name, tp, sources, volumes, recorded)
            return CopyRecord(version, tp, pairs, pre, kind, replaced, broken, unpaired)
        reserved = self._reserved(
            [r for r in state.replication_records if r is not replaced],
            [r for r in prepairing if r.version != version],
        )
        candidates = _target_pool_volumes(definition, tp)
        if backend.pool_mark_is_a_copy:
            for name in candidates:
                vol = volumes.get(name)
                if vol is not None and vol.owner == definition.name and name not in recorded:
                    reserved.setdefault(name, UNTRACKED_TARGET % definition.name)
        scan = TargetScan(backend, definition.name, definition.technology, tp, candidates, volumes, reserved)
        kept = {}
        if pre is not None:
            in_tp = set(candidates)
            for p in pre.pairs:
                if p.source not in in_pool or p.source in kept or p.target not in in_tp:
                    continue
                src = volumes.get(p.source)
                if src is None or scan.rejection(src, p.target) is not None:
                    continue
                kept[p.source] = p.target
                scan.claim(p.source, p.target)
        new_pairs, unpaired = select_targets(scan, [s for s in sources if s not in kept])
        chosen = dict(kept)
        chosen.update((p.source, p.target) for p in new_pairs)
        pairs = [CopyPair(s, chosen[s]) for s in sources if s in chosen]
        return CopyRecord(version, tp, pairs, pre, kind, replaced, broken, unpaired)

    def _refresh_prepairing(self, state, backend, volumes):
        """Re-verify every pre-pairing record against the (new) definition and
        the host ([0012]-[0013]): keep valid pairs, re-pair the others."""
        definition = state.definition
        ppl = len(definition.target_pool_names())
        # stale ones, and those beyond one rotation of the new definition, go
        working = [r for r in sorted(state.prepairing_records, key=lambda r: r.version)
                   if state.last_version < r.version <= state.last_version + ppl]
        unpaired = []
        for i, rec in enumerate(list(working)):
            cr = self._build(state, definition, backend, rec.version, volumes, prepairing=tuple(working))
            unpaired.extend(cr.unpaired)
            if not (cr.pre_copy is rec and tuple(cr.pairs) == rec.pairs):
                working[i] = Record(RECORD_PREPAIRING, rec.version, cr.target_pool, self.engine.now(),
                                    tuple(cr.pairs))
        return tuple(working), unpaired

    # --- prepair_record ----------------------------------------------------

    def plan_prepair(self, versions=1, allow_unpaired=False):
        state = self._require()
        definition = state.definition
        ntp = len(definition.target_pool_names())
        if not _is_int(versions) or versions < 1 or versions > ntp:
            raise InvalidInput("versions %r: pre-pair between 1 and %d upcoming versions (the number of target "
                               "pools of copy pool %s)" % (versions, ntp, self.name))
        backend = self._backend()
        volumes = backend.discover(self._discovery_names(definition, backend))
        first = state.last_version + 1
        wanted = list(range(first, first + versions))
        others = tuple(r for r in state.prepairing_records if r.version not in wanted and r.version >= first)
        working = list(state.prepairing_records)
        built = []
        unpaired = []
        when = self.engine.clock()
        now = iso(when)
        for v in wanted:
            # a retention grid chooses the next version's target pool by the
            # time: pre-paired as if taken now (a later copy that the grid
            # sends elsewhere does not use this record); later versions
            # follow the oldest-first rule, a guess for a grid pool
            cr = self._build(state, definition, backend, v, volumes, prepairing=tuple(working), when=when)
            old = state.prepairing(v)
            if old is not None and cr.pre_copy is old and tuple(cr.pairs) == old.pairs:
                rec = old
            else:
                rec = Record(RECORD_PREPAIRING, v, cr.target_pool, now, tuple(cr.pairs))
            unpaired.extend(cr.unpaired)
            if cr.pairs:
                replaced_pairs = cr.replaced.pairs if cr.replaced is not None else ()
                backend.check_capacity(definition, list(cr.pairs), list(replaced_pairs), volumes)
            working = [r for r in working if r.version != v] + [rec]
            built.append(rec)
        if unpaired and not allow_unpaired:
            raise NoEligibleTarget(
                "no eligible target for %d source(s) of copy pool %s: %s. See unpaired for why each candidate was "
                "rejected; add or free target volumes, or set allow_unpaired: true to keep the pairs that were "
                "found" % (len(unpaired), self.name, unpaired_summary(unpaired)),
                unpaired=[u.as_dict() for u in unpaired])
        new_pprs = tuple(sorted(others + tuple(built), key=lambda r: r.version))
        new = replace(state, prepairing_records=new_pprs)
        result = {"records": [r.as_dict() for r in built], "unpaired": [u.as_dict() for u in unpaired]}

        def act():
            self._save(new)
            return result

        return Plan(new != state, pool_dict(state), pool_dict(new), result, act)

    def plan_drop_prepairing(self):
        state = self._require()
        new = replace(state, prepairing_records=())
        result = {"records": [], "removed_records": [r.as_dict() for r in state.prepairing_records]}

        def act():
            self._save(new)
            return result

        return Plan(bool(state.prepairing_records), pool_dict(state), pool_dict(new), result, act)
