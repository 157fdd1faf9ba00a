# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options, requirements and attributes shared by every pitcopy module."""

    # Keep in sync with SHARED_ARGUMENT_SPEC in plugins/module_utils/_module.py.
    DOCUMENTATION = r"""
options:
  state_dir:
    description:
      - Directory on the managed host that holds the state of the copy pools, one YAML file per copy pool.
      - Must be an absolute path. It is created with mode C(0700) when missing.
      - A I(state_dir) that is a symbolic link, not a directory, or writable by group or others is refused.
    type: path
    default: /var/lib/pitcopy
  lock_timeout:
    description:
      - How many seconds to wait for the copy pool's lock when another run is working on the same copy pool.
      - After that the task fails and reports the copy pool as busy; nothing is changed.
      - Runs that only read (M(pitcopy.versions.copy_pool_info), M(pitcopy.versions.verify_records) without
        O(pitcopy.versions.verify_records#module:repair) or O(pitcopy.versions.verify_records#module:reseal), and
        check mode) share the lock with each other and only wait for a run that changes the copy pool.
    type: float
    default: 30.0
requirements:
  - PyYAML on the managed host
notes:
  - Run as root (C(become=true)); the storage tools (C(lvm2), C(zfsutils-linux), C(btrfs-progs)) need it.
  - Supports Linux managed hosts with Python 3.9 or newer.
  - The storage tools run with argument lists and the C locale, never through a shell.
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description:
      - Can run in check mode and return the changed status, and what would change, without modifying the host.
      - Read-only discovery commands still run in check mode, so the prediction reflects the host.
  diff_mode:
    description:
      - Returns the records before and after the change (or the predicted change in check mode) in diff mode.
  idempotent:
    description:
      - When run twice with the same options, the second run reports no change.
"""
