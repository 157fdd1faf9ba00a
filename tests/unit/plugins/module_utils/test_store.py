# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state store: codec round trips, file format, permissions, refusals."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import shutil
import stat
import tempfile

import pytest
import yaml

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pitcopy.versions.plugins.module_utils import _store
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, PitcopyError, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    STATUS_INCOMPLETE,
    STATUS_INVALID,
    STATUS_VALID,
    CopyPair,
    Hook,
    Journal,
    PoolDefinition,
    PoolState,
    Record,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import (
    SCHEMA_VERSION,
    StateStore,
    dump_state,
    load_state,
)


def rich_state(name="db"):
    srcs = ("vg0/data", "vg0/logs", "vg1/archive")
    tps = (TargetPool("tp1", ("vg9/t1", "vg9/t2", "vg9/t3")), TargetPool("tp2", ("vg9/u1", "vg9/u2", "vg9/u3")))
    d = PoolDefinition(
        name=name, technology="lvm_clone", sources=srcs, versions=2, target_pools=tps,
        snapshot_size="10%ORIGIN", consistency="freeze",
        pre_copy_hooks=(Hook(("/usr/bin/psql", "-c", "CHECKPOINT"), timeout=30, abort_on_failure=True),),
        post_copy_hooks=(Hook(("/bin/echo", "done: it's \"ok\""), timeout=5, abort_on_failure=False),),
    )
    r1 = Record(RECORD_REPLICATION, 3, "tp1", "2026-11-25T10:00:00Z",
                tuple(CopyPair(s, t) for s, t in zip(srcs, tps[0].volumes)), label="nightly", status=STATUS_VALID)
    r2 = Record(RECORD_REPLICATION, 4, "tp2", "2026-11-25T11:00:00+00:00",
                tuple(CopyPair(s, t) for s, t in zip(srcs[:2], tps[1].volumes)), label=None, status=STATUS_INCOMPLETE)
    p5 = Record(RECORD_PREPAIRING, 5, "tp1", "2026-11-25T12:00:00Z", r1.pairs)
    j = Journal(operation="copy", version=5, target_pool="tp1", pairs=r1.pairs, phase="copying",
                started="2026-11-25T12:01:00Z", replaced_version=3, label="adhoc", pid=4242,
                staged=(CopyPair("vg0/data", "vg9/t1.pitcopy-staged"),))
    return PoolState(definition=d, replication_records=(r1, r2), prepairing_records=(p5,), last_version=4, journal=j)


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / "state")


@pytest.fixture
def store(state_dir):
    return StateStore(state_dir, lock_timeout=0.5)


def write_raw(store, name, data, mode=0o600):
    """Put arbitrary bytes in a pool's state file (as an operator or a bug would)."""
    if not os.path.isdir(store.state_dir):
        os.makedirs(store.state_dir, 0o700)
    path = store.path(name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------

def test_rich_state_round_trips_through_the_file(store):
    state = rich_state()
    store.save(state)
    assert store.load("db") == state
    # and through the codec alone
    assert load_state(dump_state(state)) == state


def test_empty_pool_round_trips(store):
    state = PoolState(PoolDefinition("empty", "btrfs_snapshot", (), 1))
    store.save(state)
    assert store.load("empty") == state


def test_schema_version_is_the_first_key_and_keys_keep_their_order(store):
    store.save(rich_state())
    text = store.read_raw("db").decode("utf-8")
    keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(("#", " ", "-"))]
    assert keys == ["schema_version", "definition", "last_version", "journal",
                    "replication_records", "prepairing_records"]
    assert yaml.safe_load(text)["schema_version"] == SCHEMA_VERSION == 2
    # saving the same state again writes the very same bytes (stable output)
    before = store.read_raw("db")
    store.save(store.load("db"))
    assert store.read_raw("db") == before


def test_pairs_and_names_are_one_per_line(store):
    store.save(rich_state())
    text = store.read_raw("db").decode("utf-8")
    assert "  pairs: |\n    vg0/data -> vg9/t1\n    vg0/logs -> vg9/t2\n    vg1/archive -> vg9/t3\n" in text
    assert "  sources: |\n    vg0/data\n    vg0/logs\n    vg1/archive\n" in text
    assert "  - argv: [/usr/bin/psql, -c, CHECKPOINT]" in text
    # plain YAML readers (yq, python -c 'yaml.safe_load') see the same data
    data = yaml.safe_load(text)
    assert data["replication_records"][0]["pairs"].splitlines()[0] == "vg0/data -> vg9/t1"
    assert data["journal"]["pid"] == 4242


@pytest.mark.parametrize("source,target", [
    ("a -> b", "t"),        # separator inside a source
    ("a ->", "t"),          # would read as "a -> -> t"
    ("a\nb", "t"),          # line break
    ("a", "t\u2028x"),      # a character YAML turns into a line break
    ("a\x85", "t"),
    ("a ", "t "),           # trailing blanks
    ("a\tb", "c\x00d"),     # control characters
])
def test_names_that_do_not_fit_one_per_line_fall_back_to_a_yaml_list(store, source, target):
    pairs = (CopyPair("ok/1", "ok/t1"), CopyPair(source, target))
    d = PoolDefinition("odd", "btrfs_send", ("ok/1", source), 1, (TargetPool("t", ("ok/t1", target)),))
    state = PoolState(d, (Record(RECORD_REPLICATION, 1, "t", "2026-11-25T00:00:00Z", pairs),))
    store.save(state)
    assert store.load("odd") == state
    data = yaml.safe_load(store.read_raw("odd"))
    assert isinstance(data["replication_records"][0]["pairs"], list)


def test_target_with_separator_and_empty_names_still_round_trip(store):
    pairs = (CopyPair("a", "b -> c"), CopyPair("", "t"), CopyPair("s", ""))
    state = PoolState(PoolDefinition("p", "btrfs_send", ("a",), 1), (Record(RECORD_REPLICATION, 1, "t", "x", pairs),))
    store.save(state)
    assert store.load("p") == state


def test_hand_edited_forms_are_accepted(store):
    doc = {
        "schema_version": 1,
        "definition": {"name": "hand", "technology": "zfs_snapshot", "versions": 2,
                       "sources": ["tank/a", "tank/b"]},
        "replication_records": [{"version": 1, "target_pool": "01", "created": "2026-11-25T00:00:00Z",
                                 "pairs": [{"source": "tank/a", "target": "tank/a@1"}, ["tank/b", "tank/b@1"]]}],
        "prepairing_records": [{"version": 2, "target_pool": "02", "created": "2026-11-25T00:00:00Z",
                                "pairs": "tank/a -> tank/a@2\n\ntank/b -> tank/b@2\n"}],
    }
    write_raw(store, "hand", yaml.safe_dump(doc).encode())
    state = store.load("hand")
    assert state.definition.sources == ("tank/a", "tank/b")
    assert state.replication_records[0].pairs == (CopyPair("tank/a", "tank/a@1"), CopyPair("tank/b", "tank/b@1"))
    assert state.prepairing_records[0].pairs == (CopyPair("tank/a", "tank/a@2"), CopyPair("tank/b", "tank/b@2"))
    assert state.replication_records[0].status == STATUS_VALID and state.last_version == 0 and state.journal is None


# Names from the whole of Unicode (bar surrogates), with the characters that
# matter to the line format and to YAML over-represented.
_tricky = st.sampled_from([" -> ", "->", " ", "\n", "\r", "\t", "\x85", "\u2028", "\ufeff", ":", "#", "'", '"',
                           "- ", "? ", "{", "[", "&", "*", "!", "|", ">", "%", "@", "`", "null", "true", "0x1",
                           "1e3", "~", "\x00", "é", "\U0001f600"])
names = st.lists(st.one_of(st.text(max_size=6), _tricky), max_size=4).map("".join)
simple_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_.-@", min_size=1, max_size=12)
any_name = st.one_of(simple_names, names)
pairs_st = st.lists(st.builds(CopyPair, any_name, any_name), max_size=6).map(tuple)
opt_text = st.one_of(st.none(), any_name)


@st.composite
def pool_states(draw):
    name = draw(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z"))
    hooks = st.lists(st.builds(Hook, st.lists(any_name, min_size=1, max_size=3).map(tuple),
                               st.integers(1, 3600), st.booleans()), max_size=2).map(tuple)
    d = PoolDefinition(
        name=name, technology=draw(st.sampled_from(["lvm_snapshot", "zfs_send", "btrfs_send"])),
        sources=tuple(draw(st.lists(any_name, max_size=6))), versions=draw(st.integers(1, 50)),
        target_pools=tuple(draw(st.lists(st.builds(TargetPool, any_name, st.lists(any_name, max_size=4).map(tuple)),
                                         max_size=3))),
        snapshot_size=draw(opt_text), consistency=draw(st.sampled_from(["auto", "freeze", "none"])),
        pre_copy_hooks=draw(hooks), post_copy_hooks=draw(hooks))

    def records(kind):
        return st.lists(st.builds(Record, st.just(kind), st.integers(1, 10 ** 6), any_name, any_name, pairs_st,
                                  opt_text, st.sampled_from([STATUS_VALID, STATUS_INVALID, STATUS_INCOMPLETE])),
                        max_size=3).map(tuple)

    journal = st.one_of(st.none(), st.builds(
        Journal, any_name, st.integers(-5, 10 ** 6), any_name, pairs_st, any_name, any_name,
        st.one_of(st.none(), st.integers(1, 99)), opt_text, st.one_of(st.none(), st.integers(1, 2 ** 22)), pairs_st))
    return PoolState(d, draw(records(RECORD_REPLICATION)), draw(records(RECORD_PREPAIRING)),
                     draw(st.integers(0, 10 ** 6)), draw(journal))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(state=pool_states())
def test_any_state_round_trips_unchanged(store, state):
    data = dump_state(state)
    assert list(data)[0] == "schema_version"
    assert load_state(data) == state
    store.save(state)
    assert store.load(state.definition.name) == state


# --------------------------------------------------------------------------
# Permissions and the directory
# --------------------------------------------------------------------------

def test_state_dir_and_parents_created_0700_files_0600(tmp_path):
    old = os.umask(0)  # even with a permissive umask
    try:
        d = tmp_path / "a" / "b" / "state"
        store = StateStore(str(d))
        store.save(rich_state())
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", d):
        assert stat.S_IMODE(os.stat(str(p)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path("db")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.lock_path("db")).st_mode) == 0o600
    assert sorted(os.listdir(str(d))) == [".db.lock", "db.yml"]


def test_an_existing_0600_file_keeps_0600_after_save(store):
    store.save(rich_state())
    os.chmod(store.path("db"), 0o644)
    store.save(rich_state())
    assert stat.S_IMODE(os.stat(store.path("db")).st_mode) == 0o600


def test_reading_creates_nothing(state_dir):
    store = StateStore(state_dir)
    assert store.load("db") is None
    assert store.read_raw("db") is None
    assert store.pool_names() == []
    assert not store.remove("db")
    assert not os.path.exists(state_dir)


def test_pool_names_lists_only_state_files(store):
    store.save(rich_state("b"))
    store.save(rich_state("a"))
    for junk in (".a.yml.1234.tmp", "notes.txt", ".hidden.yml", "bad name.yml", "x.yaml"):
        with open(os.path.join(store.state_dir, junk), "w") as f:
            f.write("x")
    assert store.pool_names() == ["a", "b"]


def test_remove(store):
    store.save(rich_state())
    assert store.remove("db") is True
    assert store.load("db") is None
    assert store.remove("db") is False
    assert store.pool_names() == []
    # the lock file stays: removing it could let two runs hold the lock
    assert os.path.exists(store.lock_path("db"))


# --------------------------------------------------------------------------
# Refusals: clear message, file byte-for-byte unchanged
# --------------------------------------------------------------------------

def assert_refused(store, name, exc_type, *fragments):
    path = store.path(name)
    before = None
    if os.path.isfile(path) and not os.path.islink(path):
        with open(path, "rb") as f:
            before = f.read()
    with pytest.raises(exc_type) as info:
        store.load(name)
    for fragment in fragments:
        assert fragment in info.value.msg, info.value.msg
    if before is not None:
        with open(path, "rb") as f:
            assert f.read() == before
    return info.value


CORRUPT = [
    (b"schema_version: 1\ndefinition: [unclosed\n", "does not parse as YAML"),
    (b"\x00\x01garbage\xff", "not UTF-8"),
    (b"schema_version: 1\n\tdefinition: x\n", "does not parse as YAML"),
    (b"- a\n- b\n", "expected a YAML mapping with schema_version at the top, found a list"),
    (b"just a string\n", "expected a YAML mapping with schema_version at the top"),
    (b"", "expected a YAML mapping with schema_version at the top, found null"),
    (b"definition: {}\n", "a mapping without schema_version"),
    (b"schema_version: '1'\n", "schema_version '1'; expected an integer from 1 to 2"),
    (b"schema_version: 0\n", "schema_version 0"),
    (b"schema_version: 1\n", "missing key(s) definition"),
    (b"schema_version: 1\nschema_version: 1\n", "found duplicate key 'schema_version'"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\nextra: 1\n",
     "unknown key(s) 'extra'"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: two, sources: []}\n",
     "definition.versions: expected an integer, found a string"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\n"
     b"replication_records:\n- {version: 1, target_pool: '01', created: x, pairs: \"a -> b\\nc d\\n\"}\n",
     "replication_records[0].pairs: line 2 'c d' is not of the form 'source -> target'"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\n"
     b"journal: {version: 1}\n", "journal: missing key(s) operation"),
    (b"schema_version: 1\ndefinition: {name: other, technology: lvm_thin, versions: 2, sources: []}\n",
     "holds copy pool 'other', not 'db'"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\n"
     b"last_version: -1\n", "last_version: expected an integer >= 0"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: [1]}\n",
     "definition.sources[0]: expected a string, found an integer"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\n"
     b"replication_records:\n- {version: 1, target_pool: '01', created: 2026-13-45, pairs: []}\n",
     "does not parse as YAML (month must be in 1..12)"),
    (b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\n"
     b"replication_records:\n- {version: 1, target_pool: '01', created: x, pairs: [[a, b, c]]}\n",
     "replication_records[0].pairs[0]: expected [source, target] or {source, target}, found a list"),
    (b"schema_version: 1\n? [a]\n: 1\n", "does not parse as YAML"),
    (b"schema_version: 1\n" + b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "does not parse as YAML (maximum recursion depth exceeded)"),
]


@pytest.mark.parametrize("raw,fragment", CORRUPT, ids=["%02d-%s" % (i, c[1][:40]) for i, c in enumerate(CORRUPT)])
def test_corrupt_or_wrong_shape_file_is_refused_and_left_untouched(store, raw, fragment):
    path = write_raw(store, "db", raw)
    err = assert_refused(store, "db", StateFileError, fragment, path, "left untouched")
    assert err.result()["msg"] == err.msg
    assert sorted(os.listdir(store.state_dir)) == ["db.yml"]  # reading created nothing
    # as the engine does it: lock, then load
    with store.locked("db"):
        with pytest.raises(StateFileError):
            store.load("db")
    assert store.read_raw("db") == raw
    assert sorted(os.listdir(store.state_dir)) == [".db.lock", "db.yml"]


def test_newer_schema_is_refused(store):
    raw = yaml.safe_dump({"schema_version": SCHEMA_VERSION + 1, "something": "new"}).encode()
    path = write_raw(store, "db", raw)
    assert_refused(store, "db", StateFileError, path, "schema_version %d" % (SCHEMA_VERSION + 1),
                   "written by a newer pitcopy.versions", "upgrade the collection")


def test_unquoted_dates_edited_by_hand_are_read_as_iso_strings(store):
    write_raw(store, "db", b"schema_version: 1\ndefinition: {name: db, technology: lvm_thin, versions: 2, sources: []}\n"
                           b"replication_records:\n- {version: 1, target_pool: '01', created: 2026-11-25, pairs: []}\n"
                           b"- {version: 2, target_pool: '02', created: 2026-11-25T02:00:00Z, pairs: []}\n")
    recs = store.load("db").replication_records
    assert [r.created for r in recs] == ["2026-11-25", "2026-11-25T02:00:00+00:00"]


def test_failed_directory_sync_says_the_new_file_is_in_place(store, monkeypatch):
    store.save(rich_state())
    new = PoolState(rich_state().definition)

    def eio(path):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_store, "_fsync_dir", eio)
    with pytest.raises(StateFileError) as info:
        store.save(new)
    assert "was replaced, but syncing its directory failed: Input/output error" in info.value.msg
    monkeypatch.undo()
    assert store.load("db") == new


def test_eio_is_refused(store, monkeypatch):
    store.save(rich_state())
    before = open(store.path("db"), "rb").read()

    def eio(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(_store, "_read_all", eio)
    with pytest.raises(StateFileError) as info:
        store.load("db")
    assert "cannot read the state file '%s'" % store.path("db") in info.value.msg
    assert "Input/output error" in info.value.msg
    monkeypatch.undo()
    assert store.read_raw("db") == before


def test_permission_denied_is_refused(tmp_path):
    """As root DAC never denies a read, so drop to an unprivileged uid in a child."""
    if os.geteuid() != 0:
        store = StateStore(str(tmp_path / "state"))
        store.save(rich_state())
        os.chmod(store.path("db"), 0)
        with pytest.raises(StateFileError) as info:
            store.load("db")
        assert "permission denied" in info.value.msg
        return
    # Every parent must be searchable by the unprivileged user: pytest's own
    # tmp_path lives under a 0700 directory, so use a fresh one under /tmp.
    base = tempfile.mkdtemp(prefix="pitcopy-perm-")
    try:
        os.chmod(base, 0o711)
        d = os.path.join(base, "state")
        store = StateStore(d)
        store.save(rich_state())  # file 0600 root
        before = store.read_raw("db")
        os.chown(d, 65534, 65534)  # a dir the unprivileged user may use
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                os.close(r)
                os.setgid(65534)
                os.setuid(65534)
                try:
                    StateStore(d).load("db")
                    msg = "NO ERROR"
                except PitcopyError as exc:
                    msg = "%s: %s" % (type(exc).__name__, exc.msg)
                os.write(w, msg.encode("utf-8"))
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        msg = b""
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            msg += chunk
        os.close(r)
        os.waitpid(pid, 0)
        msg = msg.decode("utf-8")
        assert msg.startswith("StateFileError: cannot read the state file '%s'" % store.path("db")), msg
        assert "permission denied" in msg
        os.chown(d, 0, 0)
        assert store.read_raw("db") == before
    finally:
        shutil.rmtree(base)


def test_state_file_that_is_a_directory_or_symlink_is_refused(store):
    store.save(rich_state("real"))
    os.symlink(store.path("real"), store.path("db"))
    assert_refused(store, "db", StateFileError, "it is a symlink")
    assert os.path.islink(store.path("db"))
    os.mkdir(store.path("dir"))
    assert_refused(store, "dir", StateFileError, "is not a regular file")


def test_state_dir_symlink_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    for sd in (str(link), str(link) + "/"):
        store = StateStore(sd)
        for call in (lambda: store.save(rich_state()), lambda: store.load("db"), store.pool_names):
            with pytest.raises(InvalidInput) as info:
                call()
            assert "state_dir '%s' is a symlink" % str(link) in info.value.msg
    assert os.listdir(str(real)) == []


def test_state_dir_that_is_a_file_refused(tmp_path):
    f = tmp_path / "file"
    f.write_bytes(b"keep me")
    store = StateStore(str(f))
    with pytest.raises(InvalidInput) as info:
        store.save(rich_state())
    assert "state_dir '%s' exists but is not a directory" % f in info.value.msg
    assert f.read_bytes() == b"keep me"
    with pytest.raises(InvalidInput):
        StateStore(str(f / "sub")).save(rich_state())
    assert f.read_bytes() == b"keep me"


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777, 0o720, 0o702])
def test_group_or_world_writable_state_dir_refused(store, mode):
    store.save(rich_state())
    before = store.read_raw("db")
    os.chmod(store.state_dir, mode)
    for call in (lambda: store.save(rich_state()), lambda: store.load("db")):
        with pytest.raises(InvalidInput) as info:
            call()
        assert "state_dir '%s' is group- or world-writable (mode %04o)" % (store.state_dir, mode) in info.value.msg
        assert "chmod 0700" in info.value.msg
    os.chmod(store.state_dir, 0o700)
    assert store.read_raw("db") == before


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_state_dir_owned_by_another_user_refused(store):
    store.save(rich_state())
    os.chown(store.state_dir, 65534, 65534)
    with pytest.raises(InvalidInput) as info:
        store.load("db")
    assert "is owned by uid 65534" in info.value.msg


@pytest.mark.parametrize("bad", ["relative/dir", "state", "./x", "", None, 5, "/tmp/\x00x"])
def test_relative_or_invalid_state_dir_refused(bad):
    with pytest.raises(InvalidInput) as info:
        StateStore(bad)
    assert repr(bad) in info.value.msg
    assert "absolute directory path" in info.value.msg


@pytest.mark.parametrize("bad", [-1, "10", None, float("nan"), True])
def test_bad_lock_timeout_refused(state_dir, bad):
    with pytest.raises(InvalidInput) as info:
        StateStore(state_dir, lock_timeout=bad)
    assert "lock_timeout" in info.value.msg


BAD_NAMES = ["", ".hidden", "-x", "a b", "a/b", "..", ".", "../etc/passwd", "a;b", "$(reboot)", "a\nb", "x" * 65,
             "é", "a*", "tab\t", None, 5, "a\x00b"]
GOOD_NAMES = ["a", "A.b-c_1", "x" * 64, "_x", "0", "db.prod", "a.yml"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_unsafe_pool_names_refused(store, bad):
    for call in (store.path, store.load, store.lock_path, store.remove, store.read_raw):
        with pytest.raises(InvalidInput) as info:
            call(bad)
        assert "copy pool name %r is not accepted" % (bad,) in info.value.msg
        assert "letters, digits, '_', '.' or '-', not starting with '.' or '-'" in info.value.msg
    with pytest.raises(InvalidInput):
        with store.locked(bad):
            pass
    if isinstance(bad, str):
        state = PoolState(PoolDefinition(bad, "lvm_thin", ("vg/a",), 1))
        with pytest.raises(InvalidInput):
            store.save(state)
    assert not os.path.exists(store.state_dir)


@pytest.mark.parametrize("good", GOOD_NAMES)
def test_safe_pool_names_accepted(store, good):
    state = PoolState(PoolDefinition(good, "lvm_thin", ("vg/a",), 1))
    store.save(state)
    assert store.load(good) == state
    assert store.pool_names() == [good]


@pytest.mark.parametrize("mutate,fragment", [
    (lambda s: s.__class__(s.definition.__class__(**dict(vars(s.definition), versions="2")),),
     "definition.versions: expected an integer, found a string"),
    (lambda s: s.__class__(s.definition, last_version=None), "last_version: expected an integer, found null"),
    (lambda s: s.__class__(s.definition, replication_records=(s.replication_records[0].__class__(
        RECORD_PREPAIRING, 1, "t", "x", ()),)), "a prepairing record was filed among the replication records"),
    (lambda s: s.__class__(s.definition, prepairing_records=(s.prepairing_records[0].__class__(
        RECORD_PREPAIRING, 1, "t", "x", (CopyPair("a", 5),)),)), "is not a string"),
])
def test_a_state_the_file_cannot_carry_is_refused_before_writing(store, mutate, fragment):
    good = rich_state()
    store.save(good)
    before = store.read_raw("db")
    with pytest.raises(StateFileError) as info:
        store.save(mutate(good))
    assert fragment in info.value.msg
    assert "refusing to write the state of copy pool" in info.value.msg
    assert store.read_raw("db") == before
    assert sorted(os.listdir(store.state_dir)) == [".db.lock", "db.yml"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(store, monkeypatch):
    store.save(rich_state())
    before = store.read_raw("db")

    def enospc(fd, data):
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_store, "_write_all", enospc)
    with pytest.raises(StateFileError) as info:
        store.save(PoolState(rich_state().definition))
    assert "cannot write the state file '%s'" % store.path("db") in info.value.msg
    assert "No space left on device" in info.value.msg
    assert "previous state file was left as it was" in info.value.msg
    assert store.read_raw("db") == before
    assert sorted(os.listdir(store.state_dir)) == [".db.lock", "db.yml"]


def test_leftover_temp_files_are_ignored_and_swept_by_the_next_save(store):
    old = rich_state()
    store.save(old)
    for junk in (".db.yml.deadbeef0001.tmp", ".db.yml.deadbeef0002.tmp"):
        with open(os.path.join(store.state_dir, junk), "wb") as f:
            f.write(b"schema_version: 1\ndefinition: {torn")
    other = os.path.join(store.state_dir, ".other.yml.deadbeef0003.tmp")
    with open(other, "wb") as f:
        f.write(b"")
    assert store.load("db") == old
    assert store.pool_names() == ["db"]
    store.save(PoolState(old.definition))
    left = sorted(os.listdir(store.state_dir))
    # only this pool's leftovers are swept (another pool's writer may be alive)
    assert left == [".db.lock", ".db.yml.prev", ".other.yml.deadbeef0003.tmp", "db.yml"]


def test_pure_python_yaml_fallback_writes_and_reads_the_same_file(store, monkeypatch):
    """A managed host whose PyYAML lacks libyaml uses the pure-Python safe
    dumper/loader: the same bytes for ordinary names, and either reads the
    other's files."""
    tricky = PoolState(PoolDefinition("odd", "btrfs_send", ("/mnt/a b", "/mnt/x -> y", "/mnt/\u00e9\x85"), 1))
    states = (rich_state(), tricky)
    for s in states:
        store.save(s)
    c_bytes = [store.read_raw(s.definition.name) for s in states]
    pure_dumper, pure_loader = _store.yaml_classes(pure=True)
    assert not issubclass(pure_loader, getattr(yaml, "CSafeLoader", ()))
    monkeypatch.setattr(_store, "_Dumper", pure_dumper)
    monkeypatch.setattr(_store, "_Loader", pure_loader)
    assert [store.load(s.definition.name) for s in states] == list(states)  # pure reads C's files
    for s in states:
        store.save(s)
        assert store.load(s.definition.name) == s
    assert store.read_raw("db") == c_bytes[0]
    monkeypatch.undo()
    assert [store.load(s.definition.name) for s in states] == list(states)  # C reads pure's files


def test_loading_never_constructs_python_objects(store):
    """Only safe loading: a python/object tag is refused, not executed."""
    path = write_raw(store, "db", b"schema_version: 1\ndefinition: !!python/object/apply:os.system ['true']\n")
    assert_refused(store, "db", StateFileError, path, "does not parse as YAML", "python/object/apply")


@pytest.mark.parametrize("raw,fragment", [
    (b"schema_version: 1\ndefinition: [unclosed\n", "does not parse as YAML"),
    (b"schema_version: 7\n", "written by a newer pitcopy.versions"),
])
def test_the_engine_passes_refusals_through_and_changes_nothing(tmp_path, raw, fragment):
    """End to end with the record engine: every plan on a refused state file
    fails with the store's message; the file and the volumes stay as they were."""
    from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

    be = MemoryBackend("lvm_clone")
    for vol in ("A", "a"):
        be.add_volume(vol, size=1 << 30)
    engine = make_engine(tmp_path / "state", be)
    with engine.session("P") as s:
        s.plan_define(PoolDefinition("P", "lvm_clone", ("A",), 1, (TargetPool("01", ("a",)),))).apply()
    store = engine.store
    path = write_raw(store, "P", raw)
    be.calls[:] = []
    with pytest.raises(StateFileError) as info:
        with engine.session("P") as s:
            s.plan_copy().apply()
    assert fragment in info.value.msg and path in info.value.msg
    assert store.read_raw("P") == raw
    assert be.calls == []


# The separator's own characters, blanks and line breaks, densely mixed: the
# one-per-line form must either read back exactly or not be chosen.
_sep_names = st.text(alphabet=[" ", "-", ">", "a", "\n", "\x85"], max_size=8)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.builds(CopyPair, _sep_names, _sep_names), max_size=5).map(tuple),
       names_=st.lists(_sep_names, max_size=5).map(tuple))
def test_line_forms_never_misread(pairs, names_):
    dumped_pairs, dumped_names = _store._dump_pairs(pairs), _store._dump_names(names_)
    assert _store._load_pairs(dumped_pairs, "p") == pairs
    assert _store._load_names(dumped_names, "n") == names_
    back = _store._yaml_load(_store._yaml_dump({"p": dumped_pairs, "n": dumped_names}))
    assert _store._load_pairs(back["p"], "p") == pairs
    assert _store._load_names(back["n"], "n") == names_


def test_transfers_of_sent_copies_round_trip_and_a_stranger_target_is_refused(store):
    """``transfers``: per target the base version (or null: a full send) and
    the bytes sent; written only when known, read back onto the pairs; a
    target the record does not pair is refused as damaged."""
    from dataclasses import replace

    state = rich_state()
    r1 = state.replication_records[0]
    sent = (replace(r1.pairs[0], base_version=None, bytes_sent=67174400),
            replace(r1.pairs[1], base_version=1, bytes_sent=812345)) + r1.pairs[2:]
    state = replace(state, replication_records=(replace(r1, pairs=sent),) + state.replication_records[1:])
    store.save(state)
    back = store.load("db").replication_records[0].pairs
    assert [(p.base_version, p.bytes_sent) for p in back] == [(None, 67174400), (1, 812345), (None, None)]
    assert [p.as_dict() for p in back][:2] == [
        {"source": "vg0/data", "target": "vg9/t1", "base_version": None, "bytes_sent": 67174400},
        {"source": "vg0/logs", "target": "vg9/t2", "base_version": 1, "bytes_sent": 812345}]
    # a record without transfers writes none (older files read as before)
    assert all("transfers" not in r for r in dump_state(rich_state())["replication_records"])
    doc = dump_state(state)
    transfers = doc["replication_records"][0]["transfers"]
    assert transfers["vg9/t2"] == {"base_version": 1, "bytes_sent": 812345}
    transfers["vg9/elsewhere"] = transfers.pop("vg9/t2")
    with pytest.raises(StateFileError) as err:
        load_state(doc)
    assert "vg9/elsewhere" in str(err.value)
