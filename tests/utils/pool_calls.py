# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine calls a test's world makes on its copy pool, one session each,
as the modules make them: shared by the real-storage worlds (tests/real)
and the replays of them (tests/unit), which must call alike for their
recorded commands to match. A world has ``engine``, ``store``, ``name``
and, for ``definition``, ``technology``, ``sources``, ``versions``,
``target_pools`` and ``hooks`` (pre, post)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool


class PoolCalls:
    def make_target_pools(self, count=2, per_pool=4):
        """``count`` target pools tp1, tp2, ... of ``per_pool`` directories
        t1, t2, ... each on the world's target filesystem (``dst``), 0755
        whatever the umask (a target another user can write is refused)."""
        tps = []
        for i in range(count):
            vols = []
            for j in range(per_pool):
                d = self.dst.path("tp%d" % (i + 1), "t%d" % (j + 1))
                os.makedirs(d, exist_ok=True)
                os.chmod(d, 0o755)
                vols.append(d)
            tps.append(TargetPool("tp%d" % (i + 1), tuple(vols)))
        self.target_pools = tuple(tps)

    def definition(self):
        return PoolDefinition(
            name=self.name, technology=self.technology, sources=tuple(self.sources), versions=self.versions,
            target_pools=self.target_pools if self.technology == "btrfs_send" else (),
            pre_copy_hooks=tuple(self.hooks[0]), post_copy_hooks=tuple(self.hooks[1]))

    def define(self):
        with self.engine.session(self.name) as s:
            return s.plan_define(self.definition()).apply()

    def copy(self, label=None):
        with self.engine.session(self.name) as s:
            return s.plan_copy(label=label).apply()

    def verify(self, repair=False):
        with self.engine.session(self.name) as s:
            return s.plan_verify(repair=repair).apply()

    def restore(self, version, volumes=None):
        with self.engine.session(self.name) as s:
            return s.plan_restore(version, volumes=volumes).apply()

    def state(self):
        return self.store.load(self.name)

    def copy_path(self, pair):
        """Where a pair's copy is: the target itself (btrfs_snapshot) or
        the source's name inside the target directory (btrfs_send)."""
        if self.technology == "btrfs_snapshot":
            return pair.target
        return os.path.join(pair.target, os.path.basename(pair.source))
