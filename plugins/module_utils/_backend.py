# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface through which the record engine drives storage.

A backend knows its tool (lvm2, zfs, btrfs-progs, or memory for unit tests);
the engine knows the method. Backends never read or write the state file.

Copies are two-phase so that a failed or interrupted copy never costs a kept
version: the copy steps make every copy of the new version at one point in
time under *staging* names; only after all of them exist does ``promote``
remove the copies of the version being replaced and give the staged copies
their final target names. ``discard`` undoes a staging that will not be
promoted (verify_records repair). Technologies that overwrite a pre-existing
target in place (``lvm_clone``) stage onto the final target directly; they
document that the replaced version's copy on a target written for a failed
copy is lost.

The copy itself (Fig. 6, step 606) is ONE transaction, written once in the
engine (``_engine.take_copies``); a backend offers its narrow steps:

    plan = backend.plan_copies(definition, version, pairs)   # reads only
    backend.prepare(plan)               # our leftovers of this version go; marks
    with window.open(freeze=plan.freeze):
        backend.take_point_in_time(plan)   # the batch: as few commands as the tool allows
    backend.transfer(plan)              # point in time -> staged copies (send/receive,
                                        # block copy, marks); fills plan.staged
    backend.release(plan)               # temporaries, in every case
    backend.undo(plan)                  # on any failure: what plan.made names

Each step records what it made in the plan before it makes it (``plan.made``,
``plan.temporaries``), so that ``undo`` and ``release`` remove exactly that,
whichever step failed. A step that fails raises CopyFailed naming the pair
(the CommandError as cause); it does not clean up: the transaction does.
Copies to another host or incremental sends are another ``transfer`` (and
``release`` of what it pinned); the rest of the transaction stays.

Every copy also has an identity on the storage (``CopyInfo.identity``: btrfs
subvolume UUID, ZFS guid, LVM LV UUID) that replication records keep, so
that rotation, deletion and restore act only on the copy a record names,
whatever mark another volume at that name carries.

Every copy we make carries an ownership mark (LVM tag, ZFS user property,
btrfs marker) naming the copy pool, the version and the source, so that
``list_copies`` finds copies that records lost and so that nothing without
our mark is ever destroyed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import abc
import os

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import TECHNOLOGIES


class CopyPlan:
    """One version's copies as a backend decided them (``plan_copies``),
    and, as the steps run, what exists because of them."""

    def __init__(self, definition, version, pairs, staging=(), commands=(), marks=None, freeze=()):
        self.definition = definition
        self.version = version
        self.pairs = list(pairs)
        #: CopyPair(source, staging name) in the order of pairs
        self.staging = list(staging)
        #: argv lists of the point in time, in the order they run
        self.commands = [list(c) for c in commands]
        #: the ownership marks the copies get ({name: value})
        self.marks = dict(marks or {})
        #: mountpoints the copy window freezes
        self.freeze = list(freeze)
        #: copies (CopyPair(source, name)) that exist because of this plan: undo removes them
        self.made = []
        #: names made only for the copy: release removes them
        self.temporaries = []
        #: the staged copies, set by transfer
        self.staged = []
        #: the backend's own facts between steps (report rows, tool output)
        self.facts = {}
        #: send technologies: {source: (version, CopyPair)} of the copy the
        #: target pool holds, from the records (the engine's choice of base);
        #: the backend sends incrementally from it when the storage agrees
        self.bases = {}

    def as_dict(self):
        """What check mode can show of the copies."""
        return {"version": self.version, "staging": [p.as_dict() for p in self.staging],
                "commands": [list(c) for c in self.commands], "marks": dict(self.marks),
                "freeze": list(self.freeze)}


class Backend(abc.ABC):
    """Base class of every backend. One instance serves one technology."""

    #: technology name as in ``copy_pool.technology``
    technology = None
    #: True for snapshot technologies: targets are implied, named by
    #: :meth:`implied_target`, and do not exist before the copy.
    implied_targets = False
    # True where a volume carrying our pool mark is always a copy (never a
    # user's volume that stays a target between versions, as lvm_clone's
    # do): one that no record names is then an untracked copy, not a target
    pool_mark_is_a_copy = False
    #: True when ``list_copies`` reports ``CopyInfo.identity`` (and
    #: ``create_copies`` the staged copies' identities): the engine then
    #: records them and asks for the ones its records lack
    identifies_copies = False

    #: True when target pools may name ``host`` (their volumes on another
    #: host, reached over ssh): the backend then runs discovery, marks and
    #: deletions of those targets there, and its transfer crosses hosts
    remote_targets = False

    #: True when the backend sends a version incrementally from the copy
    #: a target pool already holds (``CopyPlan.bases``, chosen by the
    #: engine from the records); it then keeps a base on the source side
    #: per kept copy, released by :meth:`release_bases`
    incremental = False

    def __init__(self, runner=None):
        # runner: object with run(argv, data=None, check=True) -> (rc, out, err)
        # and pipe([argv1, argv2], check=True) -> (rc, out, err). See _runner.py.
        self.runner = runner

    def use_definition(self, definition):
        """The copy pool this backend serves from now on: the engine calls
        it before anything else, so that a backend with ``remote_targets``
        knows on which host each target lives. Default: nothing."""

    def host_of(self, name):
        """The ssh destination of the host where volume ``name`` lives, or
        None for the managed host (messages name it)."""
        return None

    # --- discovery -------------------------------------------------------

    @abc.abstractmethod
    def discover(self, names):
        """Return ``{name: Volume}`` for those of ``names`` that exist.

        One call for all names: implementations run one report command (e.g.
        ``lvs --reportformat json``) rather than one per volume. Names that do
        not exist are absent from the result. Raises InvalidInput for a name
        that cannot be a volume of this technology (wrong syntax)."""

    def validate_source_name(self, name):
        """Raise InvalidInput if ``name`` cannot name a source of this technology."""

    def validate_target_name(self, name):
        """Raise InvalidInput if ``name`` cannot name a target of this technology."""

    def validate_definition(self, definition):
        """Raise InvalidInput when ``definition`` can never work with this
        technology, whatever the host holds (e.g. a ``consistency`` its tool
        cannot provide), so that ``copy_pool`` refuses it before anything is
        saved rather than the first copy failing. Called by the engine after
        its own checks and before discovery: names only, no commands.
        Default: nothing more to check."""

    def source_kinds(self):
        """Volume kinds accepted as sources (e.g. ``{'lv'}``)."""
        return frozenset()

    def target_kinds(self, source_kind):
        """Volume kinds a target may have for a source of ``source_kind``.

        A listed target that discover() reports with another kind, or
        without this technology in ``Volume.technologies``, can never be a
        target: ``copy_pool`` refuses it (unless it holds a copy of the pool
        itself). A target that does not exist yet is absent from discover()
        unless the technology creates it (e.g. ``zfs_send``'s
        ``new_dataset``), and is left to target selection."""
        return frozenset((source_kind,))

    def size_must_fit(self):
        """True when a target must be at least the source's size."""
        return True

    def implied_target(self, pool, target_pool, source):
        """Deterministic target name of ``source`` in implied target pool
        ``target_pool`` of copy pool ``pool`` (snapshot technologies only)."""
        raise NotImplementedError

    # --- capacity ---------------------------------------------------------

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        """Raise CapacityError, with the numbers, when the copies of ``pairs``
        cannot fit. ``replaced_pairs`` are freed only after promotion, so they
        do NOT count as free space. ``volumes`` is the discover() result for
        the sources and targets. Called when pre-pairing and before copying."""

    # --- copies -------------------------------------------------------------

    def plan_copies(self, definition, version, pairs):
        """Decide the copies of ``pairs`` for copy version ``version``: a
        CopyPlan with the staging names (``plan.staging``, in the order of
        ``pairs``), the argv of the point in time (``plan.commands``), the
        ownership marks and what to freeze. Reads the host (names, leftovers
        of an interrupted run, sizes) but changes nothing, so check mode can
        show it. Raises CopyFailed (nothing was changed) for a pair that
        cannot be copied, e.g. a staging name held by somebody else."""
        raise NotImplementedError("technology %s does not make copies" % self.technology)

    def prepare(self, plan):
        """Before the point in time: remove our leftovers of an interrupted
        run of this version (``plan_copies`` found them), write what must
        exist before a copy does (pending marks). Default: nothing."""

    def take_point_in_time(self, plan):
        """Run ``plan.commands`` inside the copy window the engine holds open:
        the point in time, batched where the tool allows (one ``zfs
        snapshot`` per zpool, one ``lvm`` process, the btrfs ioctls back to
        back), nothing else. Appends to ``plan.made`` (or
        ``plan.temporaries``) what it creates, before creating it."""
        raise NotImplementedError("technology %s does not make copies" % self.technology)

    def transfer(self, plan):
        """After the window: turn the point in time into the staged copies
        (check what the batch made, send/receive, block copy, complete the
        marks) and set ``plan.staged``: CopyPair(source, staging name,
        identity) in the order of ``pairs``. A send to another host or an
        incremental send is another transfer. Default: the staging names."""
        plan.staged = list(plan.staging)

    def undo(self, plan):
        """Remove what ``plan.made`` names (ours only), after any failure of
        the transaction: the records stay at the previous versions. Default:
        ``discard`` of the staged copies made."""
        if plan.made:
            self.discard(plan.definition, list(plan.made))

    def release(self, plan):
        """Remove what was made only for the copy (``plan.temporaries``:
        send snapshots, temporary snapshots of a clone), whether the copy
        succeeded or not. Default: nothing."""

    def create_copies(self, definition, version, pairs, window=None):
        """The copies of ``pairs`` at one point in time, all or nothing:
        the engine's one transaction (``_engine.take_copies``) over this
        backend's steps, without the journal. Returns a CopyOutcome."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._engine import take_copies

        return take_copies(self, definition, version, pairs, window)

    @abc.abstractmethod
    def promote(self, definition, version, pairs, staged, replaced_pairs):
        """Remove the copies of ``replaced_pairs`` (ours only) and move each
        staged copy to its final target name. Idempotent: a second call after
        a crash finishes what the first began."""

    @abc.abstractmethod
    def discard(self, definition, staged):
        """Remove staged copies (ours only). Idempotent; missing ones are fine."""

    @abc.abstractmethod
    def delete_copies(self, definition, pairs):
        """Remove the copies of ``pairs`` that carry our mark for this pool.

        A target that does not carry our mark is left alone (and reported by
        raising CopyFailed only if the caller asked for it explicitly).
        Listed targets that the user owns (``lvm_clone`` LVs) are not removed:
        only our mark is."""

    @abc.abstractmethod
    def list_copies(self, pool_name, scope=None):
        """Every copy whose ownership mark names ``pool_name``, staged ones
        included: a list of CopyInfo.

        ``scope`` (a CopyScope, ``PoolState.copy_scope()``) names where the
        pool's copies can be: the sources, targets and staged copies its
        definition, records and journal name. The backend looks only there
        (and at what its naming rules put beside them: a btrfs source's
        ``.pitcopy/<pool>`` directory, a ZFS dataset's snapshots, an LV's
        volume group), so that the cost of a run does not grow with the
        other pools of the host; a copy with our mark in one of those places
        is always found. The engine always passes it. None: every place on
        the host (diagnostics and tests)."""

    @abc.abstractmethod
    def restore(self, definition, version, pairs):
        """Bring the sources of ``pairs`` back to the data of their copies.

        Must not destroy another kept version as a side effect; where the tool
        would (``zfs rollback -r``, LVM merge of a classic snapshot), refuse
        with InvalidInput saying why and what to do instead."""

    def restore_differs(self, definition, version, pairs):
        """The sources of ``pairs`` whose data differs from their copy's,
        found by reading only (the restore's plan, check mode included, calls
        it), so that a restore that would change nothing reports no change.
        None when the technology cannot tell short of copying: then every
        source counts as differing. Default: None."""
        return None

    def same_copy(self, recorded, found):
        """Whether identity ``found`` (CopyInfo.identity, read from the
        storage now) is the copy whose identity ``recorded`` a record holds.
        Default: equal strings."""
        return recorded == found

    # --- journaled restore ----------------------------------------------------

    #: True when ``restore`` may be called one pair at a time after
    #: :meth:`check_restore` passed for all of them (the engine then journals
    #: each source as done). False: the engine passes every pair in one call,
    #: so checks that add up over the pairs (capacity) still see them all.
    restore_per_pair = False

    def check_restore(self, definition, version, pairs):
        """Raise InvalidInput, naming every problem, when the restore of
        ``pairs`` would be refused; called once before the restore is
        journaled, so that a refusal changes nothing. Default: ``restore``
        checks each pair itself."""

    def restore_aside(self, definition, source):
        """Where ``restore`` moves the current data of ``source`` while its
        copy takes its place (recorded in the restore journal and reported),
        or None for a technology that restores in place. Names only."""
        return None

    def restore_progress(self, definition, pair, aside):
        """For verify_records: where the data of an interrupted restore of
        ``pair`` is (the source, the aside), in words; "" when unknown."""
        return ""

    def resume_restore(self, definition, version, pair, aside):
        """Finish an interrupted restore of ``pair`` (verify_records repair).
        ``aside`` is what :meth:`restore_aside` said before the restore began.
        Default: restore the pair again."""
        self.restore(definition, version, [pair])

    def leftovers(self, definition):
        """Paths of files of this pool that a killed run left behind and that
        no record or mark names (temporary marks); verify_records reports
        them. Default: none."""
        return []

    def sweep_leftovers(self, definition):
        """Remove leftovers() (the caller holds the pool's lock); returns the
        paths removed."""
        return []

    # --- bases of incremental sends ------------------------------------------

    def release_bases(self, definition, records, dry_run=False, sources=()):
        """Delete the bases (ours only) that no copy of ``records`` (the
        pool's replication records) was sent from or can be the parent of
        the next send: ``(source, version)`` not among the records' pairs;
        ``sources``: more sources to look beside (ones that just left the
        records). Returns the paths released (``dry_run``: that would be).
        Default: none kept."""
        return []

    def missing_bases(self, definition, records):
        """(record, pair, why) of the recorded copies whose base is missing
        on the source side or does not match the copy: the next version
        into that target pool is sent in full. Reads only. Default: none."""
        return []

    #: what a target volume is called in messages (an incremental send's
    #: "the earlier copy is in another target <noun>")
    target_noun = "volume"

    def _choose_bases(self, plan):
        """{source: (base version, base name) or (None, why it is sent in
        full)} for the pairs of ``plan``: the method's choice, the same for
        every tool. A pair is sent incrementally only from the copy its
        target pool holds (``plan.bases``, from the records), in the same
        target, and only when the tool finds that copy valid, the recorded
        one and received from the base kept beside the source
        (:meth:`_base_problems`); anything else is a full send, and why."""
        chosen = {}
        candidates = []
        for p in self._base_pairs(plan):
            entry = plan.bases.get(p.source)
            if entry is None:
                chosen[p.source] = (None, "the target pool holds no earlier copy of it")
                continue
            version, old = entry
            if old.target != p.target:
                chosen[p.source] = (None, "the earlier copy is in another target %s (%s)" % (self.target_noun,
                                                                                             old.target))
                continue
            candidates.append((version, old))
        if candidates:
            for (version, old), (base, why) in zip(candidates, self._base_problems(plan.definition, candidates)):
                chosen[old.source] = (version, base) if why is None else (None, why)
        return chosen

    def bases_to_send_from(self, plan):
        """{source: base version, or None for a full send}: what
        ``transfer`` of ``plan`` (``plan.bases`` set) would send each pair
        from, by the one choice transfer makes (:meth:`_choose_bases`).
        Reads only: check mode reports it before anything is copied."""
        return dict((source, version) for source, (version, _base) in self._choose_bases(plan).items())

    def _base_pairs(self, plan):
        """The pairs of ``plan`` that transfer sends, in its order (the
        order the storage is asked about their bases). Default: all."""
        return plan.pairs

    def _base_problems(self, definition, candidates):
        """The tool's check of incremental bases: for each ``(version,
        pair)`` of ``candidates`` (the copy of ``version`` the pair's target
        holds), ``(base name, why it cannot be the base or None)``, in
        order; the storage read once for all. Default: no incremental
        sends (every one is sent in full)."""
        return [(None, "technology %s sends no copy incrementally" % self.technology) for _c in candidates]

    # --- holds ---------------------------------------------------------------

    def hold_copies(self, definition, version, pairs, held=True):
        """Make the storage enforce the hold of version ``version``'s copies
        of ``pairs`` (``held``), or stop enforcing it (``held=False``), so
        that a hand-typed delete refuses where the tool can (``zfs hold``),
        else the copy is made read-only and tagged. Idempotent: a copy that
        already is as asked is left alone; ours only (the pool's mark, the
        recorded identity). Raises CopyFailed naming the copy when the tool
        refuses. Default: the technology cannot hold (InvalidInput)."""
        raise InvalidInput("technology %s cannot hold copies on the storage" % self.technology)

    def unenforced_holds(self, definition, version, pairs):
        """Those of ``pairs`` (copies of held version ``version`` that exist)
        whose hold the storage does not enforce now, each with why: a list
        of (pair, reason). Reads only (verify_records, check mode)."""
        return []

    def copy_valid(self, definition, info):
        """Whether an existing copy is still valid (e.g. a classic snapshot
        that overflowed is not). Default: CopyInfo.valid as listed."""
        return info.valid

    # --- browsing and file restores (issue 17) ----------------------------------

    def copy_view(self, definition, version, pair):
        """Where the copy of ``pair`` (of version ``version``) can be read: a
        _browse.CopyView. Checks, reading only, that the copy is the pool's,
        of that version, valid, the recorded one (identity) and on this
        host; raises InvalidInput naming the copy otherwise (a copy deleted
        behind our back included). Default: the technology cannot be
        browsed."""
        raise InvalidInput("copy pool %s: technology %s cannot mount or restore files from its copies; restore "
                           "whole sources with state=restored and no paths" % (definition.name, self.technology))

    def open_view(self, definition, view):
        """Make ``view`` readable before it is mounted (an LVM thin snapshot
        is activated). Default: nothing."""

    def source_directory(self, definition, source):
        """Where the live data of ``source`` is mounted on this host (the
        directory a restore in place writes to), or None when it is not
        mounted."""
        return None

    def locate_path(self, definition, path):
        """The source dataset inventory's question for one dataset: on which
        of ``definition``'s source volumes directory ``path`` lies, as a list
        of _model.DatasetPlace (the source whose live filesystem holds
        ``path`` first, with ``path`` relative to that filesystem's root;
        then every source mounted below ``path``, with where below it).
        Empty when ``path`` lies on no source. Reads only.

        Default, from where each backend says its sources are mounted
        (``source_directory``: the btrfs source subvolume itself, the
        mountpoint of an LVM source from /proc/self/mountinfo by device
        number, a ZFS dataset's mountpoint): ``path`` lies on a source when
        it is inside that directory AND on the same device (``st_dev``), so
        a nested btrfs subvolume, a child ZFS dataset or another filesystem
        mounted between them, which the source's copy does not hold, is not
        counted as the source's."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._model import DatasetPlace

        real = os.path.realpath(path)
        try:
            dev = os.stat(real).st_dev
        except OSError:
            return []
        holder, below = None, []
        for source in definition.sources:
            directory = self.source_directory(definition, source)
            if not directory:
                continue
            root = os.path.realpath(directory)
            try:
                root_dev = os.stat(root).st_dev
            except OSError:
                continue
            if _path_inside(real, root) and root_dev == dev:
                rel = os.path.relpath(real, root)
                if holder is None or len(root) > len(holder[1]):
                    holder = (source, root, "" if rel == "." else rel)
            elif real != root and _path_inside(root, real):
                below.append(DatasetPlace(source, "", os.path.relpath(root, real)))
        if holder is None:
            return []
        return [DatasetPlace(holder[0], holder[2], "")] + sorted(below, key=lambda p: p.at)

    # --- whole sources restored elsewhere (issue 17, item 4) ----------------------

    def restore_elsewhere_volumes(self, definition, version, pairs, restore_to):
        """``[(pair, volume)]``: the NEW volume the copy of each pair (of
        version ``version``) becomes under ``restore_to``'s rules for this
        technology (documented in docs/technologies.md). Reads only; raises
        InvalidInput naming ``restore_to`` and what is accepted when it does
        not fit those rules. Default: the technology cannot do it (only a
        backend outside the technology table, as every technology in it can)."""
        # every technology of the table supports it: only a backend outside
        # the table (a test's) gets here, so the list is the table's
        raise InvalidInput("copy pool %s: restore_to %r without paths (whole sources restored as new volumes) is "
                           "not supported for technology %s; supported: %s. Restore files with paths, or whole "
                           "sources in place without restore_to; nothing was changed" % (
                               definition.name, restore_to, self.technology, ", ".join(TECHNOLOGIES)))

    def restored_elsewhere(self, definition, version, pair, volume):
        """What is at ``volume`` now, reading only: None (nothing), True (a
        volume made from the copy of ``pair``, so a restore that made it
        already is done), or a string saying what else is there."""
        return "technology %s cannot tell" % self.technology

    def restore_elsewhere(self, definition, version, pair, volume):
        """Create ``volume``, writable, from the copy of ``pair``, carrying
        none of the pool's copy marks (it is the user's: never rotated,
        deleted or listed as a copy); nothing when :meth:`restored_elsewhere`
        says it is there already, and refused, nothing changed, when it says
        something else is. Raises CopyFailed leaving nothing of ``volume``
        behind when the tool fails. The check is here, once, so that every
        technology (and verify_records repair, which finishes a killed run
        through this method) refuses the same way; the making is the
        technology's :meth:`_make_restored`."""
        found = self.restored_elsewhere(definition, version, pair, volume)
        if found is True:
            return
        if found is not None:
            raise InvalidInput("cannot restore %s of version %s to %s: %s; it was left as it is" % (
                pair.source, version, volume, found))
        self._make_restored(definition, version, pair, volume)

    def _make_restored(self, definition, version, pair, volume):
        """Make ``volume`` from the copy of ``pair`` (what
        :meth:`restore_elsewhere` does once it found nothing of it there, or
        only an unfinished one of ours)."""
        raise InvalidInput("technology %s cannot restore whole sources elsewhere" % self.technology)

    # --- media: a version dumped as streams, restored from them (issue 17, item 6) ------------

    #: the extension of this technology's streams on a medium (the file
    #: ``<name>.<extension>``); None: the technology cannot dump yet
    stream_extension = None

    def media_refusal(self, definition, what):
        """The refusal of ``what`` (a dump, a restore from media) by a
        technology that cannot do it: InvalidInput naming the technology and
        what is supported."""
        return InvalidInput("copy pool %s: %s is not supported for technology %s; supported: %s; nothing was "
                            "changed" % (
                                definition.name, what, self.technology, ", ".join(MEDIA_TECHNOLOGIES)))

    def dump_stream(self, definition, version, pair, write):
        """Write the full stream of the copy of ``pair`` (version
        ``version``) to ``write(chunk)``: a stream that restores alone (no
        parent). CopyFailed when the tool fails (the caller discards what it
        got)."""
        raise self.media_refusal(definition, "dumping a version to media")

    def media_volumes(self, definition, sources, restore_to):
        """``[(source, volume)]``: the NEW volume each source's stream
        becomes under ``restore_to`` (the technology's restore_to rules for
        whole sources, without the copies: they may be gone). Reads only."""
        raise self.media_refusal(definition, "restoring from media")

    def receive_stream(self, definition, source, fd, volume):
        """Make ``volume``, writable and carrying none of the pool's marks,
        from the stream read from the open file ``fd``; nothing is left of
        it when the tool fails (CopyFailed)."""
        raise self.media_refusal(definition, "restoring from media")

    def volume_exists(self, volume):
        """Whether ``volume`` (a name the restore_to rules made: a path, or a
        technology's own volume name) exists on this host. Default: a path."""
        return os.path.lexists(volume)

    def media_leftovers(self, volumes):
        """What a killed restore from media left beside ``volumes`` (work
        directories of ours); default: nothing."""
        return []

    def sweep_media_leftovers(self, volumes):
        return None


MEDIA_TECHNOLOGIES = ("btrfs_snapshot", "btrfs_send", "zfs_snapshot", "zfs_send", "lvm_snapshot", "lvm_thin",
                      "lvm_clone")


def restore_to_refusal(definition, restore_to, accepted):
    """The refusal of a ``restore_to`` (whole sources restored elsewhere)
    that does not fit a technology's rules: ``bad(why)`` makes the
    InvalidInput naming the pool, the value, why and what ``accepted`` is,
    worded the same for every technology."""
    def bad(why):
        return InvalidInput("copy pool %s: restore_to %r %s; accepted: %s; nothing was changed" % (
            definition.name, restore_to, why, accepted))
    return bad


def _path_inside(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve_filter(definition, runner):
    """The copy pool's ``transfer.filter`` argv with its program as an
    absolute path (looked up once, in PATH and the sbin directories), or
    ``[]`` without a filter. InvalidInput names the program when it is not
    installed (or not executable): refused before anything is made."""
    transfer = getattr(definition, "transfer", None)
    argv = list(getattr(transfer, "filter", None) or ())
    if not argv:
        return []
    program = argv[0]
    found = runner.resolve(program) if "/" not in program else program
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise InvalidInput(
            "copy pool %s: transfer.filter %r cannot run: the program %r was not found%s on this host; install it "
            "or give the absolute path of an executable (the filter runs between send and receive, on the host "
            "that runs the send)" % (definition.name, argv, program,
                                     "" if "/" not in program else " (or is not an executable file)"))
    return [found] + argv[1:]
