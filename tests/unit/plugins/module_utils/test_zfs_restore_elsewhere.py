# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole sources restored elsewhere on ZFS (copy_version state=restored,
restore_to without paths): the rules for restore_to, the new dataset's
marks, and a run killed before each of its zfs commands, finished by what
verify_records repair=true calls (restore_elsewhere again), against the
small model of the zfs commands in test_zfs_restore_resume. The proof on
real ZFS is tests/real/test_zfs_restore_elsewhere.py in the ZFS guest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.test_zfs_restore_resume import (
    COPY,
    DEF,
    PAIR,
    POOL,
    SOURCE,
    ZfsModel,
    killed_at,
    steps_of,
)

RESTORE_TO = "tank/restored"
NEW = RESTORE_TO + "/db"
SENT = COPY + "@pitcopy-P-v1"


class Model(ZfsModel):
    """The model, plus ``zfs destroy -r``."""

    def run(self, argv, data=None, check=True):
        argv = [str(a) for a in argv]
        if argv[:3] == ["zfs", "destroy", "-r"]:
            self._step(" ".join(argv[1:]))
            name = argv[-1]
            for n in [x for x in list(self.fs) + list(self.snaps)
                      if x == name or x.startswith(name + "/") or x.startswith(name + "@")]:
                self.fs.pop(n, None)
                self.snaps.pop(n, None)
            return 0, "", ""
        return super(Model, self).run(argv, data=data, check=check)


def model():
    z = Model()
    z.fs["tank"] = {"props": {}, "mounted": True, "data": ""}
    z.fs["backup"] = {"props": {}, "mounted": True, "data": ""}
    z.fs["backup/A"] = {"props": {}, "mounted": True, "data": ""}
    z.fs[SOURCE] = {"props": {}, "mounted": True, "data": "live"}
    z.fs[COPY] = {"props": {"pitcopy:pool": POOL, "pitcopy:version": "1", "pitcopy:source": SOURCE,
                            "readonly": "on"}, "mounted": True, "data": "v1"}
    z.snaps[SENT] = {"props": {}, "data": "v1"}
    z.fs[RESTORE_TO] = {"props": {}, "mounted": True, "data": ""}
    return z


def guid(z, name):
    return z._rows(name, ["guid"], None)[0].split("\t")[2]


def restored(z, new=NEW, data="v1"):
    """A finished restore: the copy's data in a new mounted dataset carrying
    only restored_from, no snapshot below it; the copy as it was."""
    assert z.fs[new]["data"] == data and z.fs[new]["mounted"], z.fs[new]
    assert z.fs[new]["props"] == {"pitcopy:restored_from": guid(z, SENT)}, z.fs[new]["props"]
    assert not [s for s in z.snaps if s.startswith(new + "@")]
    assert z.fs[SOURCE]["data"] == "live" and z.fs[COPY]["data"] == "v1" and SENT in z.snaps


def test_a_whole_source_becomes_a_new_dataset_beside_production():
    z = model()
    b = ZfsSendBackend(runner=z)
    assert b.restore_elsewhere_volumes(DEF, 1, [PAIR], RESTORE_TO) == [(PAIR, NEW)]
    assert b.restored_elsewhere(DEF, 1, PAIR, NEW) is None
    b.restore_elsewhere(DEF, 1, PAIR, NEW)
    restored(z)
    # a full receive, never a clone; our two marks set by the receive itself
    recv = [x for x in z.log if x.startswith("send ")]
    assert recv == ["send %s | receive %s" % (SENT, NEW)]
    assert b.restored_elsewhere(DEF, 1, PAIR, NEW) is True
    z.log[:] = []
    b.restore_elsewhere(DEF, 1, PAIR, NEW)  # again: nothing
    assert z.log == []


def _restore_elsewhere(z):
    ZfsSendBackend(runner=z).restore_elsewhere(DEF, 1, PAIR, NEW)


@pytest.mark.parametrize("kill_at", range(1, len(steps_of(model, _restore_elsewhere)) + 1))
def test_a_run_killed_before_each_command_is_finished_in_one_try(kill_at):
    z = killed_at(model, _restore_elsewhere, kill_at)
    b = ZfsSendBackend(runner=z)
    # what plan_restore_elsewhere asks: made again, never "somebody's"
    assert b.restored_elsewhere(DEF, 1, PAIR, NEW) is None
    b.restore_elsewhere(DEF, 1, PAIR, NEW)  # what verify_records repair calls
    restored(z)


def test_zfs_snapshot_sends_the_copy_itself():
    z = model()
    snap = SOURCE + "@pitcopy-S-01"
    z.snaps[snap] = {"props": {"pitcopy:pool": "S", "pitcopy:version": "3"}, "data": "v3"}
    d = PoolDefinition("S", "zfs_snapshot", (SOURCE,), 2)
    pair = CopyPair(SOURCE, snap, guid(z, snap))
    b = ZfsSnapshotBackend(runner=z)
    assert b.restore_elsewhere_volumes(d, 3, [pair], RESTORE_TO) == [(pair, NEW)]
    b.restore_elsewhere(d, 3, pair, NEW)
    assert z.fs[NEW]["data"] == "v3" and z.fs[NEW]["props"] == {"pitcopy:restored_from": guid(z, snap)}
    assert not [s for s in z.snaps if s.startswith(NEW + "@")] and snap in z.snaps
    # the copy of another version, or one taken again under its name: refused, nothing made
    for version, p, why in [(2, pair, "holds version 3"),
                            (3, CopyPair(SOURCE, snap, "999"), "is not the copy recorded")]:
        with pytest.raises(InvalidInput) as exc:
            b.restore_elsewhere_volumes(d, version, [p], RESTORE_TO)
        assert why in exc.value.msg and "nothing was changed" in exc.value.msg, exc.value.msg


def test_sources_sharing_a_last_component_use_their_whole_name():
    z = model()
    second = CopyPair("tank/web/db", "backup/A/db2")
    d = PoolDefinition(POOL, "zfs_send", (SOURCE, "tank/web/db"), 1, (TargetPool("A", (COPY, "backup/A/db2")),))
    z.fs["tank/web"] = {"props": {}, "mounted": True, "data": ""}
    z.fs["tank/web/db"] = {"props": {}, "mounted": True, "data": "live2"}
    z.fs["backup/A/db2"] = {"props": {"pitcopy:pool": POOL, "pitcopy:version": "1"}, "mounted": True, "data": "w"}
    z.snaps["backup/A/db2@pitcopy-P-v1"] = {"props": {}, "data": "w"}
    got = ZfsSendBackend(runner=z).restore_elsewhere_volumes(d, 1, [PAIR, second], RESTORE_TO)
    assert got == [(PAIR, RESTORE_TO + "/tank_db"), (second, RESTORE_TO + "/tank_web_db")]


@pytest.mark.parametrize("restore_to, why", [
    ("/srv/compare", "is a path, not a dataset name"),
    ("", "is empty"),
    ("tank/a b", "is not a dataset name"),
    ("tank/x@snap", "is not a dataset name"),
    ("tank/missing", "does not exist (create it with zfs create"),
    ("tank/vol", "is a zvol, not a filesystem"),
    (SOURCE, "is source %s of the pool itself" % SOURCE),
    (SOURCE + "/below", "is inside source %s" % SOURCE),
    (SOURCE + ".pitcopy-restore", "is inside a dataset pitcopy makes beside source %s" % SOURCE),
    (COPY + "/x", "is inside target %s" % COPY),
    ("tank", "makes %s for %s, which is a source of the pool" % (SOURCE, SOURCE)),
    ("backup/A", "makes %s for %s, which is a target of the pool" % (COPY, SOURCE)),
])
def test_bad_restore_to_is_refused_naming_it_and_what_is_accepted(restore_to, why):
    z = model()
    z.fs["tank/vol"] = {"props": {"type": "volume"}, "mounted": False, "data": ""}
    z.fs["backup/A/db"]["props"]  # the target exists
    before = (dict(z.fs), dict(z.snaps))
    with pytest.raises(InvalidInput) as exc:
        ZfsSendBackend(runner=z).restore_elsewhere_volumes(DEF, 1, [PAIR], restore_to)
    msg = exc.value.msg
    assert repr(restore_to) in msg and why in msg and "accepted: the name of an existing ZFS filesystem" in msg, msg
    assert "nothing was changed" in msg and (z.fs, z.snaps) == before and z.log == []


def test_somebodys_dataset_at_the_name_is_refused_and_left_as_it_is():
    z = model()
    z.fs[NEW] = {"props": {}, "mounted": True, "data": "theirs"}
    b = ZfsSendBackend(runner=z)
    found = b.restored_elsewhere(DEF, 1, PAIR, NEW)
    assert found.startswith("%s exists and was not made from the copy %s of version 1" % (NEW, COPY)), found
    # ours but finished from another snapshot: somebody's too (never destroyed)
    z.fs[NEW]["props"] = {"pitcopy:restored_from": "1", "pitcopy:restoring": "1"}
    with pytest.raises(InvalidInput) as exc:
        b.restore_elsewhere(DEF, 1, PAIR, NEW)
    assert "it was left as it is" in exc.value.msg and NEW in exc.value.msg
    assert z.fs[NEW]["data"] == "theirs" and z.log == []


def test_an_unfinished_one_holding_more_than_the_receive_made_is_left_alone():
    z = model()
    g = guid(z, SENT)
    z.fs[NEW] = {"props": {"pitcopy:restored_from": g, "pitcopy:restoring": g}, "mounted": False, "data": "v1"}
    z.snaps[NEW + "@mine"] = {"props": {}, "data": "user's"}
    with pytest.raises(InvalidInput) as exc:
        ZfsSendBackend(runner=z).restore_elsewhere(DEF, 1, PAIR, NEW)
    assert NEW + "@mine" in exc.value.msg and "left as it is" in exc.value.msg
    assert NEW in z.fs and z.log == []
