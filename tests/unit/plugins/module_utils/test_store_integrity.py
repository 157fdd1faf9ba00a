# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state file's seal: every truncation and every sampled bit flip of real
state files (written by the engine) is refused and the file left as it was;
schema_version 1 files still read; the previous generation; reseal."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
import subprocess
from dataclasses import replace

import pytest
import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import PoolBusy, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    Hook,
    Journal,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import (
    SCHEMA_VERSION,
    StateStore,
    _yaml_dump,
    dump_state,
    seal,
    unseal,
)
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1 << 30


def _clone_pool(state_dir):
    """lvm_clone: 4 versions taken (2 kept), hooks, a pre-pairing record, a journal."""
    be = MemoryBackend("lvm_clone")
    for name in ("vg/A", "vg/B", "vg/a", "vg/b", "vg/c", "vg/d", "vg/e", "vg/f"):
        be.add_volume(name, size=GIB)
    engine = make_engine(state_dir, be)
    hooks = dict(pre_copy_hooks=(Hook(("/usr/bin/psql", "-c", "CHECKPOINT"), timeout=30),),
                 post_copy_hooks=(Hook(("/bin/true",), timeout=5, abort_on_failure=False),))
    tps = (TargetPool("01", ("vg/a", "vg/b")), TargetPool("02", ("vg/c", "vg/d")), TargetPool("03", ("vg/e", "vg/f")))
    with engine.session("db") as s:
        s.plan_define(PoolDefinition("db", "lvm_clone", ("vg/A", "vg/B"), 2, tps, **hooks)).apply()
    for label in ("mon", "tue", "wed", "thu"):
        with engine.session("db") as s:
            s.plan_copy(label=label).apply()
    with engine.session("db") as s:
        s.plan_prepair(versions=1).apply()
    store = engine.store
    state = store.load("db")
    # a copy in progress, as copy_version writes it before touching a volume
    journal = Journal("copy", 5, "02", (CopyPair("vg/A", "vg/c"), CopyPair("vg/B", "vg/d")), "copied",
                      "2026-11-26T02:00:00Z", replaced_version=3, label="fri", pid=4242,
                      staged=(CopyPair("vg/A", "vg/c.staged"), CopyPair("vg/B", "vg/d.staged")))
    rec = replace(state.replication_records[-1], warnings=("post-copy hook [\"x\"] exited with status 1",))
    store.save(replace(state, journal=journal, replication_records=state.replication_records[:-1] + (rec,)))
    return store, "db"


def _snap_pool(state_dir):
    be = MemoryBackend("btrfs_snapshot")
    for name in ("/srv/data/db", "/srv/data/www", "/srv/data/logs"):
        be.add_volume(name, size=GIB)
    engine = make_engine(state_dir, be)
    with engine.session("web") as s:
        s.plan_define(PoolDefinition("web", "btrfs_snapshot", ("/srv/data/db", "/srv/data/www", "/srv/data/logs"),
                                     3)).apply()
    for dummy in range(5):
        with engine.session("web") as s:
            s.plan_copy().apply()
    return engine.store, "web"


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    out = []
    for make in (_clone_pool, _snap_pool):
        store, name = make(str(tmp_path_factory.mktemp("st") / "state"))
        raw = store.read_raw(name)
        assert store.load(name) is not None and unseal(raw)[1:] == (True, None)
        out.append((store, name, raw))
    return out


def _put(store, name, raw):
    with open(store.path(name), "wb") as fh:
        fh.write(raw)


def _refused(store, name, raw):
    _put(store, name, raw)
    try:
        store.load(name)
    except StateFileError as exc:
        msg = exc.msg
    else:
        return None
    with open(store.path(name), "rb") as fh:
        assert fh.read() == raw, "the refused file was changed"
    return msg


def test_every_truncation_is_refused_and_left_untouched(real_files):
    cuts = 0
    for store, name, raw in real_files:
        try:
            for cut in range(len(raw)):
                msg = _refused(store, name, raw[:cut])
                assert msg is not None, "%s cut to %d of %d bytes was accepted" % (name, cut, len(raw))
                assert store.path(name) in msg
                cuts += 1
        finally:
            _put(store, name, raw)
    assert cuts == sum(len(raw) for dummy, dummy, raw in real_files) > 2000


def test_a_sample_of_bit_flips_is_refused_and_left_untouched(real_files):
    rng = random.Random(1217)
    flips = 0
    for store, name, raw in real_files:
        try:
            for dummy in range(1100):
                offset, bit = rng.randrange(len(raw)), rng.randrange(8)
                damaged = bytearray(raw)
                damaged[offset] ^= 1 << bit
                msg = _refused(store, name, bytes(damaged))
                assert msg is not None, "%s with bit %d of byte %d flipped was accepted" % (name, bit, offset)
                flips += 1
        finally:
            _put(store, name, raw)
    assert flips >= 2000


def test_the_refusal_names_the_file_the_problem_and_the_way_out(real_files):
    store, name, raw = real_files[0]
    try:
        msg = _refused(store, name, raw.replace(b"label: thu", b"label: THU"))
    finally:
        _put(store, name, raw)
    assert msg.startswith("the state file '%s' of copy pool 'db' is refused: its content does not match its seal"
                          % store.path(name)), msg
    assert "cp -p '%s' '%s'" % (store.prev_path(name), store.path(name)) in msg
    assert "reseal: true" in msg and "left untouched" in msg


def test_the_seal_is_the_last_line_and_covers_every_byte_before_it(real_files):
    for dummy, dummy, raw in real_files:
        body, last = raw[:-1].rsplit(b"\n", 1)
        assert last.startswith(b"# pitcopy-seal: sha256=") and last.endswith(b" bytes=%d" % (len(body) + 1))
        assert yaml.safe_load(raw)["schema_version"] == SCHEMA_VERSION == 2


def test_a_sealed_file_must_carry_every_key(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    state = store.load(name)
    data = dump_state(state)
    del data["replication_records"][0]["warnings"]
    _put(store, name, seal(_yaml_dump(data).encode("utf-8")))
    with pytest.raises(StateFileError, match=r"replication_records\[0\]: missing key\(s\) warnings"):
        store.load(name)
    data = dump_state(state)
    del data["last_version"]  # would read as 0 and restart the numbering
    _put(store, name, seal(_yaml_dump(data).encode("utf-8")))
    with pytest.raises(StateFileError, match=r"the document: missing key\(s\) last_version"):
        store.load(name)


# --------------------------------------------------------------------------
# schema_version 1 (earlier releases)


def _legacy_bytes(state):
    """The file an earlier release wrote: schema_version 1, no seal, no warnings."""
    data = dump_state(state)
    data["schema_version"] = 1
    for rec in data["replication_records"]:
        rec.pop("warnings")
    return ("# pitcopy.versions state of copy pool '%s'.\n" % state.definition.name
            + _yaml_dump(data)).encode("utf-8")


def test_a_schema_version_1_file_is_read_and_sealed_by_the_next_write(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    state = store.load(name)
    legacy = _legacy_bytes(state)
    os.unlink(store.prev_path(name))
    _put(store, name, legacy)
    assert store.load(name) == state
    # optional keys of a version 1 file may be missing
    data = yaml.safe_load(legacy)
    del data["journal"], data["prepairing_records"]
    _put(store, name, _yaml_dump(data).encode("utf-8"))
    assert store.load(name) == state
    _put(store, name, legacy)
    store.save(state)
    raw = store.read_raw(name)
    assert unseal(raw)[1:] == (True, None) and yaml.safe_load(raw)["schema_version"] == 2
    assert store.read_raw(name, previous=True) == legacy  # the old file is the previous generation
    assert store.load(name) == state


def test_a_schema_version_2_file_without_its_seal_is_refused(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    raw = store.read_raw(name)
    body = unseal(raw)[0]
    with pytest.raises(StateFileError, match="has schema_version 2 but no seal"):
        _put(store, name, body)
        store.load(name)
    assert store.read_raw(name) == body


# --------------------------------------------------------------------------
# the previous generation


def test_the_previous_generation_is_kept_and_recovers_a_damaged_file(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    state = store.load(name)
    first = store.read_raw(name)
    newer = replace(state, last_version=state.last_version + 1)
    store.save(newer)
    assert store.read_raw(name, previous=True) == first
    assert store.load_previous(name) == state
    assert oct(os.stat(store.prev_path(name)).st_mode & 0o777) == "0o600"
    assert store.pool_names() == [name]
    # damage the current file; the refusal's recovery command brings the previous one back
    raw = store.read_raw(name)
    _put(store, name, raw[:len(raw) // 2])
    with pytest.raises(StateFileError) as info:
        store.load(name)
    command = info.value.msg.split("(cp -p ", 1)[1].split(", then", 1)[0]
    src, dst = [part.strip("'") for part in command.split("' '")]
    subprocess.check_call(["cp", "-p", src, dst])
    assert store.load(name) == state
    assert oct(os.stat(store.path(name)).st_mode & 0o777) == "0o600"


def test_temp_sweeps_and_pool_names_leave_the_previous_generation_alone(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    prev = store.read_raw(name, previous=True)
    # leftovers of a killed writer: of this pool, and of a pool whose name extends it
    junk = [".web.yml.0123456789ab.tmp", ".web.yml.prev.0123456789ab.tmp"]
    foreign = ".web.yml.yml.0123456789ab.tmp"
    for entry in junk + [foreign]:
        with open(os.path.join(store.state_dir, entry), "wb") as fh:
            fh.write(b"torn")
    store.save(store.load(name))
    left = sorted(os.listdir(store.state_dir))
    assert left == sorted([".web.lock", ".web.yml.prev", "web.yml", foreign])
    assert store.read_raw(name, previous=True) != prev  # rotated by the save, not swept
    assert store.pool_names() == [name]


def test_remove_takes_the_previous_generation_with_it(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    old = store.load(name)
    assert os.path.exists(store.prev_path(name))
    assert store.remove(name) is True
    assert sorted(os.listdir(store.state_dir)) == [".web.lock"]
    # a pool defined again under the name has no previous generation until its second write
    store.save(replace(old, replication_records=(), prepairing_records=(), last_version=0))
    assert not os.path.exists(store.prev_path(name))
    # a stray one (left by a crash during remove) is dropped by a first write
    with open(store.prev_path(name), "wb") as fh:
        fh.write(b"stale")
    os.unlink(store.path(name))
    store.save(old)
    assert not os.path.exists(store.prev_path(name))


# --------------------------------------------------------------------------
# the shared (reader's) lock


def test_readers_share_the_lock_and_never_write_under_it(tmp_path):
    store, name = _snap_pool(str(tmp_path / "state"))
    other = StateStore(store.state_dir, lock_timeout=0.2)
    with store.locked(name, shared=True):
        with other.locked(name, shared=True):  # a second reader does not wait
            assert other.load(name) == store.load(name)
        with pytest.raises(PoolBusy):  # a writer does
            other.save(store.load(name))
        with pytest.raises(StateFileError, match="a write was attempted under the shared"):
            store.save(store.load(name))
    with store.locked(name):
        with pytest.raises(PoolBusy):  # and a reader waits for a writer
            with other.locked(name, shared=True):
                pass


def test_a_reader_creates_nothing(tmp_path):
    store = StateStore(str(tmp_path / "state"))
    with store.locked("db", shared=True):
        assert store.load("db") is None
    assert not os.path.exists(store.state_dir)
