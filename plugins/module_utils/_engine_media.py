# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media (issue 17, item 6): copy_version state=dumped writes a version's
copies as streams to a directory the user names and keeps the storage media
inventory (Table 3.2, [0063]-[0065]: which source's data of which version is
on which medium, with the version's time stamp, each stream's size and
sha256); copy_version state=restored with from_media receives them as NEW
volumes; verify_records checks the streams (verify_media: every byte).

The inventory lives beside the replication records, not in them: deleting
or rotating a version never deletes its dumps, nor their entries, and a
restore from media needs no copy of the version at all. Nothing here ever
deletes a stream: repair removes only the temporary names a killed dump
left (``_media.TEMP_RE``) and the work directories of a killed receive.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils import _media
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    SessionBase,
    check_version_number,
    _journaled,
    pool_dict,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput, PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_DUMP,
    JOURNAL_RESTORE_ELSEWHERE,
    STATUS_VALID,
    CopyPair,
    Finding,
    Journal,
    MediaDump,
    MediaStream,
)

RECORD_MEDIA = "media"


def _inventory_text(state):
    return ", ".join("version %d on %s" % (d.version, d.medium)
                     for d in sorted(state.media, key=lambda d: (d.version, d.medium))) or "nothing"


class MediaSteps(SessionBase):
    """copy_version state=dumped, restored with from_media; the media checks
    of verify_records."""

    def _media_backend(self, state, what):
        backend = self._backend()
        if backend.stream_extension is None:
            raise backend.media_refusal(state.definition, what)
        return backend

    def _medium_places(self, state, backend):
        """The directories a medium may not lie in: the sources and target
        directories of the definition and of every record, and where each
        source is mounted (a ZFS source is a dataset name, its files are at
        its mountpoint)."""
        d = state.definition
        places = list(d.sources) + [v for tp in d.target_pools for v in tp.volumes]
        places.extend(filter(None, (backend.source_directory(d, s) for s in d.sources)))
        for r in state.replication_records + state.prepairing_records:
            places.extend(p.source for p in r.pairs)
            places.extend(p.target for p in r.pairs)
        return places

    def plan_dump(self, version, media):
        """Write each copy pair's stream of ``version`` to
        ``<media>/<pool>/v<version>/`` and add the dump to the inventory. A
        stream already there whose size and sha256 match the inventory is
        not written again (all of them: no change)."""
        state = self._require()
        backend = self._media_backend(state, "dumping a version to media")
        check_version_number(version)
        rec = state.replication(version)
        if rec is None:
            raise InvalidInput("copy pool %s has no version %d to dump; it keeps versions: %s" % (
                self.name, version, ", ".join(str(r.version) for r in state.replication_records) or "none"))
        if rec.status != STATUS_VALID:
            raise InvalidInput("version %d of copy pool %s is %s and cannot be dumped; dump another version (run "
                               "pitcopy.versions.verify_records to see why)" % (version, self.name, rec.status))
        self._no_journal("dumping")
        medium = _media.medium_problem(media, state.definition, self._medium_places(state, backend))
        pairs = list(rec.pairs)
        self._check_identities(backend, [rec], self._list_copies(backend, state, pairs), "to dump version %d" % version)
        ext = backend.stream_extension
        rel = dict((p.source, _media.relative_stream(self.name, version, _media.stream_name(p.source, ext)))
                   for p in pairs)
        old = state.dump(medium, version)
        kept = {}
        for st in (old.streams if old is not None else ()):
            if rel.get(st.source) == st.stream and \
                    _media.stream_problem(os.path.join(medium, st.stream), st.size, st.sha256, True) is None:
                kept[st.source] = st
        todo = [p for p in pairs if p.source not in kept]
        result = {"version": version_dict(rec), "medium": medium,
                  "written": [{"source": p.source, "stream": rel[p.source]} for p in todo],
                  "dump": old.as_dict() if old is not None and not todo else None}
        before = pool_dict(state)
        # as far as known before writing: a stream's size and sha256 (and
        # the dump's time) are null until it is written
        planned = MediaDump(medium, version, rec.created, tuple(
            kept.get(p.source) or MediaStream(p.source, rel[p.source], None, None) for p in pairs), None)
        after = pool_dict(replace(state, media=tuple(d for d in state.media if d is not old) + (planned,))
                          if todo else state)

        def act():
            definition = state.definition
            journal = Journal(operation=JOURNAL_DUMP, version=version, target_pool=rec.target_pool,
                              pairs=tuple(todo), phase="dumping", started=self.engine.now(), label=rec.label,
                              pid=os.getpid(), medium=medium)
            self._save(replace(state, journal=journal))
            _media.ensure_dir(_media.version_dir(medium, self.name, version), medium)
            written = {}
            for p in todo:
                writer = _media.StreamWriter(os.path.join(medium, rel[p.source]))
                try:
                    backend.dump_stream(definition, version, p, writer.write)
                    size, digest = writer.commit()
                except (CopyFailed, InvalidInput) as exc:
                    writer.abort()
                    self._save(replace(state, journal=None))
                    exc.msg = "%s (streams written before the failure, left on the medium: %s)" % (
                        exc.msg, ", ".join(rel[s] for s in written) or "none")
                    exc.args = (exc.msg,)
                    raise
                except PitcopyError as exc:
                    writer.abort()
                    raise _journaled(exc, journal, self.name)
                except BaseException:
                    writer.abort()
                    raise
                written[p.source] = MediaStream(p.source, rel[p.source], size, digest)
            dump = MediaDump(medium, version, rec.created,
                             tuple(kept.get(p.source) or written[p.source] for p in pairs), self.engine.now())
            self._save(replace(state, journal=None,
                               media=tuple(d for d in state.media if d is not old) + (dump,)))
            return dict(result, dump=dump.as_dict())

        return Plan(bool(todo), before, after, result, act)

    def plan_restore_from_media(self, version, medium, restore_to, volumes=None):
        """Whole sources of ``version`` received from the streams of
        ``medium`` (the inventory's) as NEW volumes under ``restore_to``
        (the technology's restore_to rules), under a ``restore_elsewhere``
        journal naming the medium. Every stream's size and sha256 are
        checked before anything is made: a damaged medium is refused,
        nothing made. Never overwrites: a volume that exists is refused."""
        state = self._require()
        backend = self._media_backend(state, "restoring from media")
        check_version_number(version)
        if restore_to is None:
            raise InvalidInput("from_media needs restore_to: a restore from media makes NEW volumes beside "
                               "production, never in place; nothing was changed")
        if not isinstance(medium, str) or not os.path.isabs(medium):
            raise InvalidInput("from_media %r is not an absolute path; name the medium directory version %d was "
                               "dumped to (the inventory holds: %s); nothing was changed" % (
                                   medium, version, _inventory_text(state)))
        where = os.path.normpath(medium)
        dump = state.dump(where, version)
        if dump is None:
            raise InvalidInput("copy pool %s has no dump of version %d on medium %s; the storage media inventory "
                               "holds: %s; nothing was changed" % (self.name, version, where, _inventory_text(state)))
        self._no_journal("restoring")
        streams = list(dump.streams)
        if volumes is not None:
            volumes = [volumes] if isinstance(volumes, str) else list(volumes)
            known = [st.source for st in streams]
            for v in volumes:
                if v not in known:
                    raise InvalidInput("%s has no stream in the dump of version %d of copy pool %s on %s; choose "
                                       "from: %s" % (v, version, self.name, where, ", ".join(known)))
            streams = [st for st in streams if st.source in set(volumes)]
        planned = backend.media_volumes(state.definition, [st.source for st in streams], restore_to)
        volume_of = dict(planned)
        self._check_streams(where, version, streams)
        taken = ["%s (for %s)" % (volume_of[st.source], st.source) for st in streams
                 if backend.volume_exists(volume_of[st.source])]
        if taken:
            raise InvalidInput("cannot restore version %d of copy pool %s from %s to restore_to %r, nothing was "
                               "changed: %s exists; a restore never overwrites: choose another restore_to, or move "
                               "that away" % (version, self.name, where, restore_to, "; ".join(taken)))
        restored_to = [{"source": st.source, "volume": volume_of[st.source]} for st in streams]
        result = {"version": version_dict(state.replication(version)), "replaced_version": None, "broken_pairs": [],
                  "restored": [st.source for st in streams], "asides": [], "restored_to": restored_to,
                  "restore_to": restore_to, "from_media": where, "dump": dump.as_dict()}
        before = dict(pool_dict(state), restored_to=[])
        after = dict(pool_dict(state), restored_to=restored_to)

        def act():
            journal = Journal(operation=JOURNAL_RESTORE_ELSEWHERE, version=version, target_pool="",
                              pairs=tuple(CopyPair(st.source, os.path.join(where, st.stream)) for st in streams),
                              phase="restoring", started=self.engine.now(), pid=os.getpid(),
                              asides=tuple(CopyPair(st.source, volume_of[st.source]) for st in streams),
                              medium=where)
            self._save(replace(state, journal=journal))
            for st in streams:
                try:
                    self._receive(backend, state.definition, where, version, st, volume_of[st.source])
                except (CopyFailed, InvalidInput) as exc:
                    self._save(replace(state, journal=None))
                    exc.msg = "%s (volumes restored from the medium before the failure, left for you: %s)" % (
                        exc.msg, ", ".join(volume_of[s] for s in journal.done) or "none")
                    exc.args = (exc.msg,)
                    raise
                except PitcopyError as exc:
                    raise _journaled(exc, journal, self.name)
                journal = replace(journal, done=journal.done + (st.source,))
                if len(journal.done) < len(streams):
                    self._save(replace(state, journal=journal))
            self._save(replace(state, journal=None))
            return result

        return Plan(True, before, after, result, act)

    def _check_streams(self, medium, version, streams):
        problems = []
        for st in streams:
            found = _media.stream_problem(os.path.join(medium, st.stream), st.size, st.sha256, True)
            if found is not None:
                problems.append("%s (%s): %s" % (st.stream, found[0], found[1]))
        if problems:
            raise InvalidInput("the dump of version %d of copy pool %s on medium %s cannot be restored, nothing was "
                               "made: %s; restore from another medium or another version (verify_records with "
                               "verify_media: true checks them all)" % (version, self.name, medium, "; ".join(problems)))

    def _receive(self, backend, definition, medium, version, st, volume):
        """One stream received as ``volume``: its bytes hashed again from the
        descriptor the receive reads, so what is received is what was
        checked (the medium may have changed since the plan)."""
        path = os.path.join(medium, st.stream)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            h = hashlib.sha256()
            size = 0
            while True:
                chunk = os.read(fd, _media.CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                size += len(chunk)
            if size != st.size or h.hexdigest() != st.sha256:
                raise InvalidInput("the stream %s of version %d of copy pool %s changed since it was checked (%d "
                                   "bytes, sha256 %s; the inventory says %d, %s); nothing was made" % (
                                       path, version, self.name, size, h.hexdigest(), st.size, st.sha256))
            os.lseek(fd, 0, os.SEEK_SET)
            backend.receive_stream(definition, st.source, fd, volume)
        finally:
            os.close(fd)

    # --- verify_records -------------------------------------------------------------

    def _media_journal_plan(self, state, j, repair):
        """(action -> new state, description, findings) of a journal of a
        dump (its temporary names are media_leftover findings of their own)
        or of a restore from media (the volumes not made yet are made from
        the checked streams; one that exists is left as it is)."""
        backend = self._backend()

        def say(done):
            return done if repair else "none (repair: true would have %s)" % done

        if j.operation == JOURNAL_DUMP:
            what = "dropped the journal of the interrupted dump of version %d to %s (the inventory keeps what it " \
                   "had; its temporary files are removed; dump again to write the version)" % (j.version, j.medium)

            def finish_dump():
                new = replace(state, journal=None)
                self._save(new)
                return new

            return finish_dump, what, [Finding(RECORD_MEDIA, j.version, None, j.medium, "interrupted_dump",
                                               say(what))]
        dump = state.dump(j.medium, j.version)
        todo = [p for p in j.pairs if p.source not in j.done]
        what = "finished the restore of version %d from %s (made %s; left as they were: %s)" % (
            j.version, j.medium, ", ".join(j.aside_of(p.source) for p in todo) or "nothing",
            ", ".join(j.aside_of(s) for s in j.done) or "none")

        def finish_media_restore():
            backend.sweep_media_leftovers([a.target for a in j.asides])
            for p in todo:
                volume = j.aside_of(p.source)
                if backend.volume_exists(volume):
                    continue  # made before the kill (or someone's): never overwritten
                st = next((s for s in (dump.streams if dump else ()) if s.source == p.source), None)
                if st is None:
                    raise InvalidInput("cannot finish the restore of %s from %s: the inventory has no stream of "
                                       "version %d for it any more" % (p.source, j.medium, j.version))
                self._check_streams(j.medium, j.version, [st])
                self._receive(backend, state.definition, j.medium, j.version, st, volume)
            new = replace(state, journal=None)
            self._save(new)
            return new

        return finish_media_restore, what, [Finding(RECORD_MEDIA, j.version, None, j.medium,
                                                    "interrupted_restore_elsewhere", say(what))]

    def _verify_media(self, scan, verify_media):
        """The streams of the inventory (only that they exist with their size
        unless ``verify_media``: then every byte against its sha256), and the
        temporary files of killed dumps in every medium the inventory or
        the journal names. Returns those temporary files (repair removes
        them, and nothing else of a medium)."""
        state = scan.state
        for d in sorted(state.media, key=lambda d: (d.version, d.medium)):
            for st in d.streams:
                path = os.path.join(d.medium, st.stream)
                found = _media.stream_problem(path, st.size, st.sha256, verify_media)
                if found is None:
                    continue
                kind, why = found
                scan.findings.append(Finding(
                    RECORD_MEDIA, d.version, st.source, path, "media_%s" % kind,
                    "none (repair never deletes or rewrites a medium): %s; medium %s; dump a kept version again, "
                    "or drop the medium" % (why, d.medium)))
        media = sorted(set(d.medium for d in state.media))
        j = state.journal
        if j is not None and j.operation == JOURNAL_DUMP and j.medium not in media:
            media.append(j.medium)
        temps = []
        for medium in media:
            for path in _media.temp_leftovers(medium, self.name):
                temps.append(path)
                scan.findings.append(Finding(
                    RECORD_MEDIA, None, None, path, "media_leftover",
                    "removed" if scan.repair else "none (repair: true would remove it): a temporary file of a "
                    "dump of this pool that a killed run left"))
        if j is not None and j.operation == JOURNAL_RESTORE_ELSEWHERE and j.medium is not None:
            for path in self._backend().media_leftovers([a.target for a in j.asides]):
                scan.findings.append(Finding(
                    RECORD_MEDIA, j.version, None, path, "media_leftover",
                    "removed" if scan.repair else "none (repair: true would remove it): the work directory of a "
                    "receive from media that a killed run left"))
        return temps


def remove_media_temps(paths):
    """Unlink the temporary files of killed dumps (each matched TEMP_RE
    when it was found); a directory fsynced once."""
    dirs = set()
    for path in paths:
        if _media.TEMP_RE.match(os.path.basename(path)) and os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
            dirs.add(os.path.dirname(path))
    for d in sorted(dirs):
        _media.fsync_dir(d)
