# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rotation_expand
short_description: The copy pools of one run of the rotation role
version_added: 0.1.0
author:
  - pitcopy developers (@pitcopy)
description:
  - Turns the rotation role's O(_input) (C(rotation_pools)) into one copy pool per C(keep) pool and one per tier of a
    C(tiered) pool, named C(<name>-<tier>); a tier named C(daily), C(weekly), C(monthly) or C(yearly) takes its period
    from its name.
  - Checks what the role's argument specs cannot express, and the calendar day of the run. The role stops, printing
    RV(_value.problems), when there are any.
  - Used by the role M(pitcopy.versions.rotation) (C(tasks/_expand.yml)); it runs on the controller.
options:
  _input:
    description: The C(rotation_pools) of the role, each a dict as its argument specs describe.
    type: list
    elements: dict
    required: true
  only_pools:
    description: Restrict the run to these names of O(_input) (C(rotation_only_pools)); empty means all.
    type: list
    elements: str
    default: []
  date:
    description:
      - The calendar day of the run (C(rotation_date)) as C(YYYY-MM-DD). It must be a real day; an impossible one
        (C(2026-11-31), C(9999-99-99)) is a problem.
      - Empty means today on the controller's clock.
    type: str
    default: ""
seealso:
  - plugin: pitcopy.versions.rotation_due
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Work out the copy pools of this run
  ansible.builtin.set_fact:
    run: "{{ rotation_pools | pitcopy.versions.rotation_expand(only_pools=[], date='2026-11-25') }}"
  vars:
    rotation_pools:
      - name: pg
        technology: lvm_thin
        sources: [vg0/pgdata]
        policy: tiered
        tiers:
          - {name: daily, keep: 7}
          - {name: weekly, keep: 4}
# run.pools: pg-daily (every: day, versions: 7) and pg-weekly (every: week, versions: 4)

- name: Stop on what is wrong
  ansible.builtin.assert:
    that: run.problems | length == 0
    fail_msg: "{{ run.problems | join(' ') }}"
"""

RETURN = r"""
_value:
  description: The day and copy pools of the run, and what is wrong with the inputs.
  type: dict
  contains:
    today:
      description: The calendar day of the run, C(YYYY-MM-DD); empty when O(date) is not a calendar day.
      type: str
      sample: "2026-11-25"
    pools:
      description:
        - The copy pools, in the order of O(_input) and its tiers. Each has C(name), C(base) (the O(_input) entry's
          name), C(tier) (empty for a C(keep) pool), C(versions), C(every) (V(run), V(day), V(week), V(month),
          V(year)), C(state), C(remove_copies) and the options passed to M(pitcopy.versions.copy_pool)
          (C(technology), C(sources), C(target_pools), C(snapshot_size), C(consistency), C(pre_copy_hooks),
          C(post_copy_hooks), C(max_age), C(retention), C(datasets), C(ssh), C(transfer)). C(ssh) is null for a
          copy pool none of whose target pools names a C(host) (a tier with only local target pools).
      type: list
      elements: dict
    problems:
      description: Messages naming each wrong value and what is accepted; empty when the run can go on.
      type: list
      elements: str
      sample: []
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.pitcopy.versions.plugins.plugin_utils._rotation import expand


def rotation_expand(rotation_pools, only_pools=None, date=""):
    if not isinstance(rotation_pools, list) or not all(isinstance(p, Mapping) for p in rotation_pools):
        raise AnsibleFilterError("rotation_expand takes rotation_pools, a list of dicts; got %r" % (rotation_pools,))
    return expand(rotation_pools, only_pools=only_pools, rotation_date=date)


class FilterModule(object):
    def filters(self):
        return {"rotation_expand": rotation_expand}
