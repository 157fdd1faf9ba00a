# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_version state=mounted / state=unmounted (browse a version) and
state=restored with ``paths`` (restore files or directories, in place or to
``restore_to``).

A mount is recorded in the version's replication record (``mounted``: the
path) BEFORE anything is mounted and cleared only AFTER everything is
unmounted, so that a killed run leaves a record that verify_records reports
(``stale_mount``) and state=unmounted clears; rotation, retention, deletion
and pool removal refuse a mounted version (its copies are in use, and a
mount left behind would hide a deletion) until it is unmounted: refusing is
the safer default than unmounting behind the reader's back.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils import _browse
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    SessionBase,
    check_version_number,
    with_record,
    pool_dict,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_datasets import check_dataset_name, place_of
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_restore import restore_pairs
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_RESTORE_PATHS,
    RECORD_REPLICATION,
    STATUS_VALID,
    CopyPair,
    Finding,
    Journal,
)

PROBLEM_STALE_MOUNT = "stale_mount"
PROBLEM_INTERRUPTED_RESTORE_PATHS = "interrupted_restore_paths"
PROBLEM_RESTORE_LEFTOVER = "restore_leftover"


def refuse_mounted(pool, rec, what):
    """Refuse, before anything is touched, to replace or delete mounted
    version ``rec`` (None: nothing to refuse)."""
    if rec is not None and rec.mounted is not None:
        raise InvalidInput(
            "copy pool %s: refusing %s, nothing was changed: version %d is mounted at %s for browsing. Unmount it "
            "first with pitcopy.versions.copy_version state=unmounted version=%d" % (
                pool, what, rec.version, rec.mounted, rec.version))


def planned_mounts(rec, path):
    """``[{source, path}]`` of version ``rec`` mounted under ``path``."""
    sources = [p.source for p in rec.pairs]
    return [{"source": s, "path": os.path.join(path, _browse.mount_name(s, sources))} for s in sources]


def planned_dataset_mounts(rec, path):
    """``[{name, path, places}]``: where each dataset version ``rec`` holds
    reads when the version is mounted under ``path`` (``path``: the
    dataset's directory in the copy of the source holding it; ``places``:
    per source volume of the dataset, its part's directory and where in the
    dataset it belongs)."""
    at = dict((m["source"], m["path"]) for m in planned_mounts(rec, path))
    out = []
    for ds in rec.datasets:
        places = [{"source": p.source, "path": os.path.join(at[p.source], p.path) if p.path else at[p.source],
                   "at": p.at} for p in ds.places if p.source in at]
        if places:
            out.append({"name": ds.name, "path": places[0]["path"], "places": places})
    return out


def verify_mounts(scan):
    """verify_records: a version recorded as mounted whose mounts are gone
    (a reboot, a hand-typed umount, a run killed while mounting)."""
    table = _browse.read_mounts()
    for rec in sorted(scan.state.replication_records, key=lambda r: r.version):
        if rec.mounted is None:
            continue
        for m in planned_mounts(rec, rec.mounted):
            if _browse.mount_at(m["path"], table) is None:
                scan.findings.append(Finding(
                    RECORD_REPLICATION, rec.version, m["source"], m["path"], PROBLEM_STALE_MOUNT,
                    "none: the record says version %d is mounted at %s but nothing is mounted at %s; run "
                    "pitcopy.versions.copy_version state=unmounted version=%d to clear the record, or "
                    "state=mounted to mount it again" % (rec.version, rec.mounted, m["path"], rec.version)))


def restore_leftovers(journal):
    """What a killed file restore left beside its destinations:
    ``[(source, destination, path, which)]``, ``which`` ``copy`` (a copy of
    the version's data being made, ``.pitcopy-restore.<name>.<pid>``) or
    ``aside`` (what the destination held, moved aside while the copy took
    its place, ``.pitcopy-restore.old.<name>.<pid>``). Only these exact
    names, from the journal's destinations and pid, are ours: a name with
    another pid or of another file is never looked at."""
    out = []
    if journal.pid is None:
        return out
    for p in journal.asides:
        dst = p.target
        if not isinstance(dst, str) or not os.path.isabs(dst) or not os.path.basename(dst):
            continue  # not what a restore writes (a hand edit): nothing of ours to find
        copy, aside = _browse.restore_temp_names(dst, journal.pid)
        for path, which in ((copy, "copy"), (aside, "aside")):
            if os.path.lexists(path):
                out.append((p.source, dst, path, which))
    return out


def restore_paths_journal_plan(session, state, j, repair):
    """verify_records on the journal of a killed file restore: (action ->
    new state, description, findings). Each leftover is a finding; repair
    removes a partial copy (the version's data, never the live data), puts
    an aside back where the destination is gone (the copy never took its
    place) and removes an aside whose destination the copy had replaced
    (the restore was removing it: what was asked for is finished), then
    clears the journal. A destination is then what it was or the version's:
    never missing, never half copied; the paths can be restored again."""
    found = restore_leftovers(j)
    copies = set(dst for _s, dst, _p, which in found if which == "copy")
    findings = []
    plan = []
    for source, dst, path, which in found:
        if which == "copy":
            did, would = "removed", "remove it"
            why = "a partial copy of %s from version %d that a killed file restore (pid %s) was making; %s is " \
                  "left as it was before that restore" % (dst, j.version, j.pid, dst)
            plan.append((_browse.remove_tree, path))
        elif not os.path.lexists(dst):
            did, would = "moved back to %s" % dst, "move it back to %s" % dst
            why = "what %s held before a killed file restore (pid %s) moved it aside; version %d's copy never " \
                  "took its place, so %s is missing until it is moved back" % (dst, j.pid, j.version, dst)
            plan.append((lambda a, d=dst: os.rename(a, d), path))
        elif dst in copies:
            # both names beside a destination that exists: not the order
            # copy_back renames in, so the destination may be someone's
            did = would = None
            why = "left for a human: what %s held before a killed file restore (pid %s); %s exists again and " \
                  "is not known to be version %d's copy: look at both and remove the one not needed" % (
                      dst, j.pid, dst, j.version)
        else:
            did, would = "removed", "remove it"
            why = "what %s held before the file restore from version %d, which had put the version's copy in its " \
                  "place and was removing this" % (dst, j.version)
            plan.append((_browse.remove_tree, path))
        if did is None:
            action = why
        elif repair:
            action = "%s: %s" % (did, why)
        else:
            action = "none (repair: true would %s): %s" % (would, why)
        findings.append(Finding(RECORD_REPLICATION, j.version, source, path, PROBLEM_RESTORE_LEFTOVER, action))
    dirs = sorted(set(os.path.dirname(p.target) for p in j.asides))
    what = "cleared the journal of the file restore from version %d (pid %s, started %s) into %s%s; restore the " \
           "paths again to finish it" % (j.version, j.pid, j.started, ", ".join(dirs) or "nothing",
                                         "" if found else "; nothing of it was left beside them")
    findings.insert(0, Finding(RECORD_REPLICATION, j.version, None, None, PROBLEM_INTERRUPTED_RESTORE_PATHS,
                               what if repair else "none (repair: true would have %s)" % what))

    def finish():
        for act, path in plan:
            act(path)
        new = replace(state, journal=None)
        session._save(new)
        return new

    return finish, what, findings


def _listing(items):
    return ", ".join(items) or "none"


class BrowseSteps(SessionBase):
    """copy_version state=mounted, state=unmounted, state=restored with paths."""

    def _valid_record(self, state, version, what):
        check_version_number(version)
        rec = state.replication(version)
        if rec is None:
            raise InvalidInput("cannot %s version %d of copy pool %s: no such version; it keeps versions: %s; "
                               "nothing was changed" % (what, version, self.name, _listing(
                                   [str(r.version) for r in state.replication_records])))
        if rec.status != STATUS_VALID:
            raise InvalidInput("cannot %s version %d of copy pool %s: it is %s (run pitcopy.versions.verify_records "
                               "to see why); choose another version" % (what, version, self.name, rec.status))
        return rec

    def _source_dirs(self, backend, definition, sources):
        return dict((s, backend.source_directory(definition, s)) for s in sources)

    def _check_outside(self, backend, state, value, option):
        """``value`` (an absolute directory path the user names) normalized,
        refused inside the pool's sources or without an existing parent."""
        sources = list(state.definition.sources) + [p.source for r in state.replication_records for p in r.pairs]
        dirs = [d for d in self._source_dirs(backend, state.definition, sorted(set(sources))).values() if d]
        try:
            return _browse.check_restore_to(value, dirs)
        except InvalidInput as exc:
            exc.msg = exc.msg.replace("restore_to", option)
            exc.args = (exc.msg,)
            raise

    # --- state=mounted / state=unmounted -----------------------------------------

    def plan_mount(self, version, path):
        state = self._require()
        rec = self._valid_record(state, version, "mount")
        backend = self._backend()
        path = self._check_outside(backend, state, path, "path")
        for r in state.replication_records:
            if r.version != rec.version and r.mounted == path:
                raise InvalidInput("cannot mount version %d of copy pool %s at %s: version %d is mounted there; "
                                   "unmount it first (state=unmounted version=%d) or choose another path" % (
                                       rec.version, self.name, path, r.version, r.version))
        if rec.mounted is not None and rec.mounted != path:
            raise InvalidInput("cannot mount version %d of copy pool %s at %s: it is mounted at %s already; a version "
                               "is mounted at one path at a time: unmount it first (state=unmounted version=%d) or "
                               "use path %s" % (rec.version, self.name, path, rec.mounted, rec.version, rec.mounted))
        self._no_journal("mounting a version")
        definition = state.definition
        mounts = planned_mounts(rec, path)
        views = [backend.copy_view(definition, rec.version, p) for p in rec.pairs]
        table = _browse.read_mounts()
        missing = [(m, v) for m, v in zip(mounts, views) if _browse.mount_at(m["path"], table) is None]
        if rec.mounted is None:
            for m in mounts:
                if _browse.mount_at(m["path"], table) is not None:
                    raise InvalidInput("cannot mount version %d of copy pool %s at %s: something else is mounted at "
                                       "%s; choose another path" % (rec.version, self.name, path, m["path"]))
                if os.path.isdir(m["path"]) and os.listdir(m["path"]):
                    raise InvalidInput("cannot mount version %d of copy pool %s at %s: %s is a directory that is not "
                                       "empty and a mount would hide its files; choose another path" % (
                                           rec.version, self.name, path, m["path"]))
        new_rec = replace(rec, mounted=path)
        new = with_record(state, new_rec)
        result = {"version": version_dict(new_rec), "replaced_version": None, "broken_pairs": [], "mounts": mounts,
                  "datasets": planned_dataset_mounts(rec, path)}
        if not missing and rec.mounted == path:
            return Plan(False, pool_dict(state), pool_dict(state), result)

        def act():
            # the record first: a kill while mounting leaves a record that
            # verify_records reports and state=unmounted clears
            self._save(new)
            made = []
            try:
                if not os.path.isdir(path):
                    os.mkdir(path, 0o755)
                for m, view in missing:
                    if not os.path.isdir(m["path"]):
                        os.mkdir(m["path"], 0o755)
                    backend.open_view(definition, view)
                    _browse.mount_view(backend.runner, view, m["path"])
                    made.append(m["path"])
            except Exception:
                for p in reversed(made):
                    _browse.unmount(backend.runner, p)
                if rec.mounted is None:
                    for m in mounts:
                        _rmdir_quietly(m["path"])
                    self._save(state)
                raise
            return result

        return Plan(True, pool_dict(state), pool_dict(new), result, act)

    def plan_unmount(self, version, path=None):
        state = self._require()
        check_version_number(version)
        rec = state.replication(version)
        result = {"version": version_dict(rec), "replaced_version": None, "broken_pairs": [], "mounts": []}
        if rec is None or rec.mounted is None:
            return Plan(False, pool_dict(state), pool_dict(state), result)
        if path is not None and os.path.normpath(path) != rec.mounted:
            raise InvalidInput("cannot unmount version %d of copy pool %s from %s: it is mounted at %s; give that "
                               "path or none" % (rec.version, self.name, path, rec.mounted))
        backend = self._backend()
        mounts = planned_mounts(rec, rec.mounted)
        new_rec = replace(rec, mounted=None)
        new = with_record(state, new_rec)
        result = dict(result, version=version_dict(new_rec), mounts=mounts)

        def act():
            table = _browse.read_mounts()
            for m in mounts:
                if _browse.mount_at(m["path"], table) is not None:
                    _browse.unmount(backend.runner, m["path"])
                _rmdir_quietly(m["path"])
            # the record last: a failed unmount leaves it mounted and recorded
            self._save(new)
            return result

        return Plan(True, pool_dict(state), pool_dict(new), result, act)

    # --- state=restored with paths ---------------------------------------------------

    def plan_restore_paths(self, version, paths, restore_to=None, volumes=None, dataset=None):
        state = self._require()
        if dataset is not None:
            check_dataset_name(state, dataset, "cannot restore files of dataset %s" % dataset)
        rec = self._valid_record(state, version, "restore files from")
        self._no_journal("restoring files")
        if not paths:
            raise InvalidInput("paths must name at least one file or directory, got %r" % (paths,))
        definition = state.definition
        backend = self._backend()
        if dataset is not None:
            if volumes is not None:
                raise InvalidInput("volumes %r and dataset %s do not go together: a dataset names its source volumes "
                                   "itself; leave volumes out" % (volumes, dataset))
            ds = self._held_dataset(state, rec, dataset)
            # each path to (the path inside its source, that source)
            rels, subs, at = [], {}, {}
            for p in paths:
                r = _browse.check_relative_path(p, base="dataset %s (%s)" % (ds.name, ds.path))
                place = place_of(ds, r)[0]
                sub = r if not place.at else r[len(place.at):].lstrip("/")
                if not sub:
                    raise InvalidInput("path %r names the whole of source %s, mounted at %s in dataset %s; name the "
                                       "files or directories inside it, or restore the source with volumes" % (
                                           p, place.source, place.at, ds.name))
                if (sub, place.source) not in rels:
                    rels.append((sub, place.source))
                subs[place.source] = place.path
                at[place.source] = place.at
            pairs = [x for x in rec.pairs if x.source in subs]
        else:
            rels = []
            for p in paths:
                r = _browse.check_relative_path(p)
                if (r, None) not in rels:
                    rels.append((r, None))
            pairs = restore_pairs(state, rec, volumes)
            subs = dict((x.source, "") for x in pairs)
        if restore_to is not None:
            restore_to = self._check_outside(backend, state, restore_to, "restore_to")
            names = [p.source for p in pairs]
            if dataset is not None:
                # the dataset's layout under restore_to
                roots = dict((p.source, os.path.join(restore_to, at[p.source]) if at[p.source] else restore_to)
                             for p in pairs)
            else:
                roots = dict((p.source, restore_to if len(pairs) == 1 else
                              os.path.join(restore_to, _browse.mount_name(p.source, names))) for p in pairs)
        else:
            roots = self._source_dirs(backend, definition, [p.source for p in pairs])
            absent = [s for s, d in roots.items() if d is None]
            if absent:
                raise InvalidInput("cannot restore paths of %s in place: not mounted on this host; mount it, or give "
                                   "restore_to (a directory outside the sources); nothing was changed" % (
                                       ", ".join(absent)))
            roots = dict((s, os.path.join(d, subs[s]) if subs[s] else d) for s, d in roots.items())
        views = [(p, backend.copy_view(definition, rec.version, p)) for p in pairs]
        if rec.mounted is not None:
            # a browsing mount of this version reads as the copy too
            table = _browse.read_mounts()
            mounted = dict((m["source"], m["path"]) for m in planned_mounts(rec, rec.mounted))
            views = [(p, v if v.directory is not None or _browse.mount_at(mounted[p.source], table) is None
                      else replace(v, directory=mounted[p.source])) for p, v in views]
        readable = all(v.directory is not None for p, v in views)
        in_place = restore_to is None

        def copy_dirs(dirs):
            return dict((s, os.path.join(d, subs[s]) if subs[s] else d) for s, d in dirs.items())

        items = self._file_items(rec.version, views, copy_dirs(dict((p.source, v.directory) for p, v in views)),
                                 rels, roots, in_place, dataset) \
            if readable else [{"source": p.source, "path": r, "copy": None,
                               "destination": os.path.join(roots[p.source], r), "changes": None, "change_count": None}
                              for p, v in views for r, only in rels if only in (None, p.source)]
        if dataset is not None:
            for i in items:
                i["dataset"] = dataset
        changed = any(i["changes"] is None or i["changes"] for i in items)
        result = {"version": version_dict(rec), "replaced_version": None, "broken_pairs": [],
                  "restored": sorted(set(i["source"] for i in items if i["changes"] is None or i["changes"])),
                  "asides": [], "restored_paths": items, "restore_to": restore_to}

        def act():
            with contextlib.ExitStack() as stack:
                dirs = {}
                for p, v in views:
                    if v.directory is None:
                        backend.open_view(definition, v)
                    dirs[p.source] = stack.enter_context(_browse.TemporaryView(backend.runner, v))
                dirs = copy_dirs(dirs)
                # every path of every source judged before the first is copied
                now = self._file_items(rec.version, views, dirs, rels, roots, in_place, dataset)
                if dataset is not None:
                    for i in now:
                        i["dataset"] = dataset
                todo = [i for i in now if i["changes"]]
                if not todo:
                    return dict(result, restored_paths=now, restored=[])
                # the intent first (issue 12): a run killed while copying
                # leaves a journal naming each destination and this pid, so
                # that verify_records finds the temporary names beside them
                # and repair removes what is ours; until then every other
                # run of the pool is refused, as after any interrupted run
                journal = Journal(operation=JOURNAL_RESTORE_PATHS, version=rec.version,
                                  target_pool=rec.target_pool, pairs=tuple(p for p, v in views),
                                  phase="restoring", started=self.engine.now(), label=rec.label, pid=os.getpid(),
                                  asides=tuple(CopyPair(i["source"], i["destination"]) for i in todo))
                self._save(replace(state, journal=journal))
                try:
                    if restore_to is not None and not os.path.isdir(restore_to):
                        os.mkdir(restore_to, 0o755)
                    for i in todo:
                        root = roots[i["source"]]
                        if not os.path.isdir(root):
                            os.makedirs(root, 0o755)
                        _browse.copy_back(backend.runner, dirs[i["source"]], root, i["path"])
                        # cp -a drops silently what the destination cannot keep
                        # (xattrs on a filesystem without them): said, not hidden
                        left = _browse.differences(i["copy"], i["destination"], i["path"])
                        if left:
                            raise CopyFailed("%s was restored to %s but the destination did not keep everything: "
                                             "%s (does its filesystem support xattrs and ACLs?)" % (
                                                 i["path"], i["destination"],
                                                 ", ".join("%s: %s" % d for d in left[:10])),
                                             target=i["destination"])
                except Exception:
                    # copy_back cleans up after a failure it sees: the
                    # journal goes unless something of ours is still there
                    if not restore_leftovers(journal):
                        self._save(state)
                    raise
                self._save(state)
                out = dict(result, restored_paths=now, restored=sorted(set(i["source"] for i in todo)))
            return out

        return Plan(changed, pool_dict(state), pool_dict(state), result, act)

    def _held_dataset(self, state, rec, name):
        """Dataset ``name`` as version ``rec`` holds it, or InvalidInput
        naming the versions that hold it."""
        ds = rec.dataset(name)
        if ds is None:
            holders = [str(r.version) for r in sorted(state.replication_records, key=lambda r: r.version)
                       if r.dataset(name) is not None]
            raise InvalidInput("version %d of copy pool %s does not hold dataset %s (it was taken before the pool "
                               "named it, or it lay on no source then); versions holding it: %s; nothing was "
                               "changed" % (rec.version, self.name, name, _listing(holders)))
        return ds

    def _file_items(self, version, views, dirs, rels, roots, in_place, dataset=None):
        """One item per path and source whose copy holds it: what restoring
        it changes; InvalidInput for a path that escapes or that no copy
        holds (judged for all before anything is copied). ``rels``: (path,
        the one source it is on, or None for every source)."""
        items = []
        for rel, only in rels:
            found = False
            for p, v in views:
                if only is not None and p.source != only:
                    continue
                copy_root = dirs[p.source]
                src = _browse.resolve_in(copy_root, rel, "the copy of %s" % (
                    p.source if dataset is None else "dataset %s" % dataset))
                if not os.path.lexists(src):
                    continue
                found = True
                root = roots[p.source]
                dst = _browse.check_destination(root, rel) if in_place else os.path.join(root, rel)
                if not in_place and os.path.isdir(root):
                    dst = _browse.check_destination(root, rel)
                diffs = _browse.differences(src, dst, rel) if os.path.isdir(root) else [(rel, "missing")]
                items.append({"source": p.source, "path": rel, "copy": src, "destination": dst,
                              "changes": ["%s: %s" % d for d in diffs[:_browse.CHANGES_LISTED]],
                              "change_count": len(diffs)})
            if not found:
                if dataset is not None:
                    raise InvalidInput("path %r is not in dataset %s of version %s of copy pool %s; paths are "
                                       "relative to the dataset's directory; nothing was changed" % (
                                           rel, dataset, version, self.name))
                raise InvalidInput("path %r is in no copy of version %s of copy pool %s (sources: %s); paths are "
                                   "relative to a source's mount point; nothing was changed" % (
                                       rel, version, self.name,
                                       ", ".join(p.source for p, v in views)))
        return items


def _rmdir_quietly(path):
    try:
        os.rmdir(path)
    except OSError:
        pass
