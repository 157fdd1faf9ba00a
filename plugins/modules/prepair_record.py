#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: prepair_record
short_description: Choose the targets of future copy versions ahead of time (pre-pairing records)
version_added: 0.1.0
description:
  - Target selection scans the candidate targets and checks each one (available, compatible type, large enough,
    supports the technology, holds no data we do not own). Doing it outside the copy window keeps the copy window short.
  - With O(state=present) a pre-pairing record is made for each of the next O(versions) copy versions that has none,
    and records that are no longer valid (a source or target left the pool) are re-paired.
    A still valid pre-pairing record is left as it is.
  - With O(state=absent) every pre-pairing record of the copy pool is dropped; the next copy selects its targets itself.
  - Fails, naming each source and the reason every candidate target was rejected, when a source has no eligible
    target, unless O(allow_unpaired=true).
author:
  - pitcopy developers (@pitcopy)
extends_documentation_fragment:
  - pitcopy.versions.common
  - pitcopy.versions.common.attributes
attributes:
  check_mode:
    support: full
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
  versions:
    description:
      - How many upcoming copy versions get a pre-pairing record. An integer of at least 1.
    type: int
    default: 1
  state:
    description:
      - V(present) makes sure the pre-pairing records exist and are valid, V(absent) drops them.
    type: str
    choices: [present, absent]
    default: present
  allow_unpaired:
    description:
      - Record what could be paired and report the sources without an eligible target in RV(unpaired) instead of failing.
    type: bool
    default: false
seealso:
  - module: pitcopy.versions.copy_pool
  - module: pitcopy.versions.copy_version
"""

EXAMPLES = r"""
- name: Pre-pair the targets of the next copy version, outside the copy window
  pitcopy.versions.prepair_record:
    pool: offsite

- name: Pre-pair the next two versions and report, rather than fail on, sources without a target
  pitcopy.versions.prepair_record:
    pool: offsite
    versions: 2
    allow_unpaired: true
  register: prepaired

- name: Show the sources left without a target
  ansible.builtin.debug:
    var: prepaired.unpaired

- name: Drop the pre-pairing records of a snapshot pool
  pitcopy.versions.prepair_record:
    pool: web
    state: absent
"""

RETURN = r"""
records:
  description:
    - The pre-pairing records of the copy pool after the task, oldest version first.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The future copy version this record is for.
      type: int
      sample: 3
    target_pool:
      description: The target pool that copy version will use.
      type: str
      sample: "01"
    created:
      description: When the record was made (ISO 8601, UTC).
      type: str
      sample: "2026-11-25T22:40:00Z"
    pairs:
      description: The chosen copy pairs, in source order.
      type: list
      elements: dict
      contains:
        source:
          description: Source volume.
          type: str
          sample: /srv/data/db
        target:
          description: Target volume chosen for it.
          type: str
          sample: /srv/backup/a
unpaired:
  description:
    - Sources for which no eligible target was found, with the reason each candidate was rejected.
    - Only non-empty when O(allow_unpaired=true) (otherwise the task fails and returns the same list).
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    source:
      description: Source volume without a target.
      type: str
      sample: /srv/data/www
    target_pool:
      description: The target pool that was searched.
      type: str
      sample: "02"
    reasons:
      description: One line per rejected candidate target.
      type: list
      elements: str
      sample: ["/srv/backup/d: not on a btrfs file system"]
removed_records:
  description:
    - With O(state=absent), the pre-pairing records that were dropped (same shape as RV(records)).
  returned: when O(state=absent)
  type: list
  elements: dict
  sample: []
"""

from ansible_collections.pitcopy.versions.plugins.module_utils._module import (
    PitcopyModule,
    check_no_control_chars,
    check_positive,
)


def validate(params):
    check_no_control_chars(params, ("pool",))
    check_positive(params, "versions")


def main():
    module = PitcopyModule(
        argument_spec=dict(
            pool=dict(type="str", required=True),
            versions=dict(type="int", default=1),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            allow_unpaired=dict(type="bool", default=False),
        ),
        validate=validate,
    )
    params = module.params
    if params["state"] == "present":
        module.run_plan(
            params["pool"],
            lambda session: session.plan_prepair(versions=params["versions"], allow_unpaired=params["allow_unpaired"]),
        )
    else:
        module.run_plan(params["pool"], lambda session: session.plan_drop_prepairing())


if __name__ == "__main__":
    main()
