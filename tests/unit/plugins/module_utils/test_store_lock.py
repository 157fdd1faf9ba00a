# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-pool lock: bounded wait, PoolBusy, freed when the holder dies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import signal
import threading
import time
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import PoolBusy, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, PoolState
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore


def state(name="db", sources=("vg/a",)):
    return PoolState(PoolDefinition(name, "lvm_thin", tuple(sources), 2))


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / "state")


class Holder(threading.Thread):
    """Holds a pool's lock through its own StateStore until told to let go."""

    def __init__(self, store, name="db"):
        super(Holder, self).__init__()
        self.store, self.name = store, name
        self.holding = threading.Event()
        self.release = threading.Event()
        self.daemon = True

    def run(self):
        with self.store.locked(self.name):
            self.holding.set()
            self.release.wait(30)

    def __enter__(self):
        self.start()
        assert self.holding.wait(10)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.join(10)


def test_second_run_gets_pool_busy_after_the_bounded_wait(state_dir):
    holder_store = StateStore(state_dir)
    holder_store.save(state())
    before = holder_store.read_raw("db")
    other = StateStore(state_dir, lock_timeout=0.3)
    with Holder(holder_store):
        start = time.monotonic()
        with pytest.raises(PoolBusy) as info:
            with other.locked("db"):
                pytest.fail("got a lock another run holds")
        waited = time.monotonic() - start
        msg = info.value.msg
        # the message says how long it waited: the bounded wait at least (a
        # busy host may add a tenth; no upper bound is asserted on timing)
        said = re.match(r"copy pool 'db' is busy: another run holds %s \(waited ([0-9.]+) s\)"
                        % re.escape(other.lock_path("db")), msg)
        assert said and float(said.group(1)) >= 0.3, msg
        assert "the holder is pid %d" % os.getpid() in msg
        assert info.value.details["holder_pid"] == os.getpid()
        assert waited >= 0.3
        # save() takes the lock itself, so it is refused the same way
        with pytest.raises(PoolBusy):
            other.save(state(sources=("vg/changed",)))
        with pytest.raises(PoolBusy):
            other.remove("db")
    assert other.read_raw("db") == before
    with other.locked("db"):  # free again once the holder let go
        other.save(state(sources=("vg/changed",)))
    assert other.load("db") == state(sources=("vg/changed",))


def test_the_lock_is_per_pool(state_dir):
    a = StateStore(state_dir, lock_timeout=0)
    with Holder(StateStore(state_dir), "one"):
        with a.locked("two"):
            a.save(state("two"))
        with pytest.raises(PoolBusy):
            with a.locked("one"):
                pass


def test_zero_timeout_fails_at_once(state_dir):
    other = StateStore(state_dir, lock_timeout=0)
    with Holder(StateStore(state_dir)):
        start = time.monotonic()
        with pytest.raises(PoolBusy) as info:
            with other.locked("db"):
                pass
        assert "(waited 0 s)" in info.value.msg
        assert time.monotonic() - start < 5


def test_a_waiter_gets_the_lock_when_the_holder_finishes_within_the_timeout(state_dir):
    holder = Holder(StateStore(state_dir))
    waiter = StateStore(state_dir, lock_timeout=20)
    with holder:
        threading.Timer(0.3, holder.release.set).start()
        start = time.monotonic()
        with waiter.locked("db"):
            waited = time.monotonic() - start
    assert waited >= 0.2


def test_another_thread_of_the_same_store_is_serialized_too(state_dir):
    store = StateStore(state_dir, lock_timeout=0.2)
    errors = []

    def other_thread():
        try:
            with store.locked("db"):
                errors.append("entered")
        except PoolBusy as exc:
            errors.append(exc)

    with store.locked("db"):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join(10)
    assert len(errors) == 1 and isinstance(errors[0], PoolBusy)


def test_locked_is_reentrant_and_save_inside_it_does_not_wait(state_dir):
    store = StateStore(state_dir, lock_timeout=0)
    with store.locked("db"):
        with store.locked("db"):
            store.save(state())
        store.save(state(sources=("vg/b",)))
        assert store.holds_lock("db")
        assert store.remove("db")
    assert not store.holds_lock("db")
    # released for real: another store gets it at once
    with StateStore(state_dir, lock_timeout=0).locked("db"):
        pass


def test_lock_file_that_is_a_symlink_is_refused(state_dir, tmp_path):
    store = StateStore(state_dir)
    store.save(state())
    os.unlink(store.lock_path("db"))
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    os.symlink(str(target), store.lock_path("db"))
    with pytest.raises(StateFileError) as info:
        with store.locked("db"):
            pass
    assert "cannot open the lock file '%s'" % store.lock_path("db") in info.value.msg


def test_the_lock_is_freed_when_the_holder_is_sigkilled(state_dir):
    store = StateStore(state_dir, lock_timeout=0.3)
    store.save(state())
    before = store.read_raw("db")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: hold the lock "forever"
        try:
            os.close(r)
            with StateStore(state_dir).locked("db"):
                os.write(w, b"locked")
                time.sleep(60)
        finally:
            os._exit(0)
    try:
        os.close(w)
        assert os.read(r, 16) == b"locked"
        with pytest.raises(PoolBusy) as info:
            with store.locked("db"):
                pass
        assert info.value.details["holder_pid"] == pid
        assert "the holder is pid %d" % pid in info.value.msg
    finally:
        os.kill(pid, signal.SIGKILL)
        dummy, status = os.waitpid(pid, 0)
        os.close(r)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    start = time.monotonic()
    with StateStore(state_dir, lock_timeout=0).locked("db"):
        store_free = time.monotonic() - start
    assert store_free < 5
    assert store.read_raw("db") == before


def test_concurrent_writers_lose_no_update(state_dir):
    """Several processes each load, change and save the same pool under the
    lock: every change survives (no lost update, no torn file)."""
    store = StateStore(state_dir)
    store.save(state())
    workers, rounds = 3, 15
    pids = []
    for w in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                s = StateStore(state_dir, lock_timeout=60)
                for dummy in range(rounds):
                    with s.locked("db"):
                        cur = s.load("db")
                        d = replace(cur.definition, sources=cur.definition.sources + ("vg/w%d" % w,))
                        s.save(replace(cur, definition=d, last_version=cur.last_version + 1))
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        dummy, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    final = store.load("db")
    assert final.last_version == workers * rounds
    for w in range(workers):
        assert final.definition.sources.count("vg/w%d" % w) == rounds
