# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rotation_to_define
short_description: The copy pools that copy_pool has to define or remove in a run of the rotation role
version_added: 0.1.0
author:
  - pitcopy developers (@pitcopy)
description:
  - Names the copy pools of O(_input) for which M(pitcopy.versions.copy_pool) would change something - a new pool, a
    pool to remove that still has records, and a pool whose definition differs from its records.
  - Whether a definition differs is decided as M(pitcopy.versions.copy_pool) decides it, with its argument spec
    (defaults and type conversion) and the definition it builds; options it would refuse count as a change, so that
    it runs and names the problem.
  - The role calls M(pitcopy.versions.copy_pool) only for these pools; the module is idempotent, but one module run
    per unchanged pool costs time in a run over many pools.
options:
  _input:
    description: The copy pools of the run, as P(pitcopy.versions.rotation_expand#filter) returns them in C(pools).
    type: list
    elements: dict
    required: true
  stored:
    description: The pools as M(pitcopy.versions.copy_pool_info) returns them in C(pools).
    type: list
    elements: dict
    required: true
seealso:
  - module: pitcopy.versions.copy_pool
  - plugin: pitcopy.versions.rotation_expand
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read the records
  pitcopy.versions.copy_pool_info:
  register: info

- name: Find the copy pools whose definition changed
  ansible.builtin.set_fact:
    to_define: "{{ run.pools | pitcopy.versions.rotation_to_define(info.pools) }}"
"""

RETURN = r"""
_value:
  description: Names of the copy pools to pass to M(pitcopy.versions.copy_pool), in the order of O(_input).
  type: list
  elements: str
  sample: [pg-daily]
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.pitcopy.versions.plugins.plugin_utils._rotation import to_define


def rotation_to_define(pools, stored):
    for what, value in (("the copy pools", pools), ("stored", stored)):
        if not isinstance(value, list) or not all(isinstance(p, Mapping) for p in value):
            raise AnsibleFilterError("rotation_to_define takes %s as a list of dicts; got %r" % (what, value))
    return to_define(pools, stored)


class FilterModule(object):
    def filters(self):
        return {"rotation_to_define": rotation_to_define}
