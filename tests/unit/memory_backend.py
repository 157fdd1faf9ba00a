# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory Backend for unit tests of the engine and the modules.

Usage::

    from ansible_collections.pitcopy.versions.tests.unit.memory_backend import (
        MemoryBackend, FileBackend, SimpleWindow)

    be = MemoryBackend("lvm_clone")          # any technology of _model.TECHNOLOGIES
    be.add_volume("vg/A", size=1 << 30)      # kind defaults to be.default_kind
    be.add_volume("vg/a", size=1 << 30)      # technologies default to {be.technology}
    be.set_data("vg/A", "A@1")               # restore and copy tests compare data
    engine = RecordEngine(store, lambda tech: be, clock=..., window_factory=SimpleWindow)

Knobs:

* ``add_volume`` / ``remove_volume`` / ``resize`` / ``update_volume`` change
  the "host" between runs (sources and targets added and removed);
* ``fail_sources`` / ``fail_targets``: sets of names whose copy fails in
  ``take_point_in_time`` (CopyFailed; the engine's transaction then undoes
  what was staged, as for a real backend);
* ``capacity``: when not None, the most copies one version may make, else
  ``check_capacity`` raises CapacityError (exercises the refusal path);
* ``extra_target_kinds``: kinds accepted as targets besides the source's own
  (e.g. ``{"directory"}`` for ``btrfs_send``, ``{"new_dataset"}`` for
  ``zfs_send``), as a real backend's ``target_kinds`` says;
* ``definition_check``: optional callable(definition) run by
  ``validate_definition`` (raise InvalidInput to refuse a definition);
* ``step``: optional callable(name) called before and after every mutating
  call (``create:<source>``, ``promote``, ...); crash tests use it;
* ``calls``: the log of mutating calls, for asserting that check mode (a plan
  not applied) touched nothing.

Snapshot technologies (``lvm_snapshot``, ``lvm_thin``, ``zfs_snapshot``,
``btrfs_snapshot``) get ``implied_targets = True`` and targets named
``<source>@<pool>.<target pool>``; the copy is then a volume of its own.
Listed technologies copy onto the pre-existing target volume; their copies
are staged as separate entries and land on the target at ``promote``, so a
failed copy never costs a kept version.

``FileBackend(path, technology)`` is the same backend persisted to a JSON file
after every mutation (atomically), for tests that kill the process.

Helpers: ``FakeClock()`` (aware UTC, one minute per call) and
``make_engine(state_dir, backend)``, a RecordEngine on a real StateStore under
``state_dir`` with ``SimpleWindow`` as its copy window.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import uuid

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import Backend, CopyPlan
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CommandError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    SNAPSHOT_TECHNOLOGIES,
    CopyInfo,
    CopyPair,
    Volume,
)

DEFAULT_KINDS = {
    "lvm_snapshot": "lv",
    "lvm_thin": "thin_lv",
    "lvm_clone": "lv",
    "zfs_snapshot": "filesystem",
    "zfs_send": "filesystem",
    "btrfs_snapshot": "subvolume",
    "btrfs_send": "subvolume",
}

STAGE_SUFFIX = "~staged-v"
_BAD_CHARS = frozenset(" ;$`\n\t\\'\"")


class SimpleWindow:
    """A CopyWindow stand-in: no hooks, no freezing, a fixed window."""

    def __init__(self, definition=None, runner=None, clock=None):
        self.definition = definition
        self.window_ms = 0.0
        self.hooks = []
        self.opened = 0

    def open(self, freeze=()):
        window = self

        class _Ctx:
            def __enter__(self):
                window.opened += 1
                return window

            def __exit__(self, *exc):
                window.window_ms = 1.5
                return False

        return _Ctx()


class MemoryBackend(Backend):
    """All of the Backend interface, on dictionaries."""

    identifies_copies = True

    def __init__(self, technology="lvm_clone", runner=None):
        super(MemoryBackend, self).__init__(runner)
        self.technology = technology
        self.implied_targets = technology in SNAPSHOT_TECHNOLOGIES
        self.default_kind = DEFAULT_KINDS.get(technology, "lv")
        self.volumes = {}   # name -> Volume
        self.data = {}      # volume name -> str (what a source or copy holds)
        self.copies = {}    # name -> {pool, source, version, staged, valid, data}
        self.fail_sources = set()
        self.fail_targets = set()
        self.capacity = None
        self.extra_target_kinds = set()
        self.definition_check = None
        self.step = None
        self.calls = []

    # --- test knobs ------------------------------------------------------

    def add_volume(self, name, size=1 << 30, kind=None, block_size=512, technologies=None,
                   owner=None, foreign_data=False, container="vg", free=None):
        techs = frozenset(technologies) if technologies is not None else frozenset((self.technology,))
        self.volumes[name] = Volume(name=name, kind=kind or self.default_kind, size=size, block_size=block_size,
                                    technologies=techs, container=container, free=free, owner=owner,
                                    foreign_data=foreign_data)
        self._persist()
        return self.volumes[name]

    def update_volume(self, name, **changes):
        vol = self.volumes[name]
        fields = dict(vol.__dict__)
        fields.update(changes)
        self.volumes[name] = Volume(**fields)
        self._persist()

    def resize(self, name, size):
        self.update_volume(name, size=size)

    def remove_volume(self, name):
        self.volumes.pop(name, None)
        self.copies.pop(name, None)
        self.data.pop(name, None)
        self._persist()

    def set_data(self, name, data):
        self.data[name] = data
        self._persist()

    def copy_data(self, target):
        """The data of the (promoted) copy on ``target``, or None."""
        info = self.copies.get(target)
        return None if info is None else info["data"]

    def invalidate(self, target):
        self.copies[target]["valid"] = False
        self._persist()

    def _persist(self):
        """Hook for FileBackend."""

    def _step(self, name):
        if self.step is not None:
            self.step(name)

    def _log(self, *call):
        self.calls.append(call)

    # --- discovery -------------------------------------------------------

    def discover(self, names):
        for name in names:
            self.validate_target_name(name)
        return {n: self.volumes[n] for n in names if n in self.volumes}

    def validate_source_name(self, name):
        if not isinstance(name, str) or not name or name != name.strip() or not _BAD_CHARS.isdisjoint(name) \
                or name.startswith("-") or ".." in name.split("/"):
            raise InvalidInput("%r is not a volume name: use vg/lv style names without spaces, quotes, "
                               "shell characters, '..' or a leading '-'" % (name,))

    validate_target_name = validate_source_name

    def source_kinds(self):
        return frozenset((self.default_kind, "volume")) if self.technology.startswith("zfs") else frozenset()

    def target_kinds(self, source_kind):
        return frozenset((source_kind,)) | frozenset(self.extra_target_kinds)

    def validate_definition(self, definition):
        if self.definition_check is not None:
            self.definition_check(definition)

    def implied_target(self, pool, target_pool, source):
        return "%s@%s.%s" % (source, pool, target_pool)

    # --- capacity ---------------------------------------------------------

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        if self.capacity is not None and len(pairs) > self.capacity:
            raise CapacityError("copy pool %s needs %d copies for the next version but the memory backend "
                                "has room for %s" % (definition.name, len(pairs), self.capacity))

    # --- copies -------------------------------------------------------------

    def _mark(self, target, pool):
        vol = self.volumes.get(target)
        if vol is not None and not self.implied_targets:
            self.volumes[target] = Volume(**dict(vol.__dict__, owner=pool))

    def _ours(self, name, pool, identity=None):
        info = self.copies.get(name)
        if info is None or info["pool"] != pool:
            return False
        # a copy that is not the one the record names is not ours
        return not (identity and info.get("id") and info["id"] != identity)

    def plan_copies(self, definition, version, pairs):
        staging = [CopyPair(p.source, "%s%s%d" % (p.target, STAGE_SUFFIX, version)) for p in pairs]
        return CopyPlan(definition, version, pairs, staging=staging,
                        commands=[["memcopy", p.source, st.target] for p, st in zip(pairs, staging)],
                        marks={"pool": definition.name, "version": version})

    def take_point_in_time(self, plan):
        definition, version = plan.definition, plan.version
        self._log("take_point_in_time", version, tuple(plan.pairs))
        for pair, st in zip(plan.pairs, plan.staging):
            self._step("create:%s" % pair.source)
            if pair.source in self.fail_sources or pair.target in self.fail_targets or (
                    pair.source not in self.volumes):
                cause = CommandError("memcopy failed with exit status 5: cannot copy %s" % pair.source,
                                     argv=["memcopy", pair.source, pair.target], rc=5,
                                     stderr="cannot copy %s\n" % pair.source)
                raise CopyFailed("copy of %s to %s for version %d of pool %s failed: %s" % (
                    pair.source, pair.target, version, definition.name, cause.msg),
                    cause=cause, source=pair.source, target=pair.target)
            ident = "mem-%s" % uuid.uuid4().hex[:12]
            self.copies[st.target] = {"pool": definition.name, "source": pair.source, "version": version,
                                      "staged": True, "valid": True, "data": self.data.get(pair.source),
                                      "id": ident}
            plan.made.append(CopyPair(pair.source, st.target, ident))
            self._persist()

    def transfer(self, plan):
        plan.staged = list(plan.made)

    def undo(self, plan):
        # not logged: a failed copy leaves nothing, as a real backend must
        for st in plan.made:
            self.copies.pop(st.target, None)
        self._persist()

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        self._log("promote", version, tuple(pairs), tuple(staged), tuple(replaced_pairs))
        self._step("promote")
        for pair in replaced_pairs:
            info = self.copies.get(pair.target)
            if self._ours(pair.target, definition.name, pair.identity) and info["version"] != version:
                self._drop(pair.target)
        final = {p.source: p.target for p in pairs}
        for st in staged:
            self._step("promote:%s" % st.source)
            info = self.copies.get(st.target)
            target = final[st.source]
            if info is None:
                # promoted by an earlier, interrupted call, which may have
                # died after its rename and before clearing the staged mark
                # (LVM: lvrename, then lvchange --deltag): finish that
                done = self.copies.get(target)
                if done is not None and done["pool"] == definition.name and done["version"] == version \
                        and done["staged"]:
                    self.copies[target] = dict(done, staged=False)
                    self._persist()
                continue
            old = self.copies.get(target)
            if old is not None and old["pool"] == definition.name and old["version"] != version:
                self._drop(target)
            info = dict(info, staged=False)
            del self.copies[st.target]
            self.copies[target] = info
            if self.implied_targets:
                src = self.volumes.get(st.source)
                self.volumes[target] = Volume(name=target, kind=src.kind if src else self.default_kind,
                                              size=src.size if src else 0, block_size=src.block_size if src else 0,
                                              technologies=frozenset((self.technology,)), owner=definition.name)
            else:
                self._mark(target, definition.name)
            self._persist()

    def _drop(self, name):
        if (self.copies.get(name) or {}).get("held"):
            raise CommandError("memdestroy failed with exit status 1: %s is held" % name,
                               argv=["memdestroy", name], rc=1, stderr="%s: dataset is busy\n" % name)
        self.copies.pop(name, None)
        if self.implied_targets:
            self.volumes.pop(name, None)
        else:
            vol = self.volumes.get(name)
            if vol is not None:
                self.volumes[name] = Volume(**dict(vol.__dict__, owner=None))
        self._persist()

    def discard(self, definition, staged):
        self._log("discard", tuple(staged))
        self._step("discard")
        for st in staged:
            info = self.copies.get(st.target)
            if info is not None and info["pool"] == definition.name and info["staged"]:
                del self.copies[st.target]
        self._persist()

    def delete_copies(self, definition, pairs):
        self._log("delete_copies", tuple(pairs))
        self._step("delete_copies")
        for pair in pairs:
            if self._ours(pair.target, definition.name, pair.identity):
                self._drop(pair.target)

    def hold_copies(self, definition, version, pairs, held=True):
        # like ``zfs hold``: a held copy refuses deletion (delete_copies,
        # promote) until released
        self._log("hold_copies", version, tuple(pairs), held)
        self._step("hold_copies")
        for pair in pairs:
            if self._ours(pair.target, definition.name, pair.identity):
                self.copies[pair.target]["held"] = bool(held)
        self._persist()

    def unenforced_holds(self, definition, version, pairs):
        return [(p, "%s is not held on the storage" % p.target) for p in pairs
                if self._ours(p.target, definition.name, p.identity) and not self.copies[p.target].get("held")]

    def list_copies(self, pool_name, scope=None):
        # with a scope, like a real backend, only copies beside the places it
        # names: a source, a target, a staged copy (the engine must pass
        # every place its definition, records and journal know)
        out = []
        for name in sorted(self.copies):
            info = self.copies[name]
            if scope is not None and not (info["source"] in scope.sources or name in scope.staged
                                          or name.split(STAGE_SUFFIX)[0] in scope.targets):
                continue
            if info["pool"] == pool_name:
                out.append(CopyInfo(target=name, pool=pool_name, source=info["source"], version=info["version"],
                                    staged=info["staged"], valid=info["valid"], identity=info.get("id")))
        return out

    def restore_differs(self, definition, version, pairs):
        return [p.source for p in pairs if self.data.get(p.source) != (self.copies.get(p.target) or {}).get("data")]

    def restore(self, definition, version, pairs):
        self._log("restore", version, tuple(pairs))
        for pair in pairs:
            info = self.copies.get(pair.target)
            if not self._ours(pair.target, definition.name, pair.identity) or info["version"] != version:
                raise InvalidInput("the copy of %s on %s for version %d does not exist; nothing was restored"
                                   % (pair.source, pair.target, version))
        for pair in pairs:
            self.data[pair.source] = self.copies[pair.target]["data"]
        self._persist()


class FileBackend(MemoryBackend):
    """MemoryBackend whose host lives in a JSON file, written atomically after
    every mutation, so a test can SIGKILL the process and look at the host."""

    def __init__(self, path, technology="lvm_clone", runner=None):
        self.path = path
        self._loading = True
        super(FileBackend, self).__init__(technology, runner)
        if os.path.exists(path):
            with open(path) as f:
                doc = json.load(f)
            for v in doc["volumes"]:
                v["technologies"] = frozenset(v["technologies"])
                self.volumes[v["name"]] = Volume(**v)
            self.data = doc["data"]
            self.copies = doc["copies"]
            self.fail_sources = set(doc.get("fail_sources", ()))
        self._loading = False

    def _persist(self):
        if getattr(self, "_loading", True):
            return
        vols = []
        for v in self.volumes.values():
            d = dict(v.__dict__)
            d["technologies"] = sorted(d["technologies"])
            vols.append(d)
        doc = {"volumes": vols, "data": self.data, "copies": self.copies, "fail_sources": sorted(self.fail_sources)}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)


class FakeClock:
    """An aware-UTC clock that moves one minute per call (deterministic times)."""

    def __init__(self, start=None, step_seconds=60):
        from datetime import datetime, timedelta, timezone
        self._now = start or datetime(2026, 11, 25, 0, 0, 0, tzinfo=timezone.utc)
        self._step = timedelta(seconds=step_seconds)

    def __call__(self):
        now = self._now
        self._now = now + self._step
        return now


class SetClock:
    """A clock the test sets (``clock.now = ...``); it starts at ``start``."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


def make_engine(state_dir, backend, clock=None, window_factory=SimpleWindow):
    """A RecordEngine on a real StateStore under ``state_dir`` (absolute,
    created 0700 by the store) driving ``backend`` for every technology."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
    from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
    return RecordEngine(StateStore(str(state_dir), lock_timeout=5), lambda technology: backend,
                        clock=clock or FakeClock(), window_factory=window_factory)
