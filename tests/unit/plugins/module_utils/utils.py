# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the engine unit tests: volumes on the in-memory backend and a
definition that is valid there, to vary field by field."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1 << 30
TP2 = (TargetPool("01", ("a", "b")), TargetPool("02", ("c", "d")))


def env(tmp_path, technology="lvm_clone"):
    """Sources A, B and targets a-d of 1 GiB; returns (backend, engine)."""
    be = MemoryBackend(technology)
    for name in ("A", "B", "a", "b", "c", "d"):
        be.add_volume(name, size=GIB)
    return be, make_engine(tmp_path / "state", be)


def good(**kw):
    """Copy pool P of sources A, B, versions 2 over TP2; ``kw`` overrides fields."""
    fields = dict(name="P", technology="lvm_clone", sources=("A", "B"), versions=2, target_pools=TP2)
    fields.update(kw)
    return PoolDefinition(**fields)


def define_and_copy(s, be):
    """In session ``s``: define P (``good()``), write A1 and B1 to sources A
    and B, take version 1."""
    s.plan_define(good()).apply()
    be.set_data("A", "A1")
    be.set_data("B", "B1")
    return s.plan_copy().apply()


def snapshot_env(tmp_path, technology, sources, versions=2):
    """The in-memory backend of a snapshot technology with ``sources`` (the
    default size), an engine over it, and copy pool P of ``sources``
    keeping ``versions``; returns (backend, engine, definition)."""
    be = MemoryBackend(technology)
    for name in sources:
        be.add_volume(name)
    return be, make_engine(tmp_path / "state", be), PoolDefinition("P", technology, tuple(sources), versions)


def without_identities(state):
    """``state`` as a state file from before identities were kept: its one
    replication record with pairs that do not know their copy's identity."""
    rec = state.replication_records[0]
    bare = rec.__class__(rec.kind, rec.version, rec.target_pool, rec.created,
                         tuple(CopyPair(p.source, p.target) for p in rec.pairs), rec.label, rec.status)
    return state.__class__(state.definition, (bare,), (), state.last_version)


def repair_learns_identities(engine):
    """verify_records repair=true on pool P: consistent, yet a change (the
    identities it learns are written)."""
    with engine.session("P") as s:
        plan = s.plan_verify(repair=True)
        assert plan.result == {"consistent": True, "findings": []} and plan.changed
        plan.apply()
