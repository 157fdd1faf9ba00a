# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM backends: lvm_snapshot, lvm_thin, lvm_clone (work in progress: the
class names are final, the implementation lands next)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import Backend


class _LvmBackend(Backend):
    pass


class LvmSnapshotBackend(_LvmBackend):
    technology = "lvm_snapshot"
    implied_targets = True


class LvmThinBackend(_LvmBackend):
    technology = "lvm_thin"
    implied_targets = True


class LvmCloneBackend(_LvmBackend):
    technology = "lvm_clone"
    implied_targets = False
