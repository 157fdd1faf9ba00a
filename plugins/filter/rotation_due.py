# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rotation_due
short_description: Which copy pools take a version on a day of the rotation role
version_added: 0.1.0
author:
  - pitcopy developers (@pitcopy)
description:
  - Decides, for every present copy pool of O(_input) that has records, whether it takes a version on O(today).
  - A pool of period C(run) is due on every run. Otherwise a pool is due when it has no version yet, or when the period
    (day, ISO week, month, year) of O(today) differs from that of its last version and lies after it.
  - The day of a version is the date its label ends in (what the role wrote, so a simulated calendar works), else the
    day it was created.
options:
  _input:
    description: The copy pools of the run, as P(pitcopy.versions.rotation_expand#filter) returns them in C(pools).
    type: list
    elements: dict
    required: true
  records:
    description: The replication records of each copy pool, by pool name (from M(pitcopy.versions.copy_pool_info)).
    type: dict
    required: true
  today:
    description: The calendar day of the run, C(YYYY-MM-DD).
    type: str
    required: true
  label:
    description: The label of versions of pools of period C(run) (C(rotation_label)); empty for none.
    type: str
    default: ""
seealso:
  - plugin: pitcopy.versions.rotation_expand
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Decide which copy pools are due
  ansible.builtin.set_fact:
    due: >-
      {{ run.pools | pitcopy.versions.rotation_due(info.pools | items2dict(key_name='name',
         value_name='replication_records'), today=run.today) }}
# due: [{"name": "pg-daily", "due": true, "label": "daily-2026-11-25", "why": "no version yet"}]
"""

RETURN = r"""
_value:
  description: One entry per present copy pool with records, in the order of O(_input).
  type: list
  elements: dict
  contains:
    name:
      description: The copy pool.
      type: str
      sample: pg-weekly
    due:
      description: Whether it takes a version now.
      type: bool
      sample: false
    label:
      description: The label of the version it takes (C(<daily|weekly|monthly|yearly>-YYYY-MM-DD)), or O(label).
      type: str
      sample: weekly-2026-11-26
    why:
      description: The reason, for the summary.
      type: str
      sample: last version v3 of 2026-11-25 is in this week
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.pitcopy.versions.plugins.plugin_utils._rotation import calendar_day, due


def rotation_due(pools, records, today, label=""):
    if not isinstance(pools, list) or not all(isinstance(p, Mapping) for p in pools):
        raise AnsibleFilterError("rotation_due takes the copy pools as a list of dicts; got %r" % (pools,))
    if not isinstance(records, Mapping):
        raise AnsibleFilterError("rotation_due takes records as a dict of pool names to records; got %r" % (records,))
    if calendar_day(today) is None:
        raise AnsibleFilterError("rotation_due takes today as a calendar day YYYY-MM-DD; got %r" % (today,))
    return due(pools, records, today, label or "")


class FilterModule(object):
    def filters(self):
        return {"rotation_due": rotation_due}
