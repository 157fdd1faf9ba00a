# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target selection (Fig. 4) and target scan (Fig. 5).

A target volume is eligible for a source when it is

* available: not in a live pair of this copy pool (the caller passes those as
  ``reserved``; the record being replaced and the pre-pairing record of the
  version being built are not live for this purpose), nor chosen already for
  another source of the record being built;
* not holding data we do not own (``Volume.foreign_data``, or the ownership
  mark of another copy pool);
* able to take part in the pool's copy technology (``Volume.technologies``);
* of a kind the backend accepts for the source's kind;
* of the same logical block size (0 means "not applicable" and matches);
* at least the source's size when the backend says sizes must fit.

The choice is deterministic: sources are served in pool order, each getting
the smallest eligible target by ``(size, name)`` (best fit, so large targets
stay free for large sources).

Speed matters (thousands of volumes per target pool): candidates are put in
buckets by ``(kind, block size)`` once, every bucket sorted by
``(size, name)``; a source bisects its buckets by size and a "next free"
union-find skips targets already taken. Nothing compares every source with
every target. Why a candidate was rejected is worked out only for sources
that end up without a target (the notification of step 518).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from bisect import bisect_left

from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, Unpaired

#: how many rejected candidates an Unpaired names before summarising the rest
MAX_REASONS = 20


def block_sizes_match(source_bs, target_bs):
    """Geometry check; 0 means the notion does not apply to that volume."""
    return not source_bs or not target_bs or source_bs == target_bs


class _Bucket:
    """Candidates of one (kind, block size), sorted by (size, name), with a
    path-compressed "next untaken index" array."""

    __slots__ = ("items", "sizes", "nxt")

    def __init__(self, items):
        items.sort()
        self.items = items
        self.sizes = [size for size, _name in items]
        self.nxt = list(range(len(items) + 1))

    def first_free(self, i):
        nxt = self.nxt
        root = i
        while nxt[root] != root:
            root = nxt[root]
        while nxt[i] != root:
            nxt[i], i = root, nxt[i]
        return root

    def take(self, i):
        self.nxt[i] = i + 1


class TargetScan:
    """One target pool's candidates, indexed for repeated best-fit choices.

    ``candidates`` are target names in target-pool order, ``volumes`` the
    discovery result (name -> Volume) covering sources and candidates,
    ``reserved`` maps an unavailable target to why (e.g. ``"already paired
    with vg/b in version 2"``)."""

    def __init__(self, backend, pool_name, technology, target_pool, candidates, volumes, reserved=None):
        self.backend = backend
        self.pool_name = pool_name
        self.technology = technology
        self.target_pool = target_pool
        self.candidates = list(candidates)
        self.volumes = volumes
        self.reserved = dict(reserved or {})
        self.taken = {}  # target -> source, chosen while building this record
        self.must_fit = backend.size_must_fit()
        self._kinds = {}
        self._position = {}  # target -> (bucket, index)
        buckets = {}
        for name in self.candidates:
            vol = volumes.get(name)
            if vol is None or name in self.reserved or not self._owned_or_free(vol):
                continue
            if technology not in vol.technologies:
                continue
            buckets.setdefault((vol.kind, vol.block_size), []).append((vol.size, name))
        self.buckets = {}
        self.by_kind = {}
        for key, items in buckets.items():
            bucket = _Bucket(items)
            self.buckets[key] = bucket
            self.by_kind.setdefault(key[0], []).append((key[1], bucket))
            for idx, (_size, name) in enumerate(bucket.items):
                self._position[name] = (bucket, idx)

    def _owned_or_free(self, vol):
        return not vol.foreign_data and (vol.owner is None or vol.owner == self.pool_name)

    def target_kinds(self, source_kind):
        kinds = self._kinds.get(source_kind)
        if kinds is None:
            kinds = self._kinds[source_kind] = frozenset(self.backend.target_kinds(source_kind))
        return kinds

    # --- the fast path ---------------------------------------------------

    def claim(self, source, target):
        """Mark ``target`` as chosen for ``source`` (e.g. kept from the
        pre-copy record) so that no other source gets it; best() skips it."""
        self.taken[target] = source

    def best(self, source_vol):
        """The smallest eligible free target for ``source_vol`` or None."""
        best = None
        kinds = self.target_kinds(source_vol.kind)
        for kind in sorted(kinds):
            for block_size, bucket in self.by_kind.get(kind, ()):
                if not block_sizes_match(source_vol.block_size, block_size):
                    continue
                i = bisect_left(bucket.sizes, source_vol.size) if self.must_fit else 0
                while True:
                    j = bucket.first_free(i)
                    if j >= len(bucket.items):
                        break
                    if bucket.items[j][1] in self.taken:
                        # claimed out of order by claim(); skip it for good
                        bucket.take(j)
                        i = j
                        continue
                    cand = bucket.items[j]
                    if best is None or cand < best[0]:
                        best = (cand, bucket, j)
                    break
        if best is None:
            return None
        (_size, name), bucket, j = best
        bucket.take(j)
        self.taken[name] = source_vol.name
        return name

    # --- the reasons (failure path only) ----------------------------------

    def rejection(self, source_vol, name):
        """Why ``name`` is not eligible for ``source_vol``; None if it is."""
        vol = self.volumes.get(name)
        if vol is None:
            host = self.backend.host_of(name)
            return "%s: does not exist on %s" % (name, "host %s" % host if host else "this host")
        if name in self.taken and self.taken[name] != source_vol.name:
            return "%s: already chosen for %s in this record" % (name, self.taken[name])
        if name in self.reserved:
            return "%s: %s" % (name, self.reserved[name])
        if vol.foreign_data:
            return "%s: holds data that is not a copy of pool %s, so it is never overwritten" % (name, self.pool_name)
        if vol.owner is not None and vol.owner != self.pool_name:
            return "%s: carries the ownership mark of copy pool %s" % (name, vol.owner)
        if self.technology not in vol.technologies:
            return "%s: cannot take part in %s copies (supports: %s)" % (
                name, self.technology, ", ".join(sorted(vol.technologies)) or "none")
        kinds = self.target_kinds(source_vol.kind)
        if vol.kind not in kinds:
            return "%s: is of kind %s; a source of kind %s needs one of: %s" % (
                name, vol.kind, source_vol.kind, ", ".join(sorted(kinds)) or "none")
        if not block_sizes_match(source_vol.block_size, vol.block_size):
            return "%s: logical block size %d differs from the source's %d" % (
                name, vol.block_size, source_vol.block_size)
        if self.must_fit and vol.size < source_vol.size:
            return "%s: %d bytes is smaller than the source's %d bytes" % (name, vol.size, source_vol.size)
        return None

    def reasons(self, source_vol):
        """The rejection of the first MAX_REASONS candidates, then a count:
        an unpaired source of a 10,000-volume pool should not cost 10,000
        checks, nor produce a message nobody reads."""
        out = []
        for name in self.candidates[:MAX_REASONS]:
            out.append(self.rejection(source_vol, name) or "%s: eligible but taken" % name)
        if not self.candidates:
            out.append("target pool %s has no target volumes" % self.target_pool)
        elif len(self.candidates) > MAX_REASONS:
            out.append("... and %d more candidates of target pool %s, none eligible"
                       % (len(self.candidates) - MAX_REASONS, self.target_pool))
        return tuple(out)


def source_problem(backend, name, volumes):
    """Why source ``name`` cannot be copied at all, or None."""
    vol = volumes.get(name)
    if vol is None:
        return "source %s does not exist on this host" % name
    kinds = backend.source_kinds()
    if kinds and vol.kind not in kinds:
        return "source %s is of kind %s; %s sources must be one of: %s" % (
            name, vol.kind, backend.technology, ", ".join(sorted(kinds)))
    return None


def select_targets(scan, sources):
    """Fig. 4 for ``sources`` (names, pool order) against one TargetScan.

    Returns ``(pairs, unpaired)``: a CopyPair per source that found a target
    and an Unpaired (with reasons) per source that did not."""
    pairs = []
    unpaired = []
    backend = scan.backend
    for name in sources:
        problem = source_problem(backend, name, scan.volumes)
        if problem:
            unpaired.append(Unpaired(name, scan.target_pool, (problem,)))
            continue
        src = scan.volumes[name]
        target = scan.best(src)
        if target is None:
            unpaired.append(Unpaired(name, scan.target_pool, ()))
        else:
            pairs.append(CopyPair(name, target))
    # reasons only now, when every choice is made, so they name the final
    # holder of a target that another source of this record took
    unpaired = [
        u if u.reasons else Unpaired(u.source, u.target_pool, scan.reasons(scan.volumes[u.source]))
        for u in unpaired
    ]
    return pairs, unpaired


UNTRACKED_TARGET = (
    "holds a copy with the mark of pool %s that no record of the pool has (verify_records reports it as "
    "untracked_copy); it is never overwritten: delete it with the storage tool if it is not needed")


def select_implied(backend, pool_name, target_pool, sources, volumes, recorded=()):
    """Targets of snapshot technologies: named by the backend, made by the
    copy. Eligible unless a volume of that name exists that is not ours, or
    that carries our mark but is none of ``recorded`` (the targets of the
    version this copy replaces): a copy no record owns (verify_records'
    untracked_copy: an older state file put back, a record deleted, or a
    look-alike with our marks) is never destroyed to make room."""
    pairs = []
    unpaired = []
    for name in sources:
        problem = source_problem(backend, name, volumes)
        if problem:
            unpaired.append(Unpaired(name, target_pool, (problem,)))
            continue
        target = backend.implied_target(pool_name, target_pool, name)
        vol = volumes.get(target)
        if vol is not None and (vol.foreign_data or vol.owner != pool_name):
            unpaired.append(Unpaired(name, target_pool, (
                "%s: exists and is not a copy of pool %s%s; it is never overwritten" % (
                    target, pool_name, " (it carries the mark of pool %s)" % vol.owner if vol.owner else ""),
            )))
            continue
        if vol is not None and target not in recorded:
            unpaired.append(Unpaired(name, target_pool, ("%s: %s" % (target, UNTRACKED_TARGET % pool_name),)))
            continue
        pairs.append(CopyPair(name, target))
    return pairs, unpaired
