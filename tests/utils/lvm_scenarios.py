# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scenarios of the LVM tests written once, for the real run
(tests/real/test_lvm.py, in the User-mode Linux guest) and its replay
(tests/unit/plugins/module_utils/test_replay_lvm.py: the recorded answers,
each command's argv asserted, the LVs' data as files)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CapacityError, CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import LvmCloneBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.tests.utils.tools_env import MiB


def clone_failure_and_foreign_target(runner, make_lv, write, read, engine, lvs=None):
    """lvm_clone: a too small target is refused with the numbers, a target
    holding somebody's data is never written, and the engine refuses a
    definition naming it. ``make_lv(name, mib)``: the LV made in the test's
    VG; ``write``/``read``: an LV's data; ``engine``: a RecordEngine over
    ``runner``; ``lvs()``: the VG's LVs as listed, to show nothing changed
    (None where the listing is not replayed)."""
    sources = [make_lv(n, 8) for n in ("a", "b", "c")]
    for s_ in sources:
        write(s_, "v1 %s" % s_)
    good = [make_lv("ta", 8), make_lv("tb", 12)]
    small = make_lv("tsmall", 4)
    foreign = make_lv("tforeign", 8)
    write(foreign, "the user's own data")
    b = LvmCloneBackend(runner)
    vols = b.discover(good + [small, foreign])
    assert vols[foreign].foreign_data is True and vols[good[0]].foreign_data is False
    d = PoolDefinition(name="cl", technology="lvm_clone", sources=tuple(sources), versions=1,
                       target_pools=(TargetPool(name="01", volumes=tuple(good + [small, foreign])),))
    lvs_before = lvs() if lvs else None
    # too small: refused before any copy, with the numbers
    pairs = [CopyPair(sources[0], good[0]), CopyPair(sources[1], good[1]), CopyPair(sources[2], small)]
    with pytest.raises(CapacityError) as exc:
        b.check_capacity(d, pairs, [], vols)
    assert small in exc.value.msg and str(4 * MiB) in exc.value.msg and str(8 * MiB) in exc.value.msg
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 1, pairs, CopyWindow(d, runner))
    assert exc.value.details.get("target") == small
    # a target holding data we do not own: never written
    pairs[2] = CopyPair(sources[2], foreign)
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 1, pairs, CopyWindow(d, runner))
    assert "does not own" in exc.value.msg and exc.value.details.get("target") == foreign
    assert read(foreign) == "the user's own data"
    if lvs:
        assert lvs() == lvs_before
    # through the engine the foreign target is never selected (or is reported)
    with engine.session("cl") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_define(d).apply()
    assert foreign in exc.value.msg
    assert read(foreign) == "the user's own data"
