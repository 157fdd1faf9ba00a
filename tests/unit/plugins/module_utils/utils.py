# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the engine unit tests: volumes on the in-memory backend and a
definition that is valid there, to vary field by field."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
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
