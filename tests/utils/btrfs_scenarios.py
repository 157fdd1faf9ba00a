# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenarios of the btrfs tests written once, for two worlds: the real one
(tests/real/test_btrfs*.py: loop-device filesystems, the real tools) and
the replay (tests/unit/plugins/module_utils/test_replay_btrfs.py: the
recorded answers of the real run, each command's argv asserted).

A world offers the calls of tests/utils/pool_calls.py (define, copy,
state, verify, ...) and, where the scenario says so, ``write_all(text)``
(new data in every source: the expected {source: data}) and
``check_versions(expected)`` (the data of each kept version; the replay,
which does not replay what copies contain, checks the marks of each kept
version instead), ``pitcopy_leftovers()`` (staging, aside and
temporary entries of ours still lying about), the subvolume calls the
real test makes with ``btrfs`` (``make_subvolume``, ``snapshot``,
``delete_subvolume``: directories in the replay) and
``check_restored(source, text)`` (the source holds ``text`` and is
writable; in the replay: it is there)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import stat
import subprocess
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import mark_path, read_mark
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput, NoEligibleTarget
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, Journal, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.tests.utils.trees import read, write

NOBODY = 65534


def older_state_file_learns_identities(p, pair):
    """A state file written before identities were kept (and so without
    the seal of schema_version 2): no identities; verified, and recorded
    at the next verify_records repair, which finds nothing wrong. ``pair``:
    version 1's pair of the one source, with its identity."""
    path = p.store.path(p.name)
    text = read(path)
    older = re.sub(r"\n  identities: \|\n    [^\n]*", "", text)
    assert older != text
    older = re.sub(r"(?m)^# pitcopy-seal: .*\n\Z", "", older.replace("schema_version: 2\n", "schema_version: 1\n"))
    assert "pitcopy-seal" not in older and "schema_version: 1\n" in older
    write(path, older)
    assert p.state().replication(1).pairs[0].identity is None
    assert p.verify() == {"consistent": True, "findings": []}
    with p.engine.session(p.name) as s:
        plan = s.plan_verify(repair=True)
        assert plan.changed
        assert plan.apply() == {"consistent": True, "findings": []}
    assert p.state().replication(1).pairs[0].identity == pair.identity


def a_target_another_user_can_write_is_refused(w):
    """A btrfs_send target (or its parent) that another user can write or
    owns is refused at the definition, and at the copy when it was opened
    up after; nothing changes, and once mended the next copy is made."""
    w.add_source("a")
    w.make_target_pools(count=2, per_pool=1)
    t1 = w.target_pools[0].volumes[0]
    os.chmod(t1, 0o777)
    with pytest.raises(InvalidInput) as err:
        w.define()
    assert "btrfs_send target %s is refused: it is writable by group and others (mode 0777)" % t1 in err.value.msg
    os.chmod(t1, 0o1777)  # sticky does not help the directory itself: others still plant entries in it
    with pytest.raises(InvalidInput, match="is writable by group and others"):
        w.define()
    os.chmod(t1, 0o755)
    os.chown(t1, NOBODY, NOBODY)
    with pytest.raises(InvalidInput, match="it is owned by uid %d, another user than root" % NOBODY):
        w.define()
    # a parent another user can change is as bad
    os.chown(t1, 0, 0)
    parent = os.path.dirname(t1)
    os.chown(parent, NOBODY, NOBODY)
    with pytest.raises(InvalidInput, match="its parent directory %s is owned by uid %d" % (parent, NOBODY)):
        w.define()
    os.chown(parent, 0, 0)
    assert w.store.load(w.name) is None
    w.define()
    expected = {1: w.write_all("v1\n")}
    w.copy()
    # opened up after the definition: refused at the copy, nothing changed
    t2 = w.target_pools[1].volumes[0]
    os.chmod(t2, 0o775)
    w.write_all("v2\n")
    with pytest.raises((InvalidInput, CopyFailed)) as err:
        w.copy()
    assert "btrfs_send target %s is refused: it is writable by its group (mode 0775)" % t2 in err.value.msg
    assert os.listdir(t2) == []
    state = w.state()
    assert state.journal is None and [r.version for r in state.replication_records] == [1]
    w.check_versions(expected)
    os.chmod(t2, 0o755)
    assert w.copy()["version"]["number"] == 2


def foreign_target_is_never_used_or_overwritten(w):
    """``w``: btrfs_send, three sources at version 1 in two target pools of
    three. Somebody's data in a target of the next target pool: that
    target is never paired nor written, by the engine or the backend."""
    victim = w.target_pools[1].volumes[2]
    write(os.path.join(victim, "precious"), "theirs\n")
    with pytest.raises(NoEligibleTarget) as err:
        w.copy()
    assert "holds data that is not a copy of pool" in str(err.value.details["unpaired"])
    assert read(os.path.join(victim, "precious")) == "theirs\n"
    assert sorted(os.listdir(victim)) == ["precious"]
    assert w.pitcopy_leftovers() == []
    state = w.state()
    assert [r.version for r in state.replication_records] == [1] and state.journal is None
    w.check_versions({1: dict((s_, "v1\n") for s_ in w.sources)})
    # the backend refuses it on its own too (a stale plan must not overwrite it)
    with pytest.raises(CopyFailed, match="never overwritten") as err:
        w.backend.create_copies(w.definition(), 9, [CopyPair(w.sources[0], victim)], None)
    assert "nothing was changed" in err.value.msg
    assert sorted(os.listdir(victim)) == ["precious"]


def interrupted_copy_is_repaired(w):
    """``w``: btrfs_snapshot. Version 2 staged through the backend and
    journaled as a killed run would leave it: the staged copies are listed
    (staged, valid), verify_records repair finishes the version, and
    nothing of ours is left unowned."""
    for n in ("a", "b", "c"):
        w.add_source(n)
    w.define()
    w.write_all("v1\n")
    w.copy()
    d = w.definition()
    pairs = [CopyPair(s_, w.backend.implied_target(w.name, "02", s_)) for s_ in w.sources]
    outcome = w.backend.create_copies(d, 2, pairs, CopyWindow(d, w.runner))
    staged = [c for c in w.backend.list_copies(w.name) if c.staged]
    assert sorted(c.target for c in staged) == sorted(p.target for p in outcome.staged)
    assert all(c.valid for c in staged)
    state = w.state()
    w.store.save(replace(state, journal=Journal(operation="copy", version=2, target_pool="02", pairs=tuple(pairs),
                                                phase="copied", started="2026-11-25T00:00:00Z",
                                                staged=tuple(outcome.staged))))
    result = w.verify(repair=True)
    assert [f["problem"] for f in result["findings"]] == ["interrupted_copy"]
    state = w.state()
    assert [r.version for r in state.replication_records] == [1, 2] and state.journal is None
    assert all(os.path.exists(mark_path(p.target)) for p in pairs)
    assert w.pitcopy_leftovers() == []
    assert w.verify()["consistent"] is True


def interrupted_restore_is_finished_by_repair(w):
    """A restore killed at three points, one per source, left as the
    backend leaves it (its order: move the source aside, snapshot the copy
    at the source's path, delete the aside) and journaled: ``a`` moved
    aside only, ``b`` moved aside and already made from its copy, ``c`` not
    moved yet. verify_records reports each, repair finishes each from the
    copy and deletes the asides; an aside that no journal names then
    refuses the next restore, changing nothing."""
    a, b_, c = w.three_sources_at_version_1()
    w.write_all("later\n")
    d = w.definition()
    rec = w.state().replication(1)
    asides = dict((s_, w.backend.restore_aside(d, s_)) for s_ in w.sources)
    work = os.path.dirname(asides[a])
    os.makedirs(work, mode=0o700, exist_ok=True)
    os.rename(a, asides[a])
    os.rename(b_, asides[b_])
    w.snapshot([w.copy_path(p) for p in rec.pairs if p.source == b_][0], b_)
    w.store.save(replace(w.state(), journal=Journal(
        operation="restore", version=1, target_pool=rec.target_pool, pairs=rec.pairs, phase="restoring",
        started="2026-11-25T00:00:00Z", asides=tuple(CopyPair(s_, asides[s_]) for s_ in w.sources))))
    found = w.verify()
    assert sorted((f["source"], f["problem"]) for f in found["findings"]) == sorted(
        (s_, "interrupted_restore") for s_ in w.sources)
    where = dict((f["source"], f["action"]) for f in found["findings"])
    assert "is missing" in where[a] and "already holds the copy" in where[b_] and "not moved aside yet" in where[c]
    w.verify(repair=True)
    assert w.state().journal is None
    for s_ in w.sources:
        w.check_restored(s_, "v1\n")
        assert not os.path.exists(asides[s_])
    assert w.pitcopy_leftovers() == []
    assert w.verify()["consistent"] is True
    # an aside no journal names: the next restore is refused, nothing changes
    w.make_subvolume(asides[c])
    write(os.path.join(c, "data"), "later\n")
    with pytest.raises(InvalidInput, match="left from an interrupted restore"):
        w.restore(1)
    assert read(os.path.join(c, "data")) == "later\n"
    w.delete_subvolume(asides[c])
    w.restore(1)
    w.check_restored(c, "v1\n")


def orphan_temp_marks_of_the_pool_are_swept_and_no_others(w, tmp_path):
    """Temporary marks of the pool left by a killed run (a whole one, a cut
    one) are reported and swept by repair and by the next copy; another
    pool's and a symlink at such a name are never touched."""
    a = w.add_source("a")
    w.make_target_pools(count=2, per_pool=1)
    w.define()
    expected = {1: w.write_all("v1\n")}
    w.copy()
    t1 = w.target_pools[0].volumes[0]
    send_dir = os.path.join(os.path.dirname(a), ".pitcopy", w.name, "send")
    ours = mark_path(os.path.join(t1, "a")) + ".tmp.999999"
    write(ours, json.dumps(dict(read_mark(os.path.join(t1, "a")), state="promoting")))
    cut = mark_path(os.path.join(send_dir, ".pitcopy-staging.a")) + ".tmp.999998.0a1b"
    write(cut, '{"pitcopy": 1, "po')
    theirs = mark_path(os.path.join(t1, "zz")) + ".tmp.999997"
    write(theirs, json.dumps({"pitcopy": 1, "pool": "other"}))
    link = mark_path(os.path.join(t1, "a")) + ".tmp.999996"
    os.symlink(str(tmp_path / "nowhere"), link)
    found = w.verify()
    assert not found["consistent"]
    assert sorted(f["target"] for f in found["findings"] if f["problem"] == "leftover_file") == sorted([ours, cut])
    assert os.path.exists(ours) and os.path.exists(cut)
    w.verify(repair=True)
    assert not os.path.exists(ours) and not os.path.exists(cut)
    assert os.path.exists(theirs) and os.path.islink(link)
    assert w.verify()["consistent"]
    # the next copy sweeps them too
    write(ours, "")
    expected[2] = w.write_all("v2\n")
    w.copy()
    assert not os.path.exists(ours)
    assert os.path.exists(theirs) and os.path.islink(link)
    w.check_versions(expected)


def a_send_target_inside_a_source_is_refused(w):
    """A btrfs_send target inside a source (its copies would be copied
    again with it): refused at the definition, nothing saved."""
    a = w.add_source("a")
    w.make_target_pools(count=2, per_pool=1)
    inside = os.path.join(a, "backup")
    os.mkdir(inside, 0o700)
    w.target_pools = (TargetPool("tp1", (inside,)), w.target_pools[1])
    with pytest.raises(InvalidInput) as err:
        w.define()
    assert "btrfs_send target %s of target pool tp1 is inside source %s" % (inside, a) in err.value.msg
    assert w.store.load(w.name) is None


def namespace_directories_are_0700_under_umask_000(w):
    """The directories the backend makes for its namespace (``.pitcopy``
    and below) are 0700 whatever the umask; one left open by an older
    version is closed at the next copy."""
    a = w.add_source("a")
    w.make_target_pools(count=2, per_pool=1)
    old = os.umask(0)
    try:
        w.define()
        w.write_all("v1\n")
        w.copy()
        w.restore(1)
    finally:
        os.umask(old)
    ns = os.path.join(os.path.dirname(a), ".pitcopy")
    made = [ns, os.path.join(ns, w.name)] + [os.path.join(ns, w.name, e) for e in os.listdir(os.path.join(ns, w.name))]
    assert len(made) >= 3
    assert dict((p, oct(_mode_of(p))) for p in made) == dict((p, oct(0o700)) for p in made)
    # one left open by an older version is closed at the next copy
    os.chmod(ns, 0o777)
    w.copy()
    assert _mode_of(ns) == 0o700


def _mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def versions_rotate_with_sources_added_and_removed(w, technology):
    """Six versions through two target pools with a source added (at 3)
    and one dropped (at 4): rotation, listing, verify, a restore of the
    pool and of one source, a copy deleted and one made writable (then
    changed and read-only again) behind the tool's back, and the repair.
    The world offers, beside the calls above, ``write_each({source:
    text})``, ``scribble(source)`` (new data and an extra file, to be
    undone by a restore), ``make_writable(copy)`` and ``tamper(copy)``
    (changed, read-only again)."""
    src = w.src
    for n in ("a", "b", "c"):
        w.add_source(n)
    w.make_target_pools()
    w.define()
    with w.engine.session(w.name) as s:
        pre = s.plan_prepair(versions=1).apply()
    assert [len(r["pairs"]) for r in pre["records"]] == [3]

    expected = {}
    windows = []
    for v in range(1, 7):
        if v == 3:
            w.add_source("d")
            w.define()
        if v == 4:
            w.sources.remove(src.path("vol", "b"))
            w.define()
        expected[v] = w.write_each(dict((s_, "version %d of %s\n" % (v, os.path.basename(s_))) for s_ in w.sources))
        result = w.copy(label="L%d" % v)
        assert result["version"]["number"] == v and result["version"]["status"] == "valid"
        windows.append(result["copy_window_ms"])
        w.check_versions(expected)
        assert len(w.state().replication_records) == min(v, 2)
        if v == 1:
            assert result["version"]["pre_copy_record"] == "prepairing"
        if v >= 3:
            assert result["replaced_version"] == v - 2
        if v == 4:
            assert [p["source"] for p in result["broken_pairs"]] == [src.path("vol", "b")]
        assert w.pitcopy_leftovers() == []
    print("%s copy windows (ms): %s" % (technology, ", ".join("%.1f" % x for x in windows)))

    # rotation: version 5 reuses the targets of version 3 (same target pool)
    state = w.state()
    assert [r.target_pool for r in state.replication_records] == (
        ["01", "02"] if technology == "btrfs_snapshot" else ["tp1", "tp2"])
    # the dropped source's copies left with its versions; its subvolume is untouched
    w.check_restored(src.path("vol", "b"), "version 3 of b\n")
    ours = w.backend.list_copies(w.name)
    assert sorted((c.version, c.source) for c in ours) == sorted(
        (v, s_) for v in (5, 6) for s_ in expected[v])
    assert all(c.valid and not c.staged and c.identity for c in ours)
    assert w.verify()["consistent"] is True

    # same label: no change
    with w.engine.session(w.name) as s:
        assert s.plan_copy(label="L6").changed is False

    # restore version 5 of the whole pool, then version 6 of source a only
    for s_ in w.sources:
        w.scribble(s_)
    assert sorted(w.restore(5)["restored"]) == sorted(w.sources)
    for s_ in w.sources:
        w.check_restored(s_, expected[5][s_])
        assert not os.path.exists(os.path.join(s_, "extra"))
    w.write_each(dict((s_, "after restore\n") for s_ in w.sources))  # writable again
    assert w.restore(6, volumes=[src.path("vol", "a")])["restored"] == [src.path("vol", "a")]
    w.check_restored(src.path("vol", "a"), expected[6][src.path("vol", "a")])
    w.check_restored(src.path("vol", "c"), "after restore\n")
    w.check_versions(expected)  # restoring destroyed no kept version
    assert w.pitcopy_leftovers() == []

    # a copy deleted and a copy made writable behind the tool's back
    v6 = w.state().replication(6)
    gone, changed = v6.pairs[0], v6.pairs[1]
    w.delete_subvolume(w.copy_path(gone))
    w.make_writable(w.copy_path(changed))
    result = w.verify()
    assert result["consistent"] is False
    problems = sorted((f["version"], f["source"], f["problem"]) for f in result["findings"])
    assert problems == sorted([(6, gone.source, "copy_missing"), (6, changed.source, "copy_invalid")])
    info = [c for c in w.backend.list_copies(w.name) if c.source == changed.source and c.version == 6][0]
    assert "no longer read-only" in info.detail
    # a writable copy changed and set read-only again is still caught (ctransid)
    w.tamper(w.copy_path(changed))
    info = [c for c in w.backend.list_copies(w.name) if c.source == changed.source and c.version == 6][0]
    assert not info.valid and "changed after the copy was made" in info.detail
    repaired = w.verify(repair=True)
    assert repaired["consistent"] is False
    state = w.state()
    assert state.replication(6).status == "invalid"
    assert gone.source not in [p.source for p in state.replication(6).pairs]
    assert state.replication(5).status == "valid"


def restore_refuses_busy_and_mountpoint_sources(w):
    """A source in use by a process, holding a nested subvolume, or
    bind-mounted: each refuses the whole restore, changing nothing; then
    the restore, and one of a source that was deleted. The world offers
    ``a_and_b_at_version_1()`` and ``bind_mounted(path)`` (a context)."""
    a, b_ = w.a_and_b_at_version_1()
    w.write_each({a: "later\n"})
    holder = subprocess.Popen(["sleep", "60"], cwd=a)
    try:
        with pytest.raises(InvalidInput) as err:
            w.restore(1)
        assert "in use by process(es) %d" % holder.pid in err.value.msg and a in err.value.msg
    finally:
        holder.kill()
        holder.wait()
    # refused as a whole: b was not restored either
    w.check_restored(a, "later\n")
    # a nested subvolume would be lost: refused
    w.make_subvolume(os.path.join(b_, "nested"))
    with pytest.raises(InvalidInput, match="nested subvolumes"):
        w.restore(1, volumes=[b_])
    w.delete_subvolume(os.path.join(b_, "nested"))
    # a mounted source cannot be swapped: refused
    with w.bind_mounted(a):
        with pytest.raises(InvalidInput, match="is a mountpoint; unmount it first"):
            w.restore(1)
    assert sorted(w.restore(1)["restored"]) == [a, b_]
    w.check_restored(a, "v1\n")
    # a source that was deleted comes back from its copy
    w.delete_subvolume(b_)
    assert w.restore(1, volumes=[b_])["restored"] == [b_]
    w.check_restored(b_, "v1\n")
    assert w.pitcopy_leftovers() == []


def discovery_facts(backend, src, dst, make_subvolume, fsid):
    """What discovery says of a subvolume, a plain directory on btrfs, an
    empty and a foreign target directory, a missing path. ``src``/``dst``:
    the two filesystems (``path(*parts)``); ``fsid()``: the source
    filesystem's uuid, as btrfs tells it."""
    os.makedirs(src.path("vol"), exist_ok=True)
    make_subvolume(src.path("vol", "a"))
    os.makedirs(dst.path("empty"))
    os.makedirs(dst.path("foreign"))
    write(dst.path("foreign", "somebody.txt"), "not ours\n")
    vols = backend.discover([src.path("vol", "a"), src.path("vol"), dst.path("empty"), dst.path("foreign"),
                             dst.path("missing")])
    a = vols[src.path("vol", "a")]
    assert a.kind == "subvolume" and a.container == fsid()
    assert a.block_size == 4096 and a.free > 100 * 1024 * 1024 and a.size > 0
    assert vols[src.path("vol")].kind == "directory"
    assert vols[dst.path("empty")].kind == "directory" and not vols[dst.path("empty")].foreign_data
    assert vols[dst.path("empty")].owner is None
    assert vols[dst.path("foreign")].foreign_data is True
    assert dst.path("missing") not in vols


def restore_changed_comes_from_a_comparison(w):
    """copy_version state=restored on btrfs: the backend cannot tell a source
    that holds its copy's data (a comparison by the restored snapshot's tree
    generation failed here: a second restore's snapshot had moved on), so
    every restore is a change and restores every source, as before."""
    a = w.add_source("a")
    b_ = w.add_source("b")
    w.make_target_pools()
    w.define()
    w.write_all("v1\n")
    w.copy()
    for dummy in range(2):
        with w.engine.session(w.name) as s:
            plan = s.plan_restore(1)
            assert plan.changed is True and sorted(plan.result["restored"]) == sorted([a, b_])
            plan.apply()
        w.check_restored(a, "v1\n")
        w.check_restored(b_, "v1\n")
    assert w.pitcopy_leftovers() == []
