# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backend serves which technology.

Each family's backend is imported when a pool of that family is first used:
a module run that touches one technology does not compile and execute the
other two backends (seconds per task on a slow host; measured in the
emulated test VM). The imports stay literal ``from ... import`` statements,
inside functions: Ansible finds a module's module_utils by reading its
import statements, wherever they are, so every backend is still shipped.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import TECHNOLOGIES


def _btrfs():
    from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend, BtrfsSnapshotBackend

    return {"btrfs_snapshot": BtrfsSnapshotBackend, "btrfs_send": BtrfsSendBackend}


def _lvm():
    from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
        LvmCloneBackend,
        LvmSnapshotBackend,
        LvmThinBackend,
    )

    return {"lvm_snapshot": LvmSnapshotBackend, "lvm_thin": LvmThinBackend, "lvm_clone": LvmCloneBackend}


def _zfs():
    from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend

    return {"zfs_snapshot": ZfsSnapshotBackend, "zfs_send": ZfsSendBackend}


_FAMILIES = {"btrfs": _btrfs, "lvm": _lvm, "zfs": _zfs}


def backend_class(technology):
    """The backend class of ``technology``; InvalidInput when there is none."""
    load = _FAMILIES.get(str(technology).split("_", 1)[0])
    cls = load().get(technology) if load is not None else None
    if cls is None:
        raise InvalidInput(
            "technology %r is not supported; use one of: %s" % (technology, ", ".join(TECHNOLOGIES))
        )
    return cls


def backend_factory(runner):
    """A ``backend_for(technology)`` callable for RecordEngine, sharing ``runner``."""

    def backend_for(technology):
        return backend_class(technology)(runner=runner)

    return backend_for
