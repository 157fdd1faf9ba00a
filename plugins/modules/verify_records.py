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
    carries this collection's mark but has no record, an interrupted copy, and a held version whose hold the storage
    no longer enforces (V(hold_not_enforced), see M(pitcopy.versions.copy_version)
    O(pitcopy.versions.copy_version#module:state=held)), and a version recorded as mounted for browsing whose mount
    is gone (V(stale_mount), see O(pitcopy.versions.copy_version#module:state=mounted); a repair leaves it to
    O(pitcopy.versions.copy_version#module:state=unmounted), which clears the record), and a file restore
    (O(pitcopy.versions.copy_version#module:paths)) that was killed (V(interrupted_restore_paths)) with what it left
    beside each destination (V(restore_leftover)).
  - The storage media inventory (versions dumped with O(pitcopy.versions.copy_version#module:state=dumped)) is
    checked too. Without O(verify_media) only that each stream exists with the size the inventory records (cheap);
    with O(verify_media=true) every stream is read and its sha256 compared (V(media_missing), V(media_corrupt), each
    naming the medium and the stream). A temporary file a killed dump left in C(<medium>/<pool>/v<version>/)
    (C(.pitcopy-dump.<pid>.*)) is V(media_leftover) and a killed dump's journal V(interrupted_dump). A repair
    removes those temporary files and the journal, and never deletes, rewrites or moves a stream; a damaged one is
    left for a human (dump a kept version again, or drop the medium).
  - Changes nothing unless O(repair=true) or O(reseal=true), and not in check mode. Without them it only reads,
    under a shared lock, so it runs beside other readers and on a read-only O(state_dir).
  - With O(repair=true) what can be fixed safely is fixed. An interrupted copy is finished or rolled back (one
    interrupted while committing is always finished, with the copies that exist), an interrupted delete, restore or
    pool removal is finished, a killed file restore's partial copies are removed and what it moved aside is put
    back (only the exact temporary names its journal points at), records of copies that are gone are dropped, pre-pairing records are re-paired, and a
    hold the storage lost is applied again.
    Each finding's RV(findings[].action)
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
  verify_media:
    description:
      - Read every stream of the storage media inventory and compare its sha256 with the inventory (V(media_corrupt)
        when it differs). Without it only each stream's existence and size are checked. Reading takes as long as
        reading the media.
    type: bool
    default: false
  reseal:
    description:
      - Accept a state file that was edited by hand. Such a file has lost its integrity seal and every other run
        refuses it (see C(docs/state-file.md)).
      - The file must still parse with every key of the state file. The module reports what the edit changed
        against the previous generation (C(.<pool>.yml.prev)) in RV(reseal_changes) and, in diff mode, in the diff;
        then, unless in check mode, it rewrites the file with a new seal and goes on to verify the records as usual.
      - The previous generation is left as it was, so the state before the edit can still be put back.
      - A file whose seal is intact is left alone.
      - Only use it after checking the change; a file damaged by a disk or a crash should be recovered from its
        previous generation instead.
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

- name: Accept a state file edited by hand (shows what changed; rewrites it sealed)
  pitcopy.versions.verify_records:
    pool: web
    reseal: true
  diff: true

- name: Repair what can be repaired safely
  pitcopy.versions.verify_records:
    pool: offsite
    repair: true
"""

RETURN = r"""
consistent:
  description:
    - Whether the records and the host agree (before any repair).
    - A V(stale) finding alone (see the pool's O(pitcopy.versions.copy_pool#module:max_age)) does not make it false, since
      the records may be right about copies that stopped being taken.
    - Nor does a V(base_missing) finding (C(btrfs_send), C(zfs_send)), since a kept copy without a usable base only means that the
      next version into its target pool is sent in full.
  returned: success
  type: bool
  sample: true
findings:
  description:
    - One entry per discrepancy, and a V(stale) entry when the pool has a O(pitcopy.versions.copy_pool#module:max_age)
      and its newest valid version is older (or none is valid); empty when RV(consistent) is true and the pool is fresh.
  returned: success
  type: list
  elements: dict
  contains:
    record:
      description: V(replication), V(prepairing) or V(media) (the storage media inventory); the kind of record concerned.
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
      description:
        - What is wrong, in words, for example V(copy_missing), V(stale) or V(hold_not_enforced) (a held version's copy
          that the storage no longer holds, see docs/troubleshooting.md).
        - C(btrfs_send) and C(zfs_send) incremental sends (docs/offsite.md) - V(base_missing), a kept copy whose base on
          the source side is gone or is not the snapshot the copy was received from (the next copy into its target
          pool is sent in full);
          V(unneeded_base), a base that no kept version needs (repair releases it).
        - A file restore killed part way - V(interrupted_restore_paths) (its journal), and V(restore_leftover) for each
          C(.pitcopy-restore.<name>.<pid>) (a partial copy) or C(.pitcopy-restore.old.<name>.<pid>) (what the
          destination held, moved aside) beside a destination, its path in RV(findings[].target); see
          docs/troubleshooting.md.
        - Media - V(media_missing) and V(media_corrupt) (RV(findings[].target) is the stream's path, the action names
          the medium), V(media_leftover) (a dump's temporary file, or the work directory of a killed restore from
          media), V(interrupted_dump).
      type: str
      sample: missing copy
    action:
      description: What the repair did or would do, or what is left for a human.
      type: str
      sample: none (report only)
resealed:
  description:
    - Whether the hand-edited state file was (in check mode, would be) rewritten with a new seal.
  returned: when O(reseal=true)
  type: bool
  sample: true
reseal_changes:
  description:
    - "What the hand edit changed against the previous generation, one C(place: before -> after) line each (at most 100)."
    - Empty when there is no previous generation to compare with (a warning says so).
  returned: when O(reseal=true)
  type: list
  elements: str
  sample: ["replication_records[0].label: 'nightly' -> 'before-upgrade'"]
"""

from ansible_collections.pitcopy.versions.plugins.module_utils._module import PitcopyModule, check_no_control_chars


def validate(params):
    check_no_control_chars(params, ("pool",))


def main():
    module = PitcopyModule(
        argument_spec=dict(
            pool=dict(type="str", required=True),
            repair=dict(type="bool", default=False),
            reseal=dict(type="bool", default=False),
            verify_media=dict(type="bool", default=False),
        ),
        validate=validate,
    )
    params = module.params
    module.run_verify(params["pool"], repair=params["repair"], reseal=params["reseal"],
                      verify_media=params["verify_media"])


if __name__ == "__main__":
    main()
