# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy technologies: the one table of what each one is.

Everything else that lists technologies derives from ``TABLE``: the model's
constants (``TECHNOLOGIES``, ``SNAPSHOT_TECHNOLOGIES``,
``LISTED_TARGET_TECHNOLOGIES``), the backend registry (``_backends``), the
definition check, ``copy_pool``'s argument spec. What cannot import Python
(the rotation role's argument specs and package defaults, ``copy_pool``'s
DOCUMENTATION, the docs) is compared with it by
tests/unit/plugins/module_utils/test_technologies.py, which fails when one
of them disagrees. Adding a technology: a row here, its backend class in
``_<family>.py``, then what that test names.

Plain Python, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections import namedtuple

#: ``name``: the value of ``technology``. ``family``: the backend module
#: ``_<family>.py`` whose ``BACKENDS`` holds the class that serves it.
#: ``snapshot``: a snapshot technology, whose target pools are implied
#: ("01", "02", ...) and whose targets are named by the backend; the others
#: copy into targets the user lists in ``target_pools``. ``snapshot_size``:
#: takes the ``snapshot_size`` option. ``packages``: the Debian packages of
#: its tools (the rotation role's ``rotation_packages_by_technology``).
Technology = namedtuple("Technology", ("name", "family", "snapshot", "snapshot_size", "packages"))

TABLE = (
    Technology("lvm_snapshot", "lvm", True, True, ("lvm2",)),
    Technology("lvm_thin", "lvm", True, False, ("lvm2", "thin-provisioning-tools")),
    Technology("lvm_clone", "lvm", False, False, ("lvm2",)),
    Technology("zfs_snapshot", "zfs", True, False, ("zfsutils-linux",)),
    Technology("zfs_send", "zfs", False, False, ("zfsutils-linux",)),
    Technology("btrfs_snapshot", "btrfs", True, False, ("btrfs-progs",)),
    Technology("btrfs_send", "btrfs", False, False, ("btrfs-progs",)),
)

BY_NAME = dict((t.name, t) for t in TABLE)

TECHNOLOGIES = tuple(t.name for t in TABLE)
SNAPSHOT_TECHNOLOGIES = frozenset(t.name for t in TABLE if t.snapshot)
LISTED_TARGET_TECHNOLOGIES = frozenset(t.name for t in TABLE if not t.snapshot)
SNAPSHOT_SIZE_TECHNOLOGIES = frozenset(t.name for t in TABLE if t.snapshot_size)
FAMILIES = tuple(sorted(set(t.family for t in TABLE)))


def names(predicate=None):
    """The technologies (in table order) whose row satisfies ``predicate``."""
    return [t.name for t in TABLE if predicate is None or predicate(t)]


def spoken(items, last="or"):
    """``a, b or c``: a list of names for a message."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return "%s %s %s" % (", ".join(items[:-1]), last, items[-1])


def packages_by_technology():
    """``{technology: [package, ...]}``: the rotation role's default."""
    return dict((t.name, list(t.packages)) for t in TABLE)
