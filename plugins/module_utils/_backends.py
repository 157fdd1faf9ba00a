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
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import BY_NAME, TECHNOLOGIES


def _btrfs():
    from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BACKENDS

    return BACKENDS


def _lvm():
    from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import BACKENDS

    return BACKENDS


def _zfs():
    from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import BACKENDS

    return BACKENDS


# the backend module of each family of the technology table
_FAMILIES = {"btrfs": _btrfs, "lvm": _lvm, "zfs": _zfs}


def backend_class(technology):
    """The backend class of ``technology``: the one of its family's
    ``BACKENDS`` that names it; InvalidInput when the table has no such
    technology."""
    row = BY_NAME.get(technology) if isinstance(technology, str) else None
    if row is None:
        raise InvalidInput(
            "technology %r is not supported; use one of: %s" % (technology, ", ".join(TECHNOLOGIES))
        )
    return dict((cls.technology, cls) for cls in _FAMILIES[row.family]())[technology]


def backend_factory(runner):
    """A ``backend_for(technology)`` callable for RecordEngine, sharing ``runner``."""

    def backend_for(technology):
        return backend_class(technology)(runner=runner)

    return backend_for
