# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_pool_info, copy_version, prepair_record
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import CLONE_POOL, SNAP_POOL, pair_list


def test_table_2_1_rotation(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(prepair_record, {"pool": "tab", "state": "absent"})
    v1 = clone_host.ok(copy_version, {"pool": "tab"})
    v2 = clone_host.ok(copy_version, {"pool": "tab"})
    v3 = clone_host.ok(copy_version, {"pool": "tab"})
    assert [v["version"]["number"] for v in (v1, v2, v3)] == [1, 2, 3]
    assert pair_list(v1["version"]) == [("vg/A", "vg/a"), ("vg/B", "vg/b")]
    assert pair_list(v2["version"]) == [("vg/A", "vg/c"), ("vg/B", "vg/d")]
    # Table 3.6: V3 reuses the pairs of V1, whose record it replaces.
    assert pair_list(v3["version"]) == pair_list(v1["version"])
    assert v3["version"]["target_pool"] == "01"
    assert v3["version"]["pre_copy_record"] == "replication"
    assert v3["replaced_version"] == 1
    assert v1["replaced_version"] is None
    assert v1["version"]["status"] == "valid"
    assert v1["broken_pairs"] == []
    assert "copy_window_ms" in v3


def test_prepairing_record_is_used(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(prepair_record, {"pool": "tab"})
    result = clone_host.ok(copy_version, {"pool": "tab"})
    assert result["version"]["pre_copy_record"] == "prepairing"


def test_check_mode_reports_without_copying(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(copy_version, {"pool": "tab"})
    clone_host.ok(copy_version, {"pool": "tab"})
    calls = list(clone_host.backend.calls)
    before = clone_host.snapshot()
    checked = clone_host.ok(copy_version, {"pool": "tab"}, check_mode=True, diff=True)
    assert checked["changed"] is True
    assert checked["version"]["number"] == 3
    assert checked["replaced_version"] == 1
    assert pair_list(checked["version"]) == [("vg/A", "vg/a"), ("vg/B", "vg/b")]
    assert clone_host.snapshot() == before
    assert clone_host.backend.calls == calls
    assert checked["diff"]["before"] != checked["diff"]["after"]


def test_label_makes_it_idempotent(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    first = snap_host.ok(copy_version, {"pool": "web", "label": "daily-2026-11-25"})
    assert first["changed"] is True
    assert first["version"]["label"] == "daily-2026-11-25"
    before = snap_host.snapshot()
    again = snap_host.ok(copy_version, {"pool": "web", "label": "daily-2026-11-25"})
    assert again["changed"] is False
    assert again["version"]["number"] == first["version"]["number"]
    assert snap_host.snapshot() == before
    checked = snap_host.ok(copy_version, {"pool": "web", "label": "daily-2026-11-25"}, check_mode=True)
    assert checked["changed"] is False


def test_broken_pairs_when_source_leaves(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(copy_version, {"pool": "tab"})
    clone_host.ok(copy_version, {"pool": "tab"})
    smaller = dict(CLONE_POOL, sources=["vg/A"])
    clone_host.ok(copy_pool, smaller)
    result = clone_host.ok(copy_version, {"pool": "tab"})
    assert pair_list(result["version"]) == [("vg/A", "vg/a")]
    assert [(p["source"], p["target"]) for p in result["broken_pairs"]] == [("vg/B", "vg/b")]


def test_delete_and_restore(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(copy_version, {"pool": "tab"})
    clone_host.backend.set_data("vg/A", "A@1")
    clone_host.backend.set_data("vg/B", "B@1")

    before = clone_host.snapshot()
    checked = clone_host.ok(copy_version, {"pool": "tab", "state": "restored", "version": 1,
                                           "volumes": ["vg/A"]}, check_mode=True)
    assert checked["changed"] is True
    assert clone_host.snapshot() == before

    clone_host.ok(copy_version, {"pool": "tab", "state": "restored", "version": 1, "volumes": ["vg/A"]})
    assert clone_host.backend.data["vg/A"] == "A@0"
    assert clone_host.backend.data["vg/B"] == "B@1"

    deleted = clone_host.ok(copy_version, {"pool": "tab", "state": "absent", "version": 1}, diff=True)
    assert deleted["changed"] is True
    assert clone_host.backend.copy_data("vg/a") is None
    again = clone_host.ok(copy_version, {"pool": "tab", "state": "absent", "version": 1})
    assert again["changed"] is False


def test_copy_failure_reports_command_and_keeps_versions(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(copy_version, {"pool": "tab"})
    clone_host.backend.fail_sources.add("vg/B")
    before = clone_host.snapshot()
    result = clone_host.fail(copy_version, {"pool": "tab"})
    assert "vg/B" in result["msg"]
    assert result["rc"] == 5
    assert "cannot copy vg/B" in result["stderr"]
    assert result["cmd"][0] == "memcopy"
    assert clone_host.snapshot() == before


@pytest.mark.parametrize(
    "args, words",
    [
        ({"pool": "tab", "state": "absent"}, ["version"]),
        ({"pool": "tab", "state": "restored"}, ["version"]),
        ({"pool": "tab", "version": 1}, ["version", "state=present"]),
        ({"pool": "tab", "state": "absent", "version": 0}, ["version", "0"]),
        ({"pool": "tab", "state": "absent", "version": "1.5"}, ["version"]),
        ({"pool": "tab", "volumes": ["vg/A"]}, ["volumes", "restored"]),
        ({"pool": "tab", "state": "frozen"}, ["state", "frozen"]),
        ({"pool": "tab", "label": "a\nb"}, ["label", "control character"]),
        ({"pool": "nope"}, ["nope"]),
        ({"pool": "tab", "state": "restored", "version": 9}, ["9"]),
        ({"pool": "tab", "state": "restored", "version": 1, "volumes": ["vg/Z"]}, ["vg/Z"]),
        # browsing and file restores (issue 17)
        ({"pool": "tab", "state": "mounted", "version": 1}, ["path"]),
        ({"pool": "tab", "state": "mounted", "path": "/mnt/x"}, ["version"]),
        ({"pool": "tab", "path": "/mnt/x"}, ["/mnt/x", "state=mounted"]),
        ({"pool": "tab", "state": "absent", "version": 1, "paths": ["a"]}, ["paths", "state=restored"]),
        # whole sources restored elsewhere: a technology that cannot, refused naming what can
        ({"pool": "tab", "state": "restored", "version": 1, "restore_to": "/srv/x"},
         ["'/srv/x'", "without paths", "not supported for technology", "btrfs_snapshot", "lvm_clone",
          "nothing was changed"]),
        ({"pool": "tab", "state": "restored", "version": 9, "restore_to": "/srv/x"}, ["no version 9"]),
        ({"pool": "tab", "state": "restored", "version": 1, "restore_to": "/srv/x", "volumes": ["vg/Z"]},
         ["vg/Z", "not a source"]),
        ({"pool": "tab", "state": "restored", "version": 1, "paths": []}, ["paths is empty"]),
        ({"pool": "tab", "state": "restored", "version": 1, "paths": ["../etc"]}, ["'../etc'", ".."]),
        ({"pool": "tab", "state": "restored", "version": 1, "paths": ["a\nb"]}, ["paths", "control character"]),
        # datasets (issue 17 item 1)
        ({"pool": "tab", "state": "restored", "version": 1, "paths": ["a"], "dataset": "db"},
         ["'db'", "not a dataset of copy pool tab", "none"]),
        ({"pool": "tab", "state": "restored", "version": 1, "dataset": "db"}, ["dataset db", "paths"]),
        ({"pool": "tab", "state": "mounted", "version": 1, "path": "/mnt/x", "dataset": "db"}, ["dataset db", "paths"]),
        # the memory host's technology has no files to browse
        ({"pool": "tab", "state": "mounted", "version": 1, "path": "/mnt/x"}, ["cannot mount"]),
        # media (issue 17 item 6): the arguments, then a technology that cannot dump, naming what can
        ({"pool": "tab", "state": "dumped", "version": 1}, ["media"]),
        ({"pool": "tab", "state": "dumped", "media": "/srv/m"}, ["version"]),
        ({"pool": "tab", "version": 1, "state": "absent", "media": "/srv/m"}, ["media", "state=dumped"]),
        ({"pool": "tab", "state": "dumped", "version": 1, "media": "/srv/m", "from_media": "/srv/m"},
         ["from_media", "state=restored"]),
        ({"pool": "tab", "state": "restored", "version": 1, "from_media": "/srv/m"}, ["needs restore_to"]),
        ({"pool": "tab", "state": "restored", "version": 1, "from_media": "/srv/m", "restore_to": "/srv/x",
          "paths": ["a"]}, ["whole sources", "paths"]),
        ({"pool": "tab", "state": "dumped", "version": 1, "media": "/srv/m\nx"}, ["media", "control character"]),
        ({"pool": "tab", "state": "dumped", "version": 1, "media": "/srv/m"},
         ["dumping a version to media is not supported for technology lvm_clone", "btrfs_snapshot, btrfs_send",
          "nothing was changed"]),
        ({"pool": "tab", "state": "restored", "version": 1, "from_media": "/srv/m", "restore_to": "/srv/x"},
         ["restoring from media is not supported for technology lvm_clone", "btrfs_snapshot, btrfs_send"]),
    ],
)
def test_bad_arguments(clone_host, args, words):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(copy_version, {"pool": "tab"})
    before = clone_host.snapshot()
    result = clone_host.fail(copy_version, args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert clone_host.snapshot() == before


def test_held_and_released_through_the_module(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web", "label": "pre-upgrade"})
    before = snap_host.snapshot()
    checked = snap_host.ok(copy_version, {"pool": "web", "state": "held", "label": "pre-upgrade", "reason": "upgrade"},
                           check_mode=True, diff=True)
    assert checked["changed"] is True and snap_host.snapshot() == before
    assert checked["diff"]["after"]["replication_records"][0]["hold_reason"] == "upgrade"
    held = snap_host.ok(copy_version, {"pool": "web", "state": "held", "label": "pre-upgrade", "reason": "upgrade"})
    assert held["changed"] is True and held["version"]["held"] is True and held["version"]["number"] == 1
    again = snap_host.ok(copy_version, {"pool": "web", "state": "held", "version": 1, "reason": "upgrade"})
    assert again["changed"] is False
    # once every target pool holds a version, the next copy would replace held version 1
    for dummy in range(SNAP_POOL["versions"] - 1):
        snap_host.ok(copy_version, {"pool": "web"})
    refused = snap_host.fail(copy_version, {"pool": "web"})
    assert "version 1 (label pre-upgrade) is held" in refused["msg"] and "upgrade" in refused["msg"]
    refused = snap_host.fail(copy_version, {"pool": "web", "state": "absent", "version": 1})
    assert "force" in refused["msg"]
    released = snap_host.ok(copy_version, {"pool": "web", "state": "released", "version": 1})
    assert released["changed"] is True and released["version"]["held"] is False
    assert snap_host.ok(copy_version, {"pool": "web"})["replaced_version"] == 1


@pytest.mark.parametrize("args, words", [
    ({"state": "held"}, ["version", "label"]),
    ({"state": "absent", "version": 1, "reason": "x"}, ["reason", "'x'", "state=held"]),
    ({"state": "held", "version": 1, "force": True}, ["force", "state=absent"]),
    ({"state": "held", "version": 9}, ["version 9", "no such version"]),
    ({"state": "released", "version": 1}, ["version 1", "not held"]),
])
def test_hold_bad_input(snap_host, args, words):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web"})
    before = snap_host.snapshot()
    result = snap_host.fail(copy_version, dict(args, pool="web"))
    assert all(w in result["msg"] for w in words), result["msg"]
    assert snap_host.snapshot() == before


def test_a_grid_pool_shows_in_check_and_diff_mode_which_versions_go(snap_host):
    # retention 1h: the first copy of this hour and the newest are kept (the
    # host's clock: if the hour turns between two copies, another version is
    # the hour's first, so the exact numbers are only asserted within one hour)
    snap_host.ok(copy_pool, dict(SNAP_POOL, retention="1h"))
    for dummy in range(3):
        snap_host.ok(copy_version, {"pool": "web"})
    before = snap_host.snapshot()
    checked = snap_host.ok(copy_version, {"pool": "web"}, check_mode=True, diff=True)
    assert snap_host.snapshot() == before
    after_versions = [r["version"] for r in checked["diff"]["after"]["replication_records"]]
    done = snap_host.ok(copy_version, {"pool": "web"})
    assert (done["replaced_version"], done["deleted_versions"]) == (checked["replaced_version"],
                                                                    checked["deleted_versions"])
    info = snap_host.ok(copy_pool_info, {"pool": "web"})["pools"][0]
    assert info["retention"] == "1h"
    kept = [r["version"] for r in info["replication_records"]]
    assert kept == after_versions
    if len(set(r["created"][:13] for r in info["replication_records"])) == 1:
        # version 2 went with the copy of version 3, so version 4 takes its
        # empty target pool and version 3 (neither first nor newest) goes
        assert kept == [1, 4] and done["replaced_version"] is None and done["deleted_versions"] == [3]
