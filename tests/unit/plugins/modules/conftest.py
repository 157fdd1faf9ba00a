# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import ModuleHarness

GIB = 1 << 30


@pytest.fixture
def clone_host(tmp_path):
    """Tables 2.1/3.6 of the spec: sources A, B; target pools 01 = a, b and 02 = c, d."""
    be = MemoryBackend("lvm_clone")
    for name in ("vg/A", "vg/B", "vg/a", "vg/b", "vg/c", "vg/d"):
        be.add_volume(name, size=GIB)
    be.set_data("vg/A", "A@0")
    be.set_data("vg/B", "B@0")
    return ModuleHarness(tmp_path / "state", be, window_factory=SimpleWindow)


@pytest.fixture
def snap_host(tmp_path):
    be = MemoryBackend("btrfs_snapshot")
    for name in ("/srv/data/db", "/srv/data/www"):
        be.add_volume(name, size=GIB)
    return ModuleHarness(tmp_path / "state", be, window_factory=SimpleWindow)
