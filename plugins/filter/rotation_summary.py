# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rotation_summary
short_description: The per-host summary of a run of the rotation role
version_added: 0.1.0
author:
  - pitcopy developers (@pitcopy)
description:
  - One line per copy pool of O(_input) - what the run did (or would do, in check mode), which versions the pool keeps
    and which it has pre-paired.
options:
  _input:
    description: The copy pools of the run, as P(pitcopy.versions.rotation_expand#filter) returns them in C(pools).
    type: list
    elements: dict
    required: true
  records:
    description: The replication records of each copy pool after the run, by pool name.
    type: dict
    required: true
  prepairing:
    description: The pre-pairing records of each copy pool after the run, by pool name.
    type: dict
    required: true
  due:
    description: What P(pitcopy.versions.rotation_due#filter) decided.
    type: list
    elements: dict
    default: []
  taken:
    description: The C(results) of the M(pitcopy.versions.copy_version) loop that took the versions that were due.
    type: list
    elements: dict
    default: []
  check_mode:
    description: Whether the run is in check mode (C(ansible_check_mode)).
    type: bool
    default: false
  only_pools:
    description: C(rotation_only_pools), named when there are no copy pools.
    type: list
    elements: str
    default: []
seealso:
  - plugin: pitcopy.versions.rotation_due
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Summarise the run
  ansible.builtin.debug:
    msg: >-
      {{ run.pools | pitcopy.versions.rotation_summary(records=known, prepairing=prepaired, due=due,
         taken=taken.results, check_mode=ansible_check_mode) }}
# ["pg-daily [lvm_thin]: took v1 'daily-2026-11-25' into target pool 01 (pre-copy record: none);
#   kept 1 of 7: v1; pre-paired: v2"]
"""

RETURN = r"""
_value:
  description: The lines of the summary; one saying there are no copy pools when O(_input) is empty.
  type: list
  elements: str
  sample:
    - "pg-weekly [lvm_thin]: not due: last version v3 of 2026-11-25 is in this week; kept 3 of 4: v1 v2 v3; pre-paired: v4"
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.pitcopy.versions.plugins.plugin_utils._rotation import summary


def rotation_summary(pools, records, prepairing, due=None, taken=None, check_mode=False, only_pools=None):
    if not isinstance(pools, list) or not all(isinstance(p, Mapping) for p in pools):
        raise AnsibleFilterError("rotation_summary takes the copy pools as a list of dicts; got %r" % (pools,))
    for what, value in (("records", records), ("prepairing", prepairing)):
        if not isinstance(value, Mapping):
            raise AnsibleFilterError("rotation_summary takes %s as a dict of pool names to records; got %r"
                                     % (what, value))
    return summary(pools, records, prepairing, due_pools=due, taken=taken, check_mode=bool(check_mode),
                   only_pools=only_pools)


class FilterModule(object):
    def filters(self):
        return {"rotation_summary": rotation_summary}
