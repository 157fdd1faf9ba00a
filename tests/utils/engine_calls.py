# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine calls of the LVM and ZFS real-storage tests, one session each
as the modules make them (tests/utils/pool_calls.py is the same for a world
object; these take the engine and the pool's name)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore


def make_engine(state_dir, runner, backends):
    """An engine over ``state_dir`` whose backends (``{technology: class}``)
    run their commands through ``runner``."""
    return RecordEngine(StateStore(str(state_dir)), lambda tech: backends[tech](runner=runner))


def define(engine, d):
    with engine.session(d.name) as s:
        return s.plan_define(d).apply()


def copy(engine, name):
    with engine.session(name) as s:
        return s.plan_copy().apply()


def info(engine, name):
    with engine.session(name) as s:
        return s.info()


def findings(engine, name, repair=False):
    """What verify_records finds (and, with ``repair``, repairs)."""
    with engine.session(name) as s:
        plan = s.plan_verify(repair=repair)
        return plan.apply() if repair else plan.result
