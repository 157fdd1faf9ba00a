# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenZFS backends: zfs_snapshot and zfs_send (work in progress)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import Backend


class ZfsSnapshotBackend(Backend):
    technology = "zfs_snapshot"
    implied_targets = True


class ZfsSendBackend(Backend):
    technology = "zfs_send"
