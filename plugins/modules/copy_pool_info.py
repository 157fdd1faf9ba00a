#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: copy_pool_info
short_description: List copy pools with their replication and pre-pairing records
version_added: 0.1.0
description:
  - Reads the state of one copy pool, or of every copy pool under O(state_dir), and returns the records.
  - Never changes anything. It takes a shared lock, so it runs beside other readers and on a read-only
    O(state_dir); it waits for a run that is writing the pool's records.
  - When listing every pool, a pool whose state file is refused (damaged, unreadable) is listed as
    C({name, error}) and reported in a warning; the other pools are listed as usual. A damaged pool named in
    O(pool) fails the task.
author:
  - pitcopy developers (@pitcopy)
extends_documentation_fragment:
  - pitcopy.versions.common
  - pitcopy.versions.common.attributes
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: none
    details:
      - This action does not modify state.
  idempotent:
    support: full
options:
  pool:
    description:
      - Name of the copy pool to list. All copy pools when omitted.
    type: str
  dataset:
    description:
      - Name of a dataset of O(pool) (see O(pitcopy.versions.copy_pool#module:datasets)). The pool then also
        returns RV(pools[].dataset), the kept versions that hold it and since when, oldest first.
      - Requires O(pool). A name that is neither in the pool's definition nor in a kept version fails the task,
        naming the pool's datasets.
    type: str
seealso:
  - module: pitcopy.versions.copy_pool
  - module: pitcopy.versions.verify_records
"""

EXAMPLES = r"""
- name: List every copy pool on the host
  pitcopy.versions.copy_pool_info:
  register: all_pools

- name: Show the version chronology of each pool
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.replication_records | map(attribute='version') | list }}"
  loop: "{{ all_pools.pools }}"
  loop_control:
    label: "{{ item.name }}"

- name: Read one copy pool
  pitcopy.versions.copy_pool_info:
    pool: web
  register: web

- name: Which kept versions hold dataset db, and since when
  pitcopy.versions.copy_pool_info:
    pool: web
    dataset: db
  register: db_versions

- name: Say it
  ansible.builtin.debug:
    msg: >-
      versions {{ db_versions.pools[0].dataset.versions | map(attribute='version') | list }}
      hold db, the oldest taken {{ db_versions.pools[0].dataset.since }}
"""

RETURN = r"""
pools:
  description:
    - The copy pools, sorted by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Name of the copy pool.
      type: str
      sample: web
    error:
      description:
        - Only on a pool whose state file was refused, when listing every pool; the entry then has just
          RV(pools[].name) and this message (what is wrong with the file and the way out).
      type: str
      returned: when the pool's state file is refused
      sample: "the state file '/var/lib/pitcopy/web.yml' of copy pool 'web' is refused: its content does not match its seal ..."
    technology:
      description: The copy technology.
      type: str
      sample: btrfs_snapshot
    sources:
      description: The source volumes.
      type: list
      elements: str
      sample: [/srv/data/db, /srv/data/www]
    versions:
      description: How many copy versions are kept.
      type: int
      sample: 3
    target_pools:
      description:
        - The target pools in rotation order, each with C(name), C(volumes) and C(host) (the ssh destination where
          its volumes live, null for the managed host).
      type: list
      elements: dict
      sample: [{"name": "01", "volumes": [], "host": null}]
    max_age:
      description: The pool's O(pitcopy.versions.copy_pool#module:max_age), or null.
      type: str
      sample: 26h
    retention:
      description: The pool's O(pitcopy.versions.copy_pool#module:retention) grid, or null.
      type: str
      sample: 24h 7d 4w 12m 3y
    ssh:
      description: The pool's O(pitcopy.versions.copy_pool#module:ssh) settings, or null.
      type: dict
      sample: null
    transfer:
      description: The pool's O(pitcopy.versions.copy_pool#module:transfer) settings (C(raw), C(compressed),
        C(large_block), C(filter)), the defaults when not given.
      type: dict
      sample: {"raw": "auto", "compressed": false, "large_block": false, "filter": []}
    datasets:
      description:
        - The source dataset inventory (Table 3.1 of the method), in the order of
          O(pitcopy.versions.copy_pool#module:datasets), each dataset with C(name), C(path), C(sources) (the
          source volumes it lies on, the one holding C(path) first) and C(places) (per source volume, C(source),
          C(path) (the dataset's directory inside that volume's filesystem, relative to its root) and C(at)
          (where in the dataset that volume's part is, empty for the dataset's own directory)).
        - Resolved when the pool is defined and again before each copy. Empty when the pool names no datasets.
      type: list
      elements: dict
      sample: [{"name": "db", "path": "/srv/data/db/pg", "sources": ["/srv/data/db"],
                "places": [{"source": "/srv/data/db", "path": "pg", "at": ""}]}]
    dataset:
      description:
        - Only with O(dataset). The kept versions that hold that dataset, and since when.
      returned: when O(dataset) is given
      type: dict
      contains:
        name:
          description: The dataset.
          type: str
          sample: db
        defined:
          description: Whether the pool's definition still names it (kept versions may hold a dataset since removed).
          type: bool
          sample: true
        since:
          description: The time stamp of the oldest kept version that holds it, or null when none does.
          type: str
          sample: "2026-11-25T23:00:00Z"
        versions:
          description:
            - The kept versions holding it, oldest first, each with C(version), C(created) (its time stamp),
              C(label), C(status), C(held), C(path), C(sources) and C(places) as the version holds it.
          type: list
          elements: dict
          sample: [{"version": 4, "created": "2026-11-25T23:00:00Z", "label": null, "status": "valid",
                    "held": false, "path": "/srv/data/db/pg", "sources": ["/srv/data/db"],
                    "places": [{"source": "/srv/data/db", "path": "pg", "at": ""}]}]
    newest_valid_age:
      description:
        - Seconds since the newest valid copy version was taken (by this host's clock), or null when no version is
          valid. What a freshness alert compares with RV(pools[].max_age).
      type: int
      sample: 3600
    replication_records:
      description: The existing copy versions, oldest first.
      type: list
      elements: dict
      contains:
        version:
          description: The copy version number.
          type: int
          sample: 4
        target_pool:
          description: The target pool holding it.
          type: str
          sample: "01"
        created:
          description: Point in time of the copy (ISO 8601, UTC).
          type: str
          sample: "2026-11-25T23:00:00Z"
        label:
          description: Its label, or null.
          type: str
          sample: daily-2026-11-25
        status:
          description: V(valid), V(invalid) or V(incomplete).
          type: str
          sample: valid
        warnings:
          description:
            - What went wrong around this copy although it was kept, for example a failed post-copy hook or a
              filesystem thawed early by the watchdog. Empty for a clean copy.
          type: list
          elements: str
          sample: []
        held:
          description:
            - Whether the version is held (M(pitcopy.versions.copy_version)
              O(pitcopy.versions.copy_version#module:state=held)).
          type: bool
          sample: false
        hold_reason:
          description: The reason given when it was held, or null.
          type: str
          sample: null
        mounted:
          description:
            - The path the version is mounted at for browsing (see
              O(pitcopy.versions.copy_version#module:state=mounted)), or null. A mounted version is never rotated
              or deleted.
          type: str
          sample: null
        pairs:
          description: The copy pairs, each with C(source) and C(target).
          type: list
          elements: dict
          sample: [{"source": "/srv/data/db", "target": "/srv/data/.pitcopy/web/01/db"}]
        datasets:
          description:
            - The backup dataset inventory of this version (its time stamp is RV(pools[].replication_records[].created)),
              the pool's datasets that lay on the sources this version copied, as they lay at its point in time,
              in the shape of RV(pools[].datasets). Empty for a version taken before the pool named datasets.
          type: list
          elements: dict
          sample: []
    prepairing_records:
      description: The pre-pairing records of future copy versions.
      type: list
      elements: dict
      contains:
        version:
          description: The future copy version.
          type: int
          sample: 5
        target_pool:
          description: The target pool it will use.
          type: str
          sample: "02"
        created:
          description: When the record was made (ISO 8601, UTC).
          type: str
          sample: "2026-11-25T23:05:00Z"
        pairs:
          description: The chosen copy pairs, each with C(source) and C(target).
          type: list
          elements: dict
          sample: [{"source": "/srv/data/db", "target": "/srv/backup/c"}]
    media:
      description:
        - The storage media inventory - the versions dumped with M(pitcopy.versions.copy_version)
          O(pitcopy.versions.copy_version#module:state=dumped), oldest version first. Kept when the version's copies
          are rotated away or deleted (a restore from media needs only this entry and the medium).
      returned: success
      type: list
      elements: dict
      contains:
        medium:
          description: The medium directory the version was dumped to.
          type: str
          sample: /srv/backup/media
        version:
          description: The copy version dumped.
          type: int
          sample: 2
        version_time:
          description: The version's time stamp (when its copies were taken, ISO 8601 UTC).
          type: str
          sample: "2026-11-25T23:00:00Z"
        streams:
          description:
            - One per source - C(source), C(stream) (its path relative to the medium), C(size) (bytes) and C(sha256)
              (computed while it was written).
          type: list
          elements: dict
          sample: [{"source": "/srv/data/db", "stream": "web/v2/db-4f9c0a1b2c3d.btrfs-stream", "size": 1048576,
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]
        dumped:
          description: When the dump was written (ISO 8601 UTC).
          type: str
          sample: "2026-11-26T02:00:00Z"
    next_version:
      description:
        - What the next M(pitcopy.versions.copy_version) O(pitcopy.versions.copy_version#module:state=present) would do
          with the records as they are.
      returned: success
      type: dict
      contains:
        number:
          description: Its version number.
          type: int
          sample: 5
        target_pool:
          description: The target pool it would use.
          type: str
          sample: "01"
        replaces:
          description: The version it would replace, or null.
          type: int
          sample: 3
        held:
          description:
            - Whether the version it would replace is held; the copy is then refused before anything is touched.
          type: bool
          sample: false
        hold_reason:
          description: The reason of that hold, or null.
          type: str
          sample: null
"""

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._module import PitcopyModule, check_no_control_chars


def validate(params):
    check_no_control_chars(params, ("pool", "dataset"))
    if params["dataset"] is not None and params["pool"] is None:
        raise InvalidInput("dataset %s is a dataset of one copy pool: give pool too" % (params["dataset"],))


def main():
    module = PitcopyModule(
        argument_spec=dict(
            pool=dict(type="str"),
            dataset=dict(type="str"),
        ),
        validate=validate,
    )
    module.run_info(module.params["pool"], module.params["dataset"])


if __name__ == "__main__":
    main()
