# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal driver of the two-phase copy (what the record engine does),
for tests that take versions through a backend without the engine: the real
ZFS tests (tests/real/test_zfs.py) and their replay
(tests/unit/plugins/module_utils/test_replay_zfs.py) share it, so a replayed
case makes the very calls the real one made."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow


class Driver(object):
    """Takes versions through a backend the way the record engine does:
    capacity check, create_copies in a CopyWindow, promote replacing the
    version that used the same target pool."""

    def __init__(self, backend, definition, runner):
        self.b = backend
        self.d = definition
        self.runner = runner
        self.records = {}  # version -> (target_pool, [CopyPair])
        self.last = 0
        self.windows = []

    def targets_for(self, version, sources):
        tp = self.d.target_pool_for(version)
        if self.b.implied_targets:
            return tp, [CopyPair(s, self.b.implied_target(self.d.name, tp, s)) for s in sources]
        vols = dict((t.name, t.volumes) for t in self.d.target_pools)[tp]
        return tp, [CopyPair(s, vols[i]) for i, s in enumerate(sources)]

    def take(self, sources):
        version = self.last + 1
        tp, pairs = self.targets_for(version, sources)
        replaced_v = [v for v, rec in self.records.items() if rec[0] == tp]
        replaced = [p for v in replaced_v for p in self.records[v][1]]
        vols = self.b.discover(sorted(set([p.source for p in pairs] + [p.target for p in pairs])))
        for p in pairs:
            assert p.source in vols, "source %s not discovered" % p.source
            if not self.b.implied_targets:
                t = vols.get(p.target)
                assert t is not None, "target %s (parent must exist) not discovered" % p.target
                assert not t.foreign_data, "target %s is foreign" % p.target
        self.b.check_capacity(self.d, pairs, replaced, vols)
        outcome = self.b.create_copies(self.d, version, pairs, CopyWindow(self.d, self.runner))
        self.windows.append(outcome.window_ms)
        self.b.promote(self.d, version, pairs, outcome.staged, replaced)
        for v in replaced_v:
            del self.records[v]
        self.records[version] = (tp, pairs)
        self.last = version
        return version, pairs
