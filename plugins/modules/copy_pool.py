#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: copy_pool
short_description: Define, change or remove a copy pool of point-in-time copies
version_added: 0.1.0
description:
  - A copy pool is one source pool (the volumes copied together at one point in time), its target pools
    (each holds one copy version), and how many copy versions are kept.
  - With O(state=present) the copy pool is created, or changed to match the options. Changing O(sources)
    or O(target_pools) updates the pool's pre-pairing records (targets chosen for future copy versions).
  - With O(state=absent) the copy pool's records are removed. Existing copies are never deleted silently;
    the task fails while the pool still has copy versions, unless O(remove_copies=true).
  - The copy method is described in the collection's C(docs/).
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
  name:
    description:
      - Name of the copy pool. Letters, digits, V(_), V(.) and V(-); it must start with a letter or a digit.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the copy pool, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  technology:
    description:
      - How copies are made. Required with O(state=present); it cannot be changed on an existing pool that has copies.
      - V(lvm_snapshot) classic copy-on-write snapshot LVs; V(lvm_thin) thin snapshots; V(lvm_clone) full block copy
        onto pre-existing LVs listed in O(target_pools); V(zfs_snapshot) ZFS snapshots; V(zfs_send) C(zfs send) into
        datasets listed in O(target_pools); V(btrfs_snapshot) read-only btrfs snapshot subvolumes; V(btrfs_send)
        C(btrfs send)/C(btrfs receive) into directories listed in O(target_pools).
    type: str
    choices: [lvm_snapshot, lvm_thin, lvm_clone, zfs_snapshot, zfs_send, btrfs_snapshot, btrfs_send]
  sources:
    description:
      - The source pool. LVM logical volumes as V(vg/lv), ZFS datasets or zvols as V(pool/dataset), btrfs
        subvolumes as absolute paths.
      - All of them are copied at one point in time. Names must be unique. Required with O(state=present).
      - A btrfs source that is a mountpoint or holds nested subvolumes is refused (a restore could not replace a
        mountpoint; a snapshot does not contain nested subvolumes, so the copies would silently miss them).
    type: list
    elements: str
  versions:
    description:
      - How many copy versions are kept; the oldest is replaced when a new one is taken.
      - For the snapshot technologies this also names the implied target pools V("01"), V("02"), ...
      - An integer of at least 1. Required with O(state=present).
    type: int
  target_pools:
    description:
      - The target pools of V(lvm_clone), V(zfs_send) and V(btrfs_send), in rotation order; copy version N goes to
        target pool (N - 1) modulo the number of target pools.
      - Required for those technologies and refused for the snapshot technologies, whose target pools are implied.
      - A target volume may appear in one target pool only, must be of a compatible type, at least the size of the
        source it receives, and must not hold data that this collection does not own.
      - An existing target of a type that can never receive a copy of the technology (for example a regular file, or
        a directory outside btrfs for V(btrfs_send)), a target listed twice, or one holding data we do not own is
        refused when the pool is defined. A target that does not exist yet is accepted here (it may be created later;
        V(zfs_send) creates it itself); existence, size and free space are checked when targets
        are selected (M(pitcopy.versions.prepair_record) and M(pitcopy.versions.copy_version)), which fail naming
        each rejected target and why.
      - A V(btrfs_send) target directory is also refused, here and again before each copy, when another user could
        write to it (it or a directory above it is owned by another user than root or the one running the module, or
        is writable by group or others; above it, sticky directories such as C(/tmp) are fine) or when it lies inside
        a source; and here when another copy pool in the same O(state_dir) already lists it.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the target pool.
        type: str
        required: true
      volumes:
        description:
          - Target volumes of this target pool (same naming as O(sources)); with O(target_pools[].host), names on
            that host.
        type: list
        elements: str
        required: true
      host:
        description:
          - The ssh destination V([user@]host) where this target pool's volumes live (a push to another host); omitted,
            the managed host itself. Local and remote target pools may be mixed in one copy pool.
          - Only with O(technology=btrfs_send) so far; the other technologies refuse it when the pool is defined,
            naming the copy pool, the target pool and the host, and nothing is changed.
          - The managed host runs C(btrfs send) and pipes the stream into C(btrfs receive) on that host over ssh;
            discovery, eligibility (directory on btrfs, free space, ownership marks, who can write to it), the
            marks, promotion, deletion and M(pitcopy.versions.verify_records) checks run on that host over the same
            connection. That host needs C(sshd), C(python3) and C(btrfs-progs), and the ssh user must be root there.
          - Sends to another host are incremental as local ones are (C(btrfs send -p) from the version that target
            pool holds). Restoring from a copy on another host is refused (not supported yet). See the collection's
            C(docs/offsite.md).
          - A host that cannot be reached (or whose host key is unknown or has changed, or that denies the login) is
            reported naming it, and nothing is changed on either host.
        type: str
  ssh:
    description:
      - How ssh reaches the hosts of O(target_pools[].host). Only with at least one such target pool.
      - ssh runs in batch mode (no password or host key prompt can be answered) and checks host keys strictly
        (C(StrictHostKeyChecking=yes)) unless O(ssh.options) says otherwise.
      - Connections are shared (C(ControlMaster), kept 60 seconds after their last use) through sockets in a private
        directory (mode 0700) of the user running the module, unless O(ssh.options) sets C(ControlMaster) or
        C(ControlPath) itself.
    type: dict
    suboptions:
      port:
        description:
          - The ssh port, 1 to 65535; omitted, ssh's default (or its configuration).
        type: int
      identity_file:
        description:
          - Absolute path, on the managed host, of the private key to log in with.
        type: str
      options:
        description:
          - Extra ssh settings, each V(Key=value) as C(ssh -o) takes them (for example
            V(UserKnownHostsFile=/etc/pitcopy/known_hosts)). C(BatchMode) cannot be turned off.
        type: list
        elements: str
        default: []
  transfer:
    description:
      - How the stream of a send technology (V(zfs_send), V(btrfs_send)) travels from send to receive; the other
        technologies refuse it. Omitted, the defaults, which send as before the option existed.
      - Changing it redefines the pool (reported as changed, with the before/after diff); it takes effect at the next
        copy version. See the collection's C(docs/offsite.md) and C(docs/technologies.md).
    type: dict
    suboptions:
      raw:
        description:
          - V(zfs_send) only (zrepl's C(send.encrypted)/C(send.raw), syncoid's C(--sendoptions=w)).
          - V(auto) sends encrypted source datasets raw (C(zfs send -w)) and the others as before. The stream holds
            the encrypted blocks and the wrapped key, never the key, so nothing is decrypted and the key never
            leaves the source host; the copy stays encrypted (an encryption root of its own, C(keystatus)
            V(unavailable) on the target until C(zfs load-key) with the source's key).
          - V(true) sends every source raw (for an unencrypted dataset, C(-w) means C(-Lec)).
          - V(false) never; an encrypted source is then refused before anything is made, because its data would
            arrive decrypted (re-encryption under a key of the target is not supported).
          - A copy received before raw sends (not encrypted) cannot be the base of a raw incremental stream; the
            next copy of that source is sent in full, and says why.
        type: str
        choices: ["auto", "true", "false"]
        default: auto
      compressed:
        description:
          - Send blocks compressed as they are stored instead of decompressing them (syncoid's C(--compress) is a
            different thing, it compresses the pipe).
          - V(zfs_send) adds C(zfs send -c) (zrepl's C(send.compressed)).
          - V(btrfs_send) adds C(btrfs send --compressed-data), which needs btrfs-progs 6.0 or later and a kernel
            that writes send stream version 2 (Linux 6.0 or later); where either is missing the copy is refused
            before anything is made, naming what the host has.
        type: bool
        default: false
      large_block:
        description:
          - V(zfs_send) only. Adds C(zfs send -L) (zrepl's C(send.large_blocks)), keeping blocks larger than 128 KiB
            (C(recordsize=1M)) as they are. Once a source's copies were sent with it, keep it on.
        type: bool
        default: false
      filter:
        description:
          - A command run between send and receive on the host that runs the send, as an argv list (never a shell
            string), for example V([mbuffer, -q, -m, 128M]) or V([pv, -q, -L, 10m]) (a rate limit). It must copy
            its standard input to its standard output unchanged.
          - The program is looked up once (in C(PATH) and the sbin directories) before anything is made; one that
            is not installed is refused, naming it. The stream is counted (C(bytes_sent)) before the filter.
        type: list
        elements: str
        default: []
  snapshot_size:
    description:
      - Size of each classic snapshot LV, as C(lvcreate --size) or C(--extents) accepts it (for example V(1G) or
        V(20%ORIGIN)). Only with O(technology=lvm_snapshot); default is 20% of the origin.
    type: str
  consistency:
    description:
      - How one point in time is reached for all sources.
      - V(auto) uses what the technology does atomically (one C(zfs snapshot) command per zpool) and freezes mounted
        file systems where that is safe (LVM); it never freezes btrfs.
      - V(freeze) requires freezing the mounted file systems of the sources (C(fsfreeze)). Where that can never work
        (btrfs, ZFS, and LVM on a kernel whose snapshot cannot suspend a frozen file system) the pool definition
        is refused, naming the technology and what to use instead.
      - V(none) takes the copies one after another without freezing.
    type: str
    choices: [auto, freeze, none]
    default: auto
  pre_copy_hooks:
    description:
      - Commands run before the point in time of every copy version, for example to quiesce an application.
      - Each is an argument list, run without a shell.
    type: list
    elements: dict
    default: []
    suboptions:
      argv:
        description:
          - The command and its arguments.
        type: list
        elements: str
        required: true
      timeout:
        description:
          - Seconds after which the command is stopped and counts as failed.
        type: int
        default: 60
      abort_on_failure:
        description:
          - Whether a failing hook stops the copy (before any volume is touched, for a pre-copy hook).
        type: bool
        default: true
  post_copy_hooks:
    description:
      - Commands run after the point in time of every copy version (also when the copy failed), for example to resume
        an application. Same form as O(pre_copy_hooks).
    type: list
    elements: dict
    default: []
    suboptions:
      argv:
        description:
          - The command and its arguments.
        type: list
        elements: str
        required: true
      timeout:
        description:
          - Seconds after which the command is stopped and counts as failed.
        type: int
        default: 60
      abort_on_failure:
        description:
          - Whether a failing post-copy hook (non-zero exit, or over its timeout) makes the task fail. The copy version
            is kept and recorded, with the failure in its C(warnings), and the task fails saying so.
        type: bool
        default: true
  max_age:
    description:
      - The age past which the pool's newest valid copy version means backups have stopped, as a whole number and
        one unit, V(s), V(m), V(h), V(d) or V(w) (for example V(30m), V(26h), V(8d)).
      - M(pitcopy.versions.verify_records) then reports a finding with C(problem=stale) (which a repair cannot fix)
        and M(pitcopy.versions.copy_pool_info) returns C(newest_valid_age) in seconds for monitoring.
      - Omitted, no age is checked.
    type: str
  retention:
    description:
      - A time grid that decides which copy versions are kept, for example V(24h 7d 4w 12m 3y) (keep the first
        copy of each of the last 24 hours, 7 days, 4 weeks, 12 months and 3 years). Without it, a new version
        replaces the oldest.
      - One or more buckets C(<count><unit>) separated by spaces, each count a whole number of at least 1 and each
        unit at most once, in any order. Units V(h) (hours), V(d) (days), V(w) (ISO weeks, Monday to Sunday),
        V(m) (calendar months), V(y) (calendar years). As btrbk's C(preserve) (C(24h 7d 4w 12m 3y)) without its
        C(*) and C(latest) forms; zrepl's C(grid) counts intervals back from now, this grid counts calendar periods.
      - C(<count><unit>) covers the C(count) most recent periods of that unit, the current one included, as the
        managed host's clock and timezone divide time (days begin at the host's midnight; summer time is taken
        into account). In each covered period the oldest valid copy version is kept; one version counts for every
        bucket it falls in (the first copy of a month that also opens a week and a day stands for all three). The
        newest version is always kept; a held version (M(pitcopy.versions.copy_version)
        O(pitcopy.versions.copy_version#module:state=held)) is always kept, beside the grid.
      - A new version takes an empty target pool, else one whose version the grid no longer needs, else the one
        holding the oldest version; every other version the grid no longer needs is deleted with the copy and
        listed in M(pitcopy.versions.copy_version)'s C(deleted_versions) (check mode and diff mode show them).
        Only M(pitcopy.versions.copy_version) deletes them, when it makes room for a new version; defining the
        pool with a tighter grid deletes nothing, the new grid takes effect at the next copy.
      - A grid keeps at most one version per bucket plus the newest, so O(versions) (and, for technologies with
        O(target_pools), the number of target pools) must be at least the sum of the counts plus one (11 for
        V(6h 3d 1w)); a grid needing more is refused and nothing is changed.
    type: str
  datasets:
    description:
      - The datasets of the pool's sources that operators restore by name (the method's source dataset inventory), such as
        a mounted filesystem's directory, a database's data directory. Each C(path) is an absolute directory that
        lies on a source volume of the pool; a source volume mounted below it is part of the dataset too.
      - The pool resolves which source volumes each dataset lies on (the btrfs source subvolume holding it, the LVM
        source whose mounted filesystem holds it, the ZFS source dataset whose mountpoint holds it; a nested
        subvolume, child dataset or other filesystem in between is not the source's) and keeps it in its records;
        a path that is relative, not an existing directory or on no source is refused, as is a name used twice,
        and nothing is changed.
      - Before each copy the datasets are resolved again; each version records the datasets it holds with its
        time stamp (M(pitcopy.versions.copy_pool_info) C(replication_records[].datasets) and its O(pitcopy.versions.copy_pool_info#module:dataset)
        option). A dataset that moved or vanished is said in the version's C(warnings) and never stops a copy.
      - M(pitcopy.versions.copy_version) O(pitcopy.versions.copy_version#module:state=mounted) reports each
        dataset's path in the mounted version, and O(pitcopy.versions.copy_version#module:state=restored) with
        O(pitcopy.versions.copy_version#module:dataset) takes O(pitcopy.versions.copy_version#module:paths)
        relative to the dataset.
    type: list
    elements: dict
    suboptions:
      name:
        description: The dataset's name, unique in the pool.
        type: str
        required: true
      path:
        description: The absolute path of the dataset's directory on the managed host.
        type: str
        required: true
  remove_copies:
    description:
      - With O(state=absent), also delete the copies of every copy version that carry this collection's ownership
        mark. Targets listed by the user (V(lvm_clone) LVs, V(zfs_send) and V(btrfs_send) targets) lose only the mark
        and the received copy, never a volume the user created.
      - Without it, removing a pool that still has copy versions fails and names them.
      - A held version (M(pitcopy.versions.copy_version) O(pitcopy.versions.copy_version#module:state=held)) is never
        deleted; removing a pool that keeps one fails and names it. Release it first.
    type: bool
    default: false
seealso:
  - module: pitcopy.versions.prepair_record
  - module: pitcopy.versions.copy_version
  - module: pitcopy.versions.copy_pool_info
"""

EXAMPLES = r"""
- name: Keep three read-only btrfs snapshots of two subvolumes taken together, the database directory named as dataset db
  pitcopy.versions.copy_pool:
    name: web
    technology: btrfs_snapshot
    sources:
      - /srv/data/db
      - /srv/data/www
    versions: 3
    datasets:
      - name: db
        path: /srv/data/db

- name: Send copies to another btrfs file system, rotating over two target pools
  pitcopy.versions.copy_pool:
    name: offsite
    technology: btrfs_send
    sources:
      - /srv/data/db
      - /srv/data/www
    versions: 2
    target_pools:
      - name: "01"
        volumes: [/srv/backup/a, /srv/backup/b]
      - name: "02"
        volumes: [/srv/backup/c, /srv/backup/d]

- name: Two versions on this host for quick rollbacks, two on a backup host over ssh
  pitcopy.versions.copy_pool:
    name: mixed
    technology: btrfs_send
    sources:
      - /srv/data/db
    versions: 4
    target_pools:
      - name: local1
        volumes: [/srv/backup/l1]
      - name: local2
        volumes: [/srv/backup/l2]
      - name: offsite1
        host: root@backup.example.com
        volumes: [/backup/web/o1]
      - name: offsite2
        host: root@backup.example.com
        volumes: [/backup/web/o2]
    ssh:
      identity_file: /root/.ssh/pitcopy_push
      options:
        - UserKnownHostsFile=/etc/pitcopy/known_hosts

- name: Quiesce the application around every copy version
  pitcopy.versions.copy_pool:
    name: app
    technology: btrfs_snapshot
    sources:
      - /srv/data/logs
    versions: 2
    pre_copy_hooks:
      - argv: [/usr/bin/sync]
        timeout: 30
    post_copy_hooks:
      - argv: [/usr/bin/true]
        abort_on_failure: false

- name: Thin LVM snapshots of a database and its logs, LVM freezing each file system while it snapshots it
  pitcopy.versions.copy_pool:
    name: db_thin
    technology: lvm_thin
    sources: [vg0/db, vg0/dblog]
    versions: 7
    consistency: auto
    max_age: 26h

- name: Hourly btrfs snapshots kept by a grid, the first copy of each of the last 6 hours and 3 days
  pitcopy.versions.copy_pool:
    name: home_grid
    technology: btrfs_snapshot
    sources:
      - /srv/data/www
    versions: 10  # 6 + 3 buckets and the newest copy
    retention: 6h 3d

- name: ZFS snapshots of two datasets, one atomic zfs snapshot command per version
  pitcopy.versions.copy_pool:
    name: tank_daily
    technology: zfs_snapshot
    sources: [tank/db, tank/home]
    versions: 7

- name: Send ZFS copies raw (an encrypted dataset stays encrypted, its key stays here) through a 64 MiB mbuffer
  pitcopy.versions.copy_pool:
    name: tank_db_send
    technology: zfs_send
    sources: [tank/db]
    versions: 2
    target_pools:
      - name: "01"
        volumes: [tank/db_copy1]  # created by the first copy, below an existing filesystem
      - name: "02"
        volumes: [tank/db_copy2]
    transfer:
      raw: "true"  # every source raw (zfs send -w); the default auto sends only encrypted ones raw
      filter: [mbuffer, -q, -m, 64M]  # looked up before each copy; it must be installed

- name: Remove a pool that is no longer needed, deleting its copies
  pitcopy.versions.copy_pool:
    name: app
    state: absent
    remove_copies: true
"""

RETURN = r"""
pool:
  description:
    - The copy pool as it is after the task (as it would be, in check mode).
    - With O(state=absent), the definition of the pool that was removed, or null when there was no such pool.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the copy pool.
      type: str
      sample: web
    technology:
      description: The copy technology.
      type: str
      sample: btrfs_snapshot
    sources:
      description: The source volumes, in the order given.
      type: list
      elements: str
      sample: [/srv/data/db, /srv/data/www]
    versions:
      description: How many copy versions are kept.
      type: int
      sample: 3
    target_pools:
      description:
        - The target pools in rotation order. For snapshot technologies they are implied (V("01"), V("02"), ...) and
          their O(target_pools[].volumes) are empty; the target names are generated when copies are made.
        - Each has C(name), C(volumes) and C(host) (the ssh destination of its volumes' host, null for the managed
          host).
      type: list
      elements: dict
      sample: [{"name": "01", "volumes": [], "host": null}, {"name": "02", "volumes": [], "host": null}]
    snapshot_size:
      description: The snapshot size of V(lvm_snapshot) pools, else null.
      type: str
      sample: null
    consistency:
      description: The consistency mode.
      type: str
      sample: auto
    pre_copy_hooks:
      description: The pre-copy hooks, each with C(argv), C(timeout) and C(abort_on_failure).
      type: list
      elements: dict
      sample: []
    post_copy_hooks:
      description: The post-copy hooks, each with C(argv), C(timeout) and C(abort_on_failure).
      type: list
      elements: dict
      sample: []
    max_age:
      description: The O(max_age), or null.
      type: str
      sample: 26h
    retention:
      description: The O(retention) grid as given, or null.
      type: str
      sample: 6h 3d
    ssh:
      description: The O(ssh) settings (C(port), C(identity_file), C(options)), or null.
      type: dict
      sample: null
    transfer:
      description: The O(transfer) settings (C(raw), C(compressed), C(large_block), C(filter)), the defaults when not
        given.
      type: dict
      sample: {"raw": "auto", "compressed": false, "large_block": false, "filter": []}
    datasets:
      description:
        - The source dataset inventory, each dataset with C(name), C(path), C(sources) (the source volumes it lies
          on, the one holding C(path) first) and C(places) (C(source), C(path) inside that volume's filesystem, C(at)
          inside the dataset), as in M(pitcopy.versions.copy_pool_info).
      type: list
      elements: dict
      sample: [{"name": "db", "path": "/srv/data/db/pg", "sources": ["/srv/data/db"],
                "places": [{"source": "/srv/data/db", "path": "pg", "at": ""}]}]
unpaired:
  description:
    - With O(state=present) on an existing pool, sources for which the refreshed pre-pairing records found no eligible
      target, with the reason each candidate was rejected (as in M(pitcopy.versions.prepair_record)).
  returned: when O(state=present)
  type: list
  elements: dict
  sample: []
prepairing_records:
  description:
    - With O(state=present), the pre-pairing records after the change; a change of O(sources) or O(target_pools)
      re-pairs them.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{"version": 3, "target_pool": "01", "created": "2026-11-25T22:40:00Z",
            "pairs": [{"source": "/srv/data/db", "target": "/srv/backup/a"}]}]
next_version:
  description:
    - What the next M(pitcopy.versions.copy_version) O(pitcopy.versions.copy_version#module:state=present) would do
      with the records as they are (after this change); a change of the rotation shows before it bites.
  returned: when O(state=present)
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
removed_versions:
  description:
    - With O(state=absent), the copy versions whose copies were deleted with the pool (O(remove_copies=true)).
  returned: when O(state=absent)
  type: list
  elements: int
  sample: [3, 4]
"""

from ansible_collections.pitcopy.versions.plugins.module_utils._module import PitcopyModule, check_no_control_chars
# The argument spec and the definition it describes are shared with the
# rotation role's filter, which asks before calling this module whether a
# pool's definition changes (module_utils/_pool_options.py).
from ansible_collections.pitcopy.versions.plugins.module_utils._pool_options import (
    ARGUMENT_SPEC,
    REQUIRED_IF,
    definition,
)

# Types and choices only (the argument spec): every rule of a definition's
# values is the engine's definition check (_definition.check_definition), run
# before the lock.


def validate(params):
    # the rule every pitcopy module applies to the strings that become names
    check_no_control_chars(params, ("name", "sources", "target_pools", "snapshot_size", "ssh", "datasets",
                                    "transfer"))


def main():
    module = PitcopyModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=REQUIRED_IF,
        validate=validate,
    )
    params = module.params
    if params["state"] == "present":
        wanted = definition(params)
        module.run_plan(params["name"], lambda session: session.plan_define(wanted),
                        precheck=lambda engine: engine.check_definition(wanted))
    else:
        module.run_plan(params["name"], lambda session: session.plan_remove(remove_copies=params["remove_copies"]))


if __name__ == "__main__":
    main()
