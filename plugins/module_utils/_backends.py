# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backend serves which technology.

Imports are static on purpose: Ansible ships a module's module_utils by
following its imports, so a dynamic import would leave a backend behind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend, BtrfsSnapshotBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
    LvmCloneBackend,
    LvmSnapshotBackend,
    LvmThinBackend,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import TECHNOLOGIES
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend

BACKENDS = {
    "lvm_snapshot": LvmSnapshotBackend,
    "lvm_thin": LvmThinBackend,
    "lvm_clone": LvmCloneBackend,
    "zfs_snapshot": ZfsSnapshotBackend,
    "zfs_send": ZfsSendBackend,
    "btrfs_snapshot": BtrfsSnapshotBackend,
    "btrfs_send": BtrfsSendBackend,
}


def backend_factory(runner):
    """A ``backend_for(technology)`` callable for RecordEngine, sharing ``runner``."""

    def backend_for(technology):
        try:
            cls = BACKENDS[technology]
        except KeyError:
            raise InvalidInput(
                "technology %r is not supported; use one of: %s" % (technology, ", ".join(TECHNOLOGIES))
            )
        return cls(runner=runner)

    return backend_for
