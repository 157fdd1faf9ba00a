# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify_records: the records checked against the host, and their repair.

One check a method, in the order of the findings: the journal of an
interrupted operation, the version numbers the copies bear, the replication
records (Fig. 8 for every kept version: sources, targets, copies, identities),
the pre-pairing records, the copies no record has, the leftovers of killed
runs; then the repair plan that acts on what they found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._definition import age_seconds
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_browse import (
    restore_paths_journal_plan,
    verify_mounts,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    _is_int,
    highest_marked_version,
    identity_problem,
    newest_valid,
    newest_valid_age,
    pool_dict,
    release_bases,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_media import MediaSteps, remove_media_temps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_repair import JournalRepairSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_COPY,
    JOURNAL_DELETE,
    JOURNAL_DUMP,
    JOURNAL_REMOVE,
    JOURNAL_RESTORE_ELSEWHERE,
    JOURNAL_RESTORE_PATHS,
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    STATUS_INCOMPLETE,
    STATUS_INVALID,
    STATUS_VALID,
    Finding,
    Record,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._selection import TargetScan


def _unpaired_action(finding, unpaired, pprs):
    """The finding's dict, saying so when re-pairing found no target."""
    out = finding.as_dict()
    if finding.record != RECORD_PREPAIRING:
        return out
    tps = dict((r.version, r.target_pool) for r in pprs)
    for u in unpaired:
        if u.source == finding.source and u.target_pool == tps.get(finding.version):
            out["action"] = "pair dropped, no eligible target left (%s); add or free a target and run " \
                            "pitcopy.versions.prepair_record" % (u.reasons[0] if u.reasons else "no candidates")
    return out


PROBLEM_STALE = "stale"
# a kept copy with no base to send the next one from: not an inconsistency
# of the records (the next send into its target pool is a full one)
PROBLEM_BASE_MISSING = "base_missing"
PROBLEM_HOLD_NOT_ENFORCED = "hold_not_enforced"


def _spoken(seconds):
    """``3d 4h``, ``26h 5m``, ``40s``: an age as a person reads it."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append("%d%s" % (seconds // size, unit))
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts) if parts else "%ds" % seconds


class _VerifyScan:
    """What one verify_records run reads from the host once, and what its
    checks learn on the way: the findings (in the order they are made) and
    the targets some record or the journal accounts for (``tracked``: what
    is left is an untracked copy)."""

    def __init__(self, state, backend, volumes, copies, repair):
        self.state = state
        self.definition = state.definition
        self.backend = backend
        self.volumes = volumes
        self.copies = copies
        self.repair = repair
        self.by_target = {}
        for c in copies:
            self.by_target.setdefault(c.target, []).append(c)
        self.findings = []
        self.tracked = set()
        # versions whose copies the journal is deleting: not "missing"
        self.going = set()
        # sources the journal is restoring: not "missing" either
        self.restoring = set()
        self.listed = not backend.implied_targets
        self.in_pool = set(self.definition.sources)
        # (version, pairs) of held versions whose hold the storage does not enforce
        self.unheld = []
        # temporary files of killed dumps found on the media
        self.media_temps = []


class VerifySteps(JournalRepairSteps, MediaSteps):
    """verify_records: the checks, and the plan of repair=true."""

    def plan_verify(self, repair=False, verify_media=False):
        """verify_records: each check adds its findings, in this order;
        nothing changes unless ``repair`` and the plan is applied.
        ``verify_media``: every stream of the storage media inventory read
        and checked against its sha256 (else only that it exists, its size)."""
        state = self._require()
        backend = self._backend()
        scan = self._verify_scan(state, backend, repair)
        # the journal first: what it staged is not "untracked"
        journal_plan = self._verify_journal(scan)
        # a version number never goes backwards: our marks know the highest
        # (an interrupted copy's own staged copies bear its version: not behind)
        j = state.journal
        floor = max(state.last_version, j.version if j is not None else 0)
        marked = highest_marked_version(scan.copies, self._own_targets(state, backend))
        new_rrs, learned = self._verify_replication_records(scan)
        self._verify_holds(scan, new_rrs)
        self._verify_prepairing_records(scan)
        explained = self._verify_untracked_copies(scan, floor)
        behind = marked > floor and not explained
        if behind:
            self._verify_last_version_behind(scan, marked)
        leftovers = self._verify_leftovers(scan)
        unneeded = self._verify_bases(scan, list(state.replication_records))
        self._verify_freshness(scan)
        verify_mounts(scan)
        scan.media_temps = self._verify_media(scan, verify_media)

        new = replace(state, replication_records=tuple(new_rrs))
        if behind:
            new = replace(new, last_version=marked)
        # consistent: the records match the host; a stale pool can be
        # consistent (no copy was taken lately, and the records say so)
        notes = (PROBLEM_STALE, PROBLEM_BASE_MISSING)
        result = {"consistent": not [f for f in scan.findings if f.problem not in notes],
                  "findings": [f.as_dict() for f in scan.findings]}
        if not repair:
            return Plan(False, pool_dict(state), pool_dict(state), result)
        return self._repair_plan(scan, journal_plan, new, marked if behind else None, learned, leftovers + unneeded,
                                 result)

    def _verify_scan(self, state, backend, repair):
        """One discovery of every volume the definition and the records name,
        and one listing of the pool's copies, for all the checks."""
        names = self._discovery_names(state.definition, backend)
        for r in state.replication_records + state.prepairing_records:
            names.extend(p.source for p in r.pairs)
            names.extend(p.target for p in r.pairs)
        seen = set()
        names = [n for n in names if not (n in seen or seen.add(n))]
        volumes = backend.discover(names)
        return _VerifyScan(state, backend, volumes, self._list_copies(backend, state), repair)

    def _verify_journal(self, scan):
        """The journal of an interrupted operation: its findings, and
        (action, description, findings) that repair runs, or None."""
        state, j = scan.state, scan.state.journal
        if j is None:
            return None
        if j.operation == JOURNAL_COPY:
            copies = scan.copies
            staged_here = [c for c in copies if c.staged and c.version == j.version]
            # staged or already promoted copies of the interrupted version
            scan.tracked.update(c.target for c in copies if c.version == j.version)
            scan.tracked.update(p.target for p in j.staged)
            journal_plan = self._journal_repair_plan(state, j, staged_here, scan.by_target)
            scan.findings.append(Finding(RECORD_REPLICATION, j.version, None, None, "interrupted_copy",
                                         journal_plan[1] if scan.repair
                                         else "none (repair: true would have %s)" % journal_plan[1]))
            scan.findings.extend(journal_plan[2])
            return journal_plan
        if j.operation == JOURNAL_DUMP or j.medium is not None:
            # a dump or a restore from media: streams on a medium, no copy touched
            journal_plan = self._media_journal_plan(state, j, scan.repair)
            scan.findings.extend(journal_plan[2])
            return journal_plan
        if j.operation == JOURNAL_RESTORE_PATHS:
            # a file restore touched no volume: only its temporary names
            journal_plan = restore_paths_journal_plan(self, state, j, scan.repair)
            scan.findings.extend(journal_plan[2])
            return journal_plan
        journal_plan = self._other_journal_plan(state, j, scan.volumes, scan.repair)
        scan.findings.extend(journal_plan[2])
        if j.operation in (JOURNAL_DELETE, JOURNAL_REMOVE):
            scan.going.update(r.version for r in state.replication_records
                              if j.operation == JOURNAL_REMOVE or r.version == j.version)
            scan.tracked.update(p.target for p in j.pairs)
        elif j.operation != JOURNAL_RESTORE_ELSEWHERE:
            # a restore elsewhere leaves the sources as they are
            scan.restoring.update(p.source for p in j.pairs)
        return journal_plan

    def _verify_replication_records(self, scan):
        """Each kept version's pairs against the host (Fig. 8 for every
        record): its source, its target, its copy, the copy's identity and
        validity. Returns (the records as repair leaves them, whether an
        identity was learned)."""
        new_rrs = []
        learned = False
        for rec in sorted(scan.state.replication_records, key=lambda r: r.version):
            if rec.version in scan.going:
                scan.tracked.update(p.target for p in rec.pairs)
                new_rrs.append(rec)
                continue
            keep_pairs = []
            status = rec.status
            for p in rec.pairs:
                scan.tracked.add(p.target)
                p, problem, learned_here = self._verify_replication_pair(scan, rec, p)
                learned = learned or learned_here
                if problem in ("target_missing", "copy_missing"):
                    continue  # the pair goes
                if problem in ("copy_identity_mismatch", "copy_invalid"):
                    status = STATUS_INVALID
                keep_pairs.append(p)
            if len(keep_pairs) != len(rec.pairs):
                if not keep_pairs:
                    continue  # none of its copies exist: the record goes
                if status == STATUS_VALID:
                    status = STATUS_INCOMPLETE
            new_rrs.append(replace(rec, pairs=tuple(keep_pairs), status=status))
        return new_rrs, learned

    def _verify_replication_pair(self, scan, rec, p):
        """One pair of replication record ``rec``: (the pair as repair keeps
        it, its problem or None, whether its identity was learned)."""
        backend = scan.backend
        infos = [c for c in scan.by_target.get(p.target, ()) if c.version == rec.version and not c.staged]
        problem = None
        mismatch = identity_problem(p, [c for c in scan.by_target.get(p.target, ()) if not c.staged],
                                    backend.same_copy)
        if p.source not in scan.volumes and p.source in scan.in_pool and p.source not in scan.restoring:
            # a source that left the pool may well be gone for good
            scan.findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, "source_missing",
                                         "left for a human: the copy is kept; create %s again or restore it "
                                         "from this version" % p.source))
        if scan.listed and p.target not in scan.volumes:
            problem = "target_missing"
        elif not infos:
            problem = "copy_missing"
        elif mismatch:
            problem = "copy_identity_mismatch"
        elif not backend.copy_valid(scan.definition, infos[0]):
            problem = "copy_invalid"
        if problem == "copy_identity_mismatch":
            # keep the pair and its identity: the record is what says
            # the volume there is not ours, so nothing deletes it
            scan.findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, problem,
                                         ("version marked invalid; " if scan.repair else
                                          "none (repair: true would mark the version invalid); ")
                                         + mismatch + "; move it away (then repair drops the pair) or delete "
                                         "the version with pitcopy.versions.copy_version state=absent"))
            return p, problem, False
        learned = False
        if problem is None and p.identity is None and infos and infos[0].identity is not None:
            # a record from before identities were kept: the copy
            # checked out, so its identity is recorded from now on
            p = replace(p, identity=infos[0].identity)
            learned = True
        if problem in ("target_missing", "copy_missing"):
            scan.findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, problem,
                                         "pair dropped from the record; version marked incomplete" if scan.repair
                                         else "none (repair: true would drop the pair)"))
        elif problem == "copy_invalid":
            scan.findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, problem,
                                         "version marked invalid" if scan.repair
                                         else "none (repair: true would mark the version invalid)"))
        return p, problem, learned

    def _verify_holds(self, scan, records):
        """Held versions whose copies the storage no longer holds (a ``zfs
        release`` or ``lvchange`` by hand, a kill between the record and the
        storage): repair holds them again. ``records``: the replication
        records as repair leaves them (pairs whose copy is gone are not
        judged here, copy_missing speaks for them)."""
        for rec in records:
            if not rec.held or rec.version in scan.going:
                continue
            present = [p for p in rec.pairs if any(c.version == rec.version and not c.staged
                                                   for c in scan.by_target.get(p.target, ()))]
            present = [p for p in present if not identity_problem(
                p, [c for c in scan.by_target.get(p.target, ()) if not c.staged], scan.backend.same_copy)]
            if not present:
                continue
            unheld = scan.backend.unenforced_holds(scan.definition, rec.version, present)
            for p, why in unheld:
                scan.findings.append(Finding(
                    RECORD_REPLICATION, rec.version, p.source, p.target, PROBLEM_HOLD_NOT_ENFORCED,
                    ("hold re-applied on the storage: " if scan.repair else
                     "none (repair: true would hold it again on the storage): ") + why))
            if unheld:
                scan.unheld.append((rec.version, [p for p, _why in unheld]))

    def _verify_prepairing_records(self, scan):
        """Each pre-pairing record's pairs: a source gone, a target gone or no
        longer fit (repair re-pairs the record)."""
        volumes = scan.volumes
        # rejection() needs no candidate index: one empty scan serves all pairs
        checker = TargetScan(scan.backend, self.name, scan.definition.technology, "", (), volumes, {})
        for rec in sorted(scan.state.prepairing_records, key=lambda r: r.version):
            for p in rec.pairs:
                scan.tracked.add(p.target)
                problem = None
                src = volumes.get(p.source)
                if p.source not in scan.in_pool:
                    continue  # re-verified at the next copy anyway (Fig. 8)
                if src is None:
                    scan.findings.append(Finding(RECORD_PREPAIRING, rec.version, p.source, p.target,
                                                 "source_missing", "left for a human: create %s again or remove "
                                                 "it from the pool's sources" % p.source))
                    continue
                vol = volumes.get(p.target)
                if not scan.listed:
                    if vol is not None and (vol.foreign_data or vol.owner != self.name):
                        problem = "target_incompatible"  # someone else's volume took the implied name
                elif vol is None:
                    problem = "target_missing"
                elif checker.rejection(src, p.target) is not None:
                    problem = "target_incompatible"
                if problem:
                    scan.findings.append(Finding(RECORD_PREPAIRING, rec.version, p.source, p.target, problem,
                                                 "pre-pairing record re-paired" if scan.repair
                                                 else "none (repair: true would re-pair the record)"))

    def _verify_untracked_copies(self, scan, floor):
        """Copies that bear our mark but that no record or journal has: left
        for a human. Returns whether the tracked copies explain the version
        numbers above ``floor`` (then the records are not behind)."""
        last_version = scan.state.last_version
        explained = True
        for c in scan.copies:
            if c.target in scan.tracked:
                if _is_int(c.version) and c.version > floor:
                    explained = False
                continue
            ahead = _is_int(c.version) and c.version > floor
            scan.findings.append(Finding(
                RECORD_REPLICATION, c.version, c.source, c.target, "untracked_copy",
                "left for a human: %s carries the mark of copy pool %s%s but no record has it; delete it with "
                "the storage tool if it is not needed%s" % (
                    c.target, self.name, " (version %s of %s)" % (c.version, c.source) if c.version else "",
                    "; its version is above the records' last_version %d (an older state file put back?): the "
                    "next copy_version is numbered after it, so that no version number is used twice"
                    % last_version if ahead else "")))
        return explained

    def _verify_last_version_behind(self, scan, marked):
        """Copies the records point at bear later versions than the records
        know: the records went back (an older state file was put back)."""
        last_version = scan.state.last_version
        raise_note = ("repair raised last_version from %d to %d" if scan.repair else
                      "repair: true would raise last_version from %d to %d") % (last_version, marked)
        scan.findings.append(Finding(
            RECORD_REPLICATION, marked, None, None, "last_version_behind",
            "%s: copies on the storage bear version numbers up to %d, which the records (last_version %d) do "
            "not know (an older state file put back?), so the next version is numbered after them" % (
                raise_note if scan.repair else "none (%s)" % raise_note, marked, last_version)))

    def _verify_leftovers(self, scan):
        """Temporary files of this pool that a killed run left."""
        leftovers = scan.backend.leftovers(scan.definition)
        for path in leftovers:
            scan.findings.append(Finding(RECORD_REPLICATION, None, None, path, "leftover_file",
                                         "removed" if scan.repair else "none (repair: true would remove it): a "
                                         "temporary file of this pool that a killed run left"))
        return leftovers

    def _verify_bases(self, scan, records):
        """Incremental sends: a kept copy whose base is gone or does not
        match it is no inconsistency of the records, only a note that the
        next version into its target pool is sent in full; a base that no
        kept copy needs is released by repair. Returns the unneeded bases."""
        backend, definition = scan.backend, scan.definition
        if not getattr(backend, "incremental", False):
            return []
        for r, p, why in backend.missing_bases(definition, list(scan.state.replication_records)):
            scan.findings.append(Finding(
                RECORD_REPLICATION, r.version, p.source, p.target, PROBLEM_BASE_MISSING,
                "none (nothing to repair): no base to send the next copy of %s into target pool %s incrementally "
                "from: %s; that copy is sent in full" % (p.source, r.target_pool, why)))
        j = scan.state.journal
        keep = list(records)
        if j is not None and j.operation == JOURNAL_COPY:
            keep.append(Record(RECORD_REPLICATION, j.version, j.target_pool, j.started, tuple(j.pairs)))
        unneeded = backend.release_bases(definition, keep, dry_run=True)
        for path in unneeded:
            scan.findings.append(Finding(
                RECORD_REPLICATION, None, None, path, "unneeded_base",
                "released" if scan.repair else "none (repair: true would release it): a base of an incremental "
                "send kept beside the source that no kept version needs any more"))
        return unneeded

    def _verify_freshness(self, scan):
        """The newest valid version older than the pool's max_age (or no
        valid version at all): backups stopped being taken. Nothing a
        repair can do; the finding says what to look at."""
        max_age = scan.definition.max_age
        if max_age is None:
            return
        limit = age_seconds(max_age)
        age = newest_valid_age(scan.state, self.engine.clock())
        if age is not None and age <= limit:
            return
        rec = newest_valid(scan.state)
        if rec is None:
            what = "copy pool %s has no valid version" % self.name
        else:
            what = "the newest valid version, %d, was taken at %s, %s ago" % (rec.version, rec.created, _spoken(age))
        scan.findings.append(Finding(
            RECORD_REPLICATION, rec.version if rec is not None else None, None, None, PROBLEM_STALE,
            "none (a repair cannot take copies): %s, longer than max_age %s; check that copy_version runs and "
            "succeeds (its schedule, its job's last result)" % (what, max_age)))

    def _repair_plan(self, scan, journal_plan, new, raise_to, learned, leftovers, result):
        """The plan of verify_records repair=true: leftovers go, the journal
        is finished or rolled back, the records become ``new``,
        last_version rises to ``raise_to`` (None: it stays), pre-pairing
        records with a problem are paired again."""
        state, backend, findings = scan.state, scan.backend, scan.findings
        definition = state.definition
        j = state.journal
        pre_problem = any(f.record == RECORD_PREPAIRING and f.problem != "source_missing" for f in findings)
        # identities learned change the file, not the records' meaning
        # (CopyPair equality ignores them)
        changed = bool(j is not None or new != state or pre_problem or learned or leftovers or scan.unheld or
                       scan.media_temps)

        def act():
            if leftovers:
                backend.sweep_leftovers(definition)
            # only the temporary names of killed dumps: never a stream
            remove_media_temps(scan.media_temps)
            for version, pairs in scan.unheld:
                backend.hold_copies(definition, version, pairs, True)
            current = state
            if j is not None and j.operation == JOURNAL_REMOVE:
                journal_plan[0]()  # the pool and its state file are gone
                return result
            if j is not None:
                current = journal_plan[0]()
                # records of the finished/rolled-back copy replace ours
                new_rr = [r for r in new.replication_records
                          if current.replication(r.version) is not None]
                extra = [r for r in current.replication_records if state.replication(r.version) is None]
                current = replace(current, replication_records=tuple(sorted(
                    new_rr + extra, key=lambda r: r.version)))
                if raise_to is not None:
                    current = replace(current, last_version=max(current.last_version, raise_to))
            else:
                current = new
            out = result
            if pre_problem:
                fresh = backend.discover(self._discovery_names(current.definition, backend))
                pprs, unpaired = self._refresh_prepairing(current, backend, fresh)
                current = replace(current, prepairing_records=pprs)
                if unpaired:
                    out = dict(result, findings=[_unpaired_action(f, unpaired, pprs) for f in findings])
            self._save(current)
            # bases the records no longer need (a rolled-back copy's, a pair dropped)
            release_bases(backend, definition, current, before=state)
            return out

        return Plan(changed, pool_dict(state), pool_dict(new), result, act)
