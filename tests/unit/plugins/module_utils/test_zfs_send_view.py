# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a zfs_send copy is read for browsing and file restores (issue 17):
the copy's received snapshot, through the copy's ``.zfs/snapshot`` when it
is mounted; a copy that is not the recorded, unwritten one, a zvol's copy
and an encrypted copy without its key are refused before anything is
mounted, reading only. On the zfs command replay of test_zfs_identity.py;
the real-tool proof is tests/real/test_zfs.py
(test_zfs_send_browse_and_file_restore)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._browse import VIEW_ZFS, CopyView
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.test_zfs_identity import ZfsReplay

TARGET = "t/A/db"
SNAP = TARGET + "@pitcopy-sb-v1"
DEFINITION = PoolDefinition(name="sb", technology="zfs_send", sources=("s/db",), versions=1,
                            target_pools=(TargetPool("A", (TARGET,)),))


def _world(tmp_path, **target_props):
    """A received copy of s/db, version 1, mounted under ``tmp_path``."""
    z = ZfsReplay()
    z.add("s/db")
    guid = z.add(TARGET, {"pitcopy:pool": "sb", "pitcopy:version": "1", "pitcopy:source": "s/db"})
    z.add(SNAP)
    row = z.objs[TARGET]
    row.update({"mounted": ("yes", "-"), "mountpoint": (str(tmp_path / "A" / "db"), "default"),
                "keystatus": ("-", "-"), "encryptionroot": ("-", "-")})
    row.update(dict((k, (v, "-")) for k, v in target_props.items()))
    return z, CopyPair("s/db", TARGET, identity=guid)


def test_the_received_snapshot_is_read_through_the_mounted_copy(tmp_path):
    z, pair = _world(tmp_path)
    snapdir = tmp_path / "A" / "db" / ".zfs" / "snapshot" / "pitcopy-sb-v1"
    assert ZfsSendBackend(runner=z).copy_view(DEFINITION, 1, pair) == CopyView(VIEW_ZFS, SNAP, None)
    os.makedirs(str(snapdir))
    assert ZfsSendBackend(runner=z).copy_view(DEFINITION, 1, pair) == CopyView(VIEW_ZFS, SNAP, str(snapdir))
    z.objs[TARGET]["mounted"] = ("no", "-")
    assert ZfsSendBackend(runner=z).copy_view(DEFINITION, 1, pair) == CopyView(VIEW_ZFS, SNAP, None)
    assert all(c[1] == "get" for c in z.calls), z.calls


@pytest.mark.parametrize("case, words", [
    ("written", ["t/A/db was written to after it was received"]),
    ("snapshot_gone", ["its received snapshot t/A/db@pitcopy-sb-v1 is missing"]),
    ("other_version", ["t/A/db is not version 1 of copy pool sb"]),
    ("other_copy", ["t/A/db is not the copy the record names"]),
    ("zvol", ["t/A/db is not a ZFS filesystem", "zvol"]),
    ("no_key", ["t/A/db is encrypted and its key is not loaded", "zfs load-key t/A"]),
])
def test_a_copy_that_cannot_be_read_is_refused_reading_only(tmp_path, case, words):
    z, pair = _world(tmp_path)
    row = z.objs[TARGET]
    if case == "written":
        row["written"] = ("4096", "-")
    elif case == "snapshot_gone":
        del z.objs[SNAP]
    elif case == "other_version":
        row["pitcopy:version"] = ("2", "local")
    elif case == "other_copy":
        pair = CopyPair(pair.source, pair.target, identity="12345")
    elif case == "zvol":
        row["type"] = ("volume", "-")
    elif case == "no_key":
        row.update({"keystatus": ("unavailable", "-"), "encryptionroot": ("t/A", "-")})
    with pytest.raises(InvalidInput) as exc:
        ZfsSendBackend(runner=z).copy_view(DEFINITION, 1, pair)
    msg = exc.value.msg
    assert msg.startswith("copy pool sb: cannot read version 1 of s/db from %s: " % SNAP), msg
    assert all(w in msg for w in words) and "nothing was changed" in msg, msg
    assert all(c[1] == "get" for c in z.calls), z.calls
