# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media through the modules (issue 17 item 6): copy_version state=dumped
and from_media, copy_pool_info media, verify_records verify_media, on the
memory host whose copies' streams are their data (test_media.MediaBackend)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_pool_info, copy_version, verify_records
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.test_media import MediaBackend
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import SNAP_POOL


def _media_host(snap_host, tmp_path):
    snap_host.backend.__class__ = MediaBackend  # the same host, with streams
    for s in SNAP_POOL["sources"]:
        snap_host.backend.set_data(s, "%s@1" % os.path.basename(s))
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web"})
    medium = tmp_path / "tape"
    medium.mkdir(mode=0o700)
    return str(medium)


def test_dump_verify_and_restore_through_the_modules(snap_host, tmp_path):
    medium = _media_host(snap_host, tmp_path)
    args = {"pool": "web", "state": "dumped", "version": 1, "media": medium}
    before = snap_host.snapshot()
    checked = snap_host.ok(copy_version, args, check_mode=True, diff=True)
    assert checked["changed"] is True and len(checked["written"]) == 2 and checked["dump"] is None
    assert checked["diff"]["before"]["media"] == [] and len(checked["diff"]["after"]["media"]) == 1
    assert snap_host.snapshot() == before and os.listdir(medium) == []
    done = snap_host.ok(copy_version, args)
    assert done["changed"] is True and done["medium"] == medium and len(done["dump"]["streams"]) == 2
    assert snap_host.ok(copy_version, args)["changed"] is False
    info = snap_host.ok(copy_pool_info, {"pool": "web"})
    assert info["pools"][0]["media"] == [done["dump"]]
    assert snap_host.ok(verify_records, {"pool": "web", "verify_media": True})["consistent"] is True

    stream = os.path.join(medium, done["dump"]["streams"][0]["stream"])
    with open(stream, "r+b") as fh:
        fh.write(b"#")
    found = snap_host.ok(verify_records, {"pool": "web", "verify_media": True})
    assert [f["problem"] for f in found["findings"]] == ["media_corrupt"]
    assert found["findings"][0]["record"] == "media" and found["findings"][0]["target"] == stream
    out = tmp_path / "out"
    out.mkdir()
    refused = snap_host.fail(copy_version, {"pool": "web", "state": "restored", "version": 1, "from_media": medium,
                                            "restore_to": str(out)})
    assert "cannot be restored, nothing was made" in refused["msg"] and os.listdir(str(out)) == []
    restored = snap_host.ok(copy_version, {"pool": "web", "state": "restored", "version": 1, "from_media": medium,
                                           "restore_to": str(out), "volumes": ["/srv/data/www"]})
    assert restored["restored_to"] == [{"source": "/srv/data/www", "volume": str(out / "www")}]
    assert (out / "www").read_text() == "www@1"


def test_media_bad_input_through_the_module(snap_host, tmp_path):
    medium = _media_host(snap_host, tmp_path)
    before = snap_host.snapshot()
    for media, words in [("tape", ["'tape'", "is not an absolute path", "accepted"]),
                         (str(tmp_path / "nope"), ["does not exist"]),
                         ("/", ["root directory"])]:
        result = snap_host.fail(copy_version, {"pool": "web", "state": "dumped", "version": 1, "media": media})
        assert all(w in result["msg"] for w in words), result["msg"]
    result = snap_host.fail(copy_version, {"pool": "web", "state": "dumped", "version": 7, "media": medium})
    assert "has no version 7 to dump" in result["msg"]
    result = snap_host.fail(copy_version, {"pool": "web", "state": "restored", "version": 1, "from_media": medium,
                                           "restore_to": str(tmp_path)})
    assert "has no dump of version 1 on medium %s" % medium in result["msg"]
    assert snap_host.snapshot() == before and os.listdir(medium) == []
