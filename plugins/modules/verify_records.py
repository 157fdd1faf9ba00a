#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: verify_records
short_description: Compare the records of a copy pool with what exists on the host, and optionally repair them
version_added: 0.1.0
description:
  - Checks every replication record and pre-pairing record of a copy pool against the storage on the host and
    reports each discrepancy as a finding. Problems found include a missing source, a missing target, a missing
    or invalid copy (for example an overflowed classic snapshot), a target that is no longer compatible, a copy that
    carries this collection's mark but has no record, and an interrupted copy.
  - Changes nothing unless O(repair=true) and not in check mode.
  - With O(repair=true) what can be fixed safely is fixed. An interrupted copy is finished or rolled back (one
    interrupted while committing is always finished, with the copies that exist), an interrupted delete, restore or
    pool removal is finished, records of copies that are gone are dropped, and pre-pairing records are re-paired. Each finding's RV(findings[].action)
    says what was done or what is left for a human.
author:
  - pitcopy developers (@pitcopy)
extends_documentation_fragment:
  - pitcopy.versions.common
  - pitcopy.versions.common.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode with O(repair=true) the findings say what would be repaired and C(changed) whether anything would be.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  pool:
    description:
      - Name of an existing copy pool (see M(pitcopy.versions.copy_pool)).
    type: str
    required: true
  repair:
    description:
      - Fix what can be fixed safely. Without it the module only reports.
    type: bool
    default: false
seealso:
  - module: pitcopy.versions.copy_pool_info
  - module: pitcopy.versions.copy_version
"""

EXAMPLES = r"""
- name: Check that the records of the web pool match the host
  pitcopy.versions.verify_records:
    pool: web
  register: check

- name: Stop when the records and the host disagree
  ansible.builtin.assert:
    that: check.consistent
    fail_msg: "{{ check.findings }}"

- name: Repair what can be repaired safely
  pitcopy.versions.verify_records:
    pool: offsite
    repair: true
"""

RETURN = r"""
consistent:
  description:
    - Whether the records and the host agree (before any repair).
  returned: success
  type: bool
  sample: true
findings:
  description:
    - One entry per discrepancy; empty when RV(consistent) is true.
  returned: success
  type: list
  elements: dict
  contains:
    record:
      description: V(replication) or V(prepairing); the kind of record concerned.
      type: str
      sample: replication
    version:
      description: The copy version of the record, or null for a finding that belongs to no record.
      type: int
      sample: 2
    source:
      description: The source volume concerned, or null.
      type: str
      sample: /srv/data/db
    target:
      description: The target volume concerned, or null.
      type: str
      sample: /srv/data/.pitcopy/web/02/db
    problem:
      description: What is wrong, in words.
      type: str
      sample: missing copy
    action:
      description: What the repair did or would do, or what is left for a human.
      type: str
      sample: none (report only)
"""

from ansible_collections.pitcopy.versions.plugins.module_utils._module import PitcopyModule, check_no_control_chars


def validate(params):
    check_no_control_chars(params, ("pool",))


def main():
    module = PitcopyModule(
        argument_spec=dict(
            pool=dict(type="str", required=True),
            repair=dict(type="bool", default=False),
        ),
        validate=validate,
    )
    params = module.params
    module.run_plan(params["pool"], lambda session: session.plan_verify(repair=params["repair"]))


if __name__ == "__main__":
    main()
