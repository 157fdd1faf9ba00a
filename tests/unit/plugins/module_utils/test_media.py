# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media (issue 17 item 6): copy_version state=dumped, the storage media
inventory in the state file, verify_records verify_media, and the restore
from media, against the in-memory host (a stream is the copy's data). The
btrfs tools are proven in tests/real/test_btrfs_media.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import stat

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _media
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, PitcopyError, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    MediaDump,
    MediaStream,
    PoolDefinition,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine


class MediaBackend(MemoryBackend):
    """The memory host with streams: a copy's stream is its data; a stream
    received becomes a file at the volume's path holding it."""

    stream_extension = "btrfs-stream"

    def dump_stream(self, definition, version, pair, write):
        self._log("dump_stream", version, pair.source)
        data = (self.copies[pair.target]["data"] or "").encode()
        write(data[:3])
        if getattr(self, "die_in_dump", False):
            raise KeyboardInterrupt("killed mid-dump")
        write(data[3:])

    def media_volumes(self, definition, sources, restore_to):
        if not os.path.isabs(restore_to):
            raise InvalidInput("restore_to %r is not absolute" % restore_to)
        return [(s, os.path.join(restore_to, os.path.basename(s))) for s in sources]

    def receive_stream(self, definition, source, fd, volume):
        self._log("receive_stream", source, volume)
        data = b""
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
        with open(volume, "wb") as f:
            f.write(data)


def _env(tmp_path, technology="btrfs_snapshot", backend=MediaBackend):
    be = backend(technology)
    src = tmp_path / "src"
    src.mkdir()
    sources = []
    for n in ("A", "B"):
        (src / n).mkdir()
        sources.append(str(src / n))
        be.add_volume(str(src / n))
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition(name="P", technology=technology, sources=tuple(sources), versions=2)
    with engine.session("P") as s:
        s.plan_define(d).apply()
    medium = tmp_path / "medium"
    medium.mkdir(mode=0o700)
    return engine, be, sources, str(medium)


def _copy(engine, be, sources, tag):
    for s in sources:
        be.set_data(s, "%s@%s" % (os.path.basename(s), tag))
    with engine.session("P") as s:
        return s.plan_copy().apply()


def _dump(engine, version, medium, apply=True):
    with engine.session("P") as s:
        plan = s.plan_dump(version, medium)
        return plan, (plan.apply() if apply else None)


def test_dump_writes_each_stream_atomically_with_its_checksum_and_inventory(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    plan, result = _dump(engine, 1, medium)
    assert plan.changed
    dump = result["dump"]
    assert dump["medium"] == medium and dump["version"] == 1 and dump["dumped"]
    assert [st["source"] for st in dump["streams"]] == sources
    for st in dump["streams"]:
        path = os.path.join(medium, st["stream"])
        data = open(path, "rb").read()
        assert st["stream"].startswith("P/v1/") and st["stream"].endswith(".btrfs-stream")
        assert data == ("%s@v1" % os.path.basename(st["source"])).encode()
        assert st["size"] == len(data) and st["sha256"] == hashlib.sha256(data).hexdigest()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # nothing but the streams: no temporary name left
    assert sorted(os.listdir(os.path.join(medium, "P", "v1"))) == sorted(
        os.path.basename(st["stream"]) for st in dump["streams"])
    with engine.session("P") as s:
        info = s.info()
        assert info["media"] == [dump]
        assert info["media"][0]["version_time"] == s.state.replication(1).created
        assert s.state.journal is None


def test_dump_again_is_no_change_and_check_mode_writes_nothing(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    plan, dummy = _dump(engine, 1, medium, apply=False)
    assert plan.changed and [w["source"] for w in plan.result["written"]] == sources
    assert not os.listdir(medium)  # check mode: a plan not applied writes nothing
    _dump(engine, 1, medium)
    calls = len(be.calls)
    plan, dummy = _dump(engine, 1, medium, apply=False)
    assert not plan.changed and plan.result["written"] == [] and plan.before == plan.after
    assert len(be.calls) == calls


def test_a_damaged_stream_is_written_again(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    dummy, result = _dump(engine, 1, medium)
    first = os.path.join(medium, result["dump"]["streams"][0]["stream"])
    with open(first, "r+b") as f:
        f.write(b"X")
    plan, result2 = _dump(engine, 1, medium)
    assert plan.changed and [w["source"] for w in plan.result["written"]] == [sources[0]]
    assert result2["dump"]["streams"] == result["dump"]["streams"]


def test_the_inventory_survives_rotation_and_delete(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    _dump(engine, 1, medium)
    for tag in ("v2", "v3"):
        _copy(engine, be, sources, tag)
    with engine.session("P") as s:
        assert s.state.replication(1) is None  # rotated away
        s.plan_delete(2).apply()
    with engine.session("P") as s:
        assert [d["version"] for d in s.info()["media"]] == [1]
    assert len(_media.temp_leftovers(medium, "P")) == 0
    assert len(os.listdir(os.path.join(medium, "P", "v1"))) == 2


def test_restore_from_media_after_the_copies_are_gone(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    _dump(engine, 1, medium)
    for tag in ("v2", "v3"):
        _copy(engine, be, sources, tag)
    out = tmp_path / "restored"
    out.mkdir()
    with engine.session("P") as s:
        assert s.state.replication(1) is None
        plan = s.plan_restore_from_media(1, medium, str(out))
        assert plan.changed and not os.listdir(str(out))  # check mode made nothing
        result = plan.apply()
        assert s.state.journal is None
    assert result["restored_to"] == [{"source": x, "volume": str(out / os.path.basename(x))} for x in sources]
    for x in sources:
        assert (out / os.path.basename(x)).read_text() == "%s@v1" % os.path.basename(x)
    # never overwrites: a second run is refused, nothing changed
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="exists; a restore never overwrites"):
            s.plan_restore_from_media(1, medium, str(out))


def test_a_corrupted_stream_is_found_and_refused_nothing_made(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    dummy, result = _dump(engine, 1, medium)
    path = os.path.join(medium, result["dump"]["streams"][1]["stream"])
    with open(path, "r+b") as f:
        f.write(b"Z")  # same size, another checksum
    with engine.session("P", shared=True) as s:
        cheap = s.plan_verify().result
        assert cheap["consistent"]  # the size still matches: only verify_media reads the bytes
        full = s.plan_verify(verify_media=True).result
    bad = [f for f in full["findings"] if f["problem"] == "media_corrupt"]
    assert not full["consistent"] and len(bad) == 1
    assert bad[0]["target"] == path and bad[0]["source"] == sources[1] and medium in bad[0]["action"]
    out = tmp_path / "restored"
    out.mkdir()
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="cannot be restored, nothing was made.*sha256"):
            s.plan_restore_from_media(1, medium, str(out))
    assert not os.listdir(str(out))
    # repair never deletes or rewrites a medium
    with engine.session("P") as s:
        plan = s.plan_verify(repair=True, verify_media=True)
        plan.apply()
    assert os.path.exists(path)
    os.unlink(path)
    with engine.session("P", shared=True) as s:
        missing = [f for f in s.plan_verify().result["findings"] if f["problem"] == "media_missing"]
    assert len(missing) == 1 and missing[0]["target"] == path


def test_a_kill_mid_dump_leaves_a_temporary_file_that_repair_removes(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    foreign = os.path.join(medium, "P", "v1", "someone-elses.btrfs-stream")
    be.die_in_dump = True
    with engine.session("P") as s:
        plan = s.plan_dump(1, medium)
        with pytest.raises(KeyboardInterrupt):
            plan.apply()
    # a SIGKILL runs no cleanup: put back what the writer had written
    temp = os.path.join(medium, "P", "v1", "%s%d.%s" % (_media.TEMP_PREFIX, 4242, os.path.basename(
        _media.stream_name(sources[0], "btrfs-stream"))))
    with open(temp, "wb") as f:
        f.write(b"A@v")
    with open(foreign, "wb") as f:
        f.write(b"not ours")
    with engine.session("P", shared=True) as s:
        assert s.state.journal is not None and s.state.journal.operation == "dump"
        result = s.plan_verify().result
    problems = sorted(f["problem"] for f in result["findings"])
    assert problems == ["interrupted_dump", "media_leftover"]
    assert [f["target"] for f in result["findings"] if f["problem"] == "media_leftover"] == [temp]
    with engine.session("P") as s:
        with pytest.raises(PitcopyError, match="unfinished dump"):
            s.plan_dump(1, medium)
        s.plan_verify(repair=True).apply()
    assert not os.path.exists(temp) and os.path.exists(foreign)
    be.die_in_dump = False
    with engine.session("P") as s:
        assert s.state.journal is None
        s.plan_dump(1, medium).apply()
        assert s.plan_verify(verify_media=True).result["consistent"]


def test_a_kill_mid_restore_from_media_is_finished_by_repair(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    _dump(engine, 1, medium)
    out = tmp_path / "restored"
    out.mkdir()
    real = be.receive_stream
    seen = []

    def die_on_second(definition, source, fd, volume):
        seen.append(source)
        if len(seen) == 2:
            raise KeyboardInterrupt("killed")
        return real(definition, source, fd, volume)

    be.receive_stream = die_on_second
    with engine.session("P") as s:
        with pytest.raises(KeyboardInterrupt):
            s.plan_restore_from_media(1, medium, str(out)).apply()
    be.receive_stream = real
    with engine.session("P") as s:
        j = s.state.journal
        assert j.operation == "restore_elsewhere" and j.medium == medium and j.done == (sources[0],)
        found = s.plan_verify().result["findings"]
        assert [f["problem"] for f in found] == ["interrupted_restore_elsewhere"]
        s.plan_verify(repair=True).apply()
        assert s.state.journal is None
    for x in sources:
        assert (out / os.path.basename(x)).read_text() == "%s@v1" % os.path.basename(x)


@pytest.mark.parametrize("case, match", [
    ("relative", "is not an absolute path"),
    ("missing", "does not exist"),
    ("inside_source", "is inside .*, a source or target directory"),
    ("group_writable", "writable by group or others"),
    ("symlink", "is not a directory \\(symbolic links are not followed\\)"),
    ("unknown_version", "has no version 9 to dump; it keeps versions: 1"),
    ("zero_version", "version must be a positive integer"),
])
def test_dump_bad_input_changes_nothing(tmp_path, case, match):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    version = 1
    if case == "relative":
        medium = "medium"
    elif case == "missing":
        medium = str(tmp_path / "nope")
    elif case == "inside_source":
        medium = os.path.join(sources[0], "dumps")
        os.mkdir(medium, 0o700)
    elif case == "group_writable":
        os.chmod(medium, 0o770)
    elif case == "symlink":
        os.symlink(medium, str(tmp_path / "link"))
        medium = str(tmp_path / "link")
    elif case == "unknown_version":
        version = 9
    elif case == "zero_version":
        version = 0
    raw = engine.store.read_raw("P")
    calls = len(be.calls)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match=match):
            s.plan_dump(version, medium)
    assert engine.store.read_raw("P") == raw and len(be.calls) == calls
    if os.path.isabs(medium) and os.path.isdir(medium):
        assert not os.path.exists(os.path.join(medium, "P"))


@pytest.mark.parametrize("case, match", [
    ("no_dump_of_version", "has no dump of version 2 on medium .*the storage media inventory holds: version 1 on"),
    ("other_medium", "has no dump of version 1 on medium /elsewhere"),
    ("relative_medium", "from_media 'medium' is not an absolute path"),
    ("no_restore_to", "from_media needs restore_to"),
    ("unknown_volume", "/x has no stream in the dump of version 1"),
])
def test_restore_from_media_bad_input_changes_nothing(tmp_path, case, match):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    _copy(engine, be, sources, "v2")
    _dump(engine, 1, medium)
    out = tmp_path / "restored"
    out.mkdir()
    args = dict(version=1, medium=medium, restore_to=str(out), volumes=None)
    if case == "no_dump_of_version":
        args["version"] = 2
    elif case == "other_medium":
        args["medium"] = "/elsewhere"
    elif case == "relative_medium":
        args["medium"] = "medium"
    elif case == "no_restore_to":
        args["restore_to"] = None
    elif case == "unknown_volume":
        args["volumes"] = ["/x"]
    raw = engine.store.read_raw("P")
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match=match):
            s.plan_restore_from_media(**args)
    assert engine.store.read_raw("P") == raw and not os.listdir(str(out))


def test_other_technologies_are_refused_naming_what_is_supported(tmp_path):
    engine, be, sources, medium = _env(tmp_path, technology="lvm_thin", backend=MemoryBackend)
    _copy(engine, be, sources, "v1")
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="dumping a version to media is not supported for technology lvm_thin; "
                                               "supported: btrfs_snapshot, btrfs_send"):
            s.plan_dump(1, medium)
        with pytest.raises(InvalidInput, match="restoring from media is not supported for technology lvm_thin"):
            s.plan_restore_from_media(1, medium, str(tmp_path))
    assert not os.listdir(medium)


# --- the store ------------------------------------------------------------------------

def _state_with_dump(tmp_path):
    engine, be, sources, medium = _env(tmp_path)
    _copy(engine, be, sources, "v1")
    _dump(engine, 1, medium)
    with engine.session("P") as s:
        return s.state


def test_the_store_round_trips_the_inventory(tmp_path):
    state = _state_with_dump(tmp_path)
    data = dump_state(state)
    assert data["media"][0]["version"] == 1
    assert load_state(data) == state
    # a state without dumps writes no key (an older collection reads it as before)
    from dataclasses import replace
    assert "media" not in dump_state(replace(state, media=()))


@pytest.mark.parametrize("damage, where", [
    (lambda d: d["streams"][0].update(sha256="abc"), "sha256"),
    (lambda d: d["streams"][0].update(stream="../../etc/passwd"), "stream"),
    (lambda d: d["streams"][0].update(stream="/abs/v1/x"), "stream"),
    (lambda d: d["streams"][0].update(stream="P/v2/x.btrfs-stream"), "stream"),
    (lambda d: d["streams"][0].update(size=-1), "size"),
    (lambda d: d.update(medium="relative"), "medium"),
    (lambda d: d.update(streams=[]), "streams"),
    (lambda d: d.pop("version_time"), "version_time"),
    (lambda d: d.update(extra=1), "extra"),
    (lambda d: d["streams"].append(dict(d["streams"][0])), "two streams"),
])
def test_the_store_refuses_a_damaged_inventory(tmp_path, damage, where):
    data = dump_state(_state_with_dump(tmp_path))
    damage(data["media"][0])
    with pytest.raises(StateFileError, match="media"):
        load_state(data)


def test_the_store_refuses_an_empty_or_duplicated_inventory(tmp_path):
    data = dump_state(_state_with_dump(tmp_path))
    twice = dict(data, media=data["media"] * 2)
    with pytest.raises(StateFileError, match="dumped to .* twice"):
        load_state(twice)
    with pytest.raises(StateFileError, match="media"):
        load_state(dict(data, media=[]))


def test_stream_names_are_stable_and_distinct():
    a = _media.stream_name("/srv/a/data", "btrfs-stream")
    assert a == _media.stream_name("/srv/a/data", "btrfs-stream")
    assert a != _media.stream_name("/srv/b/data", "btrfs-stream")
    assert a.startswith("data-") and _media.TEMP_RE.match(".pitcopy-dump.12." + a)
    assert not _media.TEMP_RE.match(".pitcopy-dump.x." + a) and not _media.TEMP_RE.match(a)
    assert MediaDump("/m", 1, "t", (MediaStream("/s", "P/v1/x", 1, "0" * 64),), "t").as_dict()["version"] == 1
