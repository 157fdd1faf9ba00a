#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: copy_version
short_description: Take, delete, restore, hold or release a point-in-time copy version of a copy pool
version_added: 0.1.0
description:
  - With O(state=present) the whole copy method runs in one task. The copy record is built from the pre-pairing
    record of the new version, else the replication record of the version being replaced, else a fresh target
    selection, and verified against the current source pool (sources that left are dropped, sources that joined get
    a target). All pairs are copied at one point in time, the new replication record is saved, pairs of removed
    sources are broken (their targets become available), and the replaced version and the used pre-pairing record
    are deleted.
  - A copy is all or nothing. If any pair fails, the copies already made for the new version are removed and the
    pool keeps its previous valid versions.
  - With O(state=absent) the copies and the replication record of O(version) are deleted.
  - With O(state=restored) the sources are brought back to the data of O(version), namely the pool's current sources
    that O(version) holds, or only O(volumes). A source that has left the pool since O(version) was taken is restored
    only when O(volumes) names it, so that its live data is never overwritten by surprise.
    A restore that the storage tool could only do by destroying another kept version is refused.
  - With O(state=held) version O(version) (or the one carrying O(label)) is held, with an optional O(reason). A held
    version is never replaced or deleted by rotation, retention, O(state=absent) without O(force), or
    M(pitcopy.versions.copy_pool) with C(remove_copies). A copy whose target pool holds a held version fails before
    anything is touched, naming the version and the hold reason. The storage enforces the hold too, so that a
    hand-typed delete refuses where the tool can. C(zfs_snapshot) and C(zfs_send) get C(zfs hold pitcopy) on the
    snapshot (for C(zfs_send) the target's received snapshot), so C(zfs destroy) refuses. LVM copies get the tag
    C(pitcopy_hold) and are made read-only (C(lvchange --permission r)). btrfs copies are read-only subvolumes already;
    the hold is written into the copy's ownership mark and a copy made writable by hand is made read-only again.
  - With O(state=released) the hold goes (from the storage first, then from the record).
  - With O(state=mounted) the copies of O(version) are mounted read-only under O(path), one directory per source
    named after the source's last component (its whole name with C(/) as C(_) where two sources share one); see
    RV(mounts). btrfs bind-mounts the read-only snapshot subvolume, LVM mounts the snapshot or clone LV read-only
    without replaying its journal (ext3/ext4 C(ro,noload), XFS C(ro,norecovery,nouuid)), C(zfs_snapshot) mounts the
    snapshot with C(mount -t zfs), C(zfs_send) the copy's received snapshot (an encrypted copy needs its key loaded
    on the host). The mount is recorded in the version's replication record (C(mounted)); rotation,
    retention, O(state=absent) and pool removal refuse a mounted version until it is unmounted (refusing is safer
    than unmounting under a reader), and M(pitcopy.versions.verify_records) reports a recorded mount that is gone
    (C(stale_mount)). A version is mounted at one path at a time.
  - With O(state=unmounted) the copies are unmounted, the directories made for them removed and the record cleared.
  - With O(state=restored) and O(paths), only those files or directories are restored, from each source's copy
    that holds them (a path no copy holds is refused), in place (the source's live, mounted directory) or under
    O(restore_to). Owner, mode, times, ACLs and xattrs are kept (C(cp -a --reflink=auto)); a path is copied beside
    its destination under a temporary name and renamed into place, so nothing outside the paths is touched (the
    directory holding a path gets a new modification time) and the rest of the version stays as it is. A directory
    restored becomes exactly what the version holds (files added since go). Every path of every source is checked
    before the first is copied.
  - M(pitcopy.versions.verify_records) reports a held version whose hold the storage no longer enforces
    (C(hold_not_enforced)); with C(repair=true) it holds it again.
  - With O(state=dumped) each copy of O(version) is written as a full stream (C(btrfs send) of the copy, or C(zfs
    send) of the copy's snapshot, raw with C(-w) when it is encrypted; for LVM the copy's blocks as one gzip
    member, a plain C(.gz) that C(zcat) reads, its size and an lvm_thin copy's thin pool in the gzip header; no
    parent, so each medium restores alone) to
    C(<media>/<pool>/v<version>/<source's last component>-<digest>.btrfs-stream) (C(.zfs-stream) for ZFS,
    C(.lvgz-stream) for LVM),
    under a temporary name C(.pitcopy-dump.<pid>.<name>) that is fsynced and renamed when complete, its sha256
    computed while it is written. The dump is recorded in the storage media inventory of the state file (medium,
    version, the version's time stamp, each stream's source, path, size and sha256, when it was dumped), which
    M(pitcopy.versions.copy_pool_info) returns as C(media). The inventory is not part of the replication record;
    rotation and O(state=absent) delete a version's copies and record, never its dumps nor their inventory entries.
    Every technology can dump.
  - With O(state=restored) and O(from_media), whole sources of O(version) are received from the streams that the
    inventory lists on that medium as NEW writable volumes under O(restore_to) (required; never in place), even
    when the version's copies are gone. Every stream's size and sha256 are checked before anything is made; a
    corrupted or missing stream is refused and nothing is made.
author:
  - pitcopy developers (@pitcopy)
extends_documentation_fragment:
  - pitcopy.versions.common
  - pitcopy.versions.common.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the copy record is built and verified with the read-only discovery commands, so the result
        shows the targets that would be used, the version that would be replaced and the pairs that would be broken.
      - With O(state=restored) and O(paths), check mode lists in RV(restored_paths) what would change, read from
        the copies where they can be read without a mount (btrfs, C(zfs_snapshot) through C(.zfs/snapshot), a
        version mounted with O(state=mounted)); LVM copies need a mount, so check mode lists their paths with
        C(changes) null unless the version is mounted.
      - With O(state=restored), O(restore_to) and no O(paths), check mode lists in RV(restored_to) the volumes that
        would be made; diff mode shows them as C(restored_to) before (those that exist from this version) and after.
      - With O(state=dumped), check mode lists in RV(written) the streams that would be written (reading the ones on
        the medium to compare their checksums), and writes nothing.
  diff_mode:
    support: full
  idempotent:
    support: partial
    details:
      - O(state=present) without O(label) takes a new copy version on every run, which is its purpose.
        With O(label), a version with that label already existing means no change.
      - O(state=held) is idempotent (the same O(reason) on a version held and enforced on the storage is no change).
        O(state=released) of a version that is not held fails, so that a wrong version number is never reported as
        done.
      - O(state=mounted) of a version mounted at O(path) already, and O(state=unmounted) of a version not mounted,
        report no change. O(state=restored) with O(paths) compares the files first and copies only paths that differ.
      - O(state=restored) with O(restore_to) and no O(paths) reports no change when every volume exists already,
        made from this version's copy.
      - O(state=dumped) of a version whose streams are on the medium already with the size and sha256 the inventory
        records is no change (a stream that differs is written again). O(state=restored) with O(from_media) refuses
        a volume that exists (it cannot tell what made it), so a second run fails without changing anything.
      - O(state=absent) is idempotent. O(state=restored) compares each source with its copy first, reading only,
        and restores only the sources that differ; with none, it reports no change. C(zfs_snapshot) compares by the
        bytes written since the snapshot; the other technologies cannot tell without copying and restore on every
        run.
options:
  pool:
    description:
      - Name of an existing copy pool (see M(pitcopy.versions.copy_pool)).
    type: str
    required: true
  state:
    description:
      - V(dumped) writes copy version O(version) to O(media) (see the description).
      - V(present) takes a new copy version, V(absent) deletes copy version O(version), V(restored) restores it
        (or only O(paths) of it), V(held) holds it, V(released) releases its hold, V(mounted) mounts its copies
        read-only under O(path), V(unmounted) unmounts them.
    type: str
    choices: [present, absent, restored, held, released, mounted, unmounted, dumped]
    default: present
  version:
    description:
      - The copy version number to delete, restore, hold, release, mount, unmount or dump. Required with
        O(state=dumped), O(state=absent), O(state=restored), O(state=mounted) and O(state=unmounted); with O(state=held) and O(state=released)
        O(version) or O(label) names the version;
        not accepted with O(state=present), where the next number is assigned.
    type: int
  label:
    description:
      - A free-form label stored with a new copy version (for example the date of a daily run).
      - With O(state=present), when a kept version already carries this label, nothing is done and that version is
        returned; this makes scheduled jobs safe to rerun.
      - With O(state=held) and O(state=released), the version carrying this label (instead of O(version)).
    type: str
  reason:
    description:
      - With O(state=held), why the version is held (for example C(before the 2026 upgrade)); stored in the record
        as C(hold_reason) and named in every refusal the hold causes.
      - Not accepted with the other states.
    type: str
  force:
    description:
      - With O(state=absent), delete the version even if it is held (its hold is released on the storage first).
    type: bool
    default: false
  volumes:
    description:
      - With O(state=restored), restore only these sources of O(version); they may include sources that have left
        the pool since.
      - Default the pool's current sources that O(version) holds; sources that have left the pool are left alone.
    type: list
    elements: str
  path:
    description:
      - With O(state=mounted), the directory under which the copies are mounted (an absolute path outside the
        pool's sources whose parent directory exists; it is created when missing). Required.
      - With O(state=unmounted), optional; when given it must be the path the version is mounted at.
    type: path
  paths:
    description:
      - With O(state=restored), restore only these files or directories, relative to a source's mount point (for
        example V(etc/app.conf)); no leading C(/), no C(..), no symlink leading out of the copy.
      - Without it the whole sources are restored (see O(volumes)).
      - The paths that differ are copied under a journal in the state file naming each destination, written before
        the first is copied and cleared after the last; a run killed meanwhile leaves it, every other run of the pool
        is refused until M(pitcopy.versions.verify_records) with O(pitcopy.versions.verify_records#module:repair=true)
        has removed what the kill left beside the destinations (V(restore_leftover)); then restore the paths again.
    type: list
    elements: str
  restore_to:
    description:
      - With O(state=restored) and O(paths), restore under this directory instead of in place (an absolute path
        outside the pool's sources whose parent directory exists; created when missing). With one source restored
        a path lands at C(<restore_to>/<path>), with several at C(<restore_to>/<source name>/<path>) (names as in
        RV(mounts)). What is there already at those paths is replaced, nothing else.
      - With O(dataset), the paths land at C(<restore_to>/<path>) as they lie in the dataset.
      - With O(state=restored) and no O(paths), whole sources of O(version) are restored as NEW volumes beside
        production, named under O(restore_to)'s rules for the technology; nothing existing is overwritten. For
        C(btrfs_snapshot) and C(btrfs_send), O(restore_to) is an existing directory on the btrfs filesystem that
        holds the copies (for C(btrfs_snapshot) the sources' filesystem, for C(btrfs_send) the target pool's), outside the
        pool's sources and outside C(.pitcopy) directories; each source becomes the writable snapshot
        C(<restore_to>/<source's last component>) of its copy (the whole name with C(/) as C(_) where two sources
        share a last component, as in RV(mounts)). For C(lvm_thin) and C(lvm_snapshot), O(restore_to) is an LV
        name prefix (letters, digits and C(_ . + -), not starting with C(-)), and each source C(vg/lv) becomes the new
        LV C(vg/<restore_to><lv>) in its own VG; or, with one source restored (see O(volumes)), the new LV's
        C(vg/lv) name in that source's VG. C(lvm_thin) makes an active, writable thin snapshot of the thin copy;
        C(lvm_snapshot) (LVM makes no snapshot of a classic snapshot) a new LV the size of the origin holding the
        snapshot's blocks, tagged C(pitcopy_restoring) until every block is written. Each new LV is tagged
        C(pitcopy_restored_from=<the copy's LV UUID>), none of the pool's copy tags. For C(lvm_clone), the same
        prefix puts each new LV C(vg/<restore_to><lv>) beside its source, in the source's VG (the copy may be in
        another VG); with one source restored, O(restore_to) may instead be a C(vg/lv) name in any existing VG (the
        copy's VG, when the source's VG has no room or is gone). C(lvm_clone) makes a new plain LV of the copy's
        size holding the copy's blocks, checked against the copy's sha256 as they are read, tagged
        C(pitcopy_restoring) until then and C(pitcopy_restored_from=<the copy's LV UUID>:<its sha256>); a VG that
        does not exist, or without room for the new LVs, is refused before anything is made. For C(zfs_snapshot) and
        C(zfs_send), O(restore_to) is the name of an existing ZFS filesystem dataset (not a path, not a zvol), in
        any zpool of the host, outside the pool's sources and targets; each source C(<zpool>/.../<name>) becomes the
        new dataset C(<restore_to>/<name>) (the whole name with C(/) as C(_) where two sources share a last
        component), made by C(zfs send) of the version's snapshot (for C(zfs_send) the received one in the target)
        piped to C(zfs receive), not a clone, so rotation still destroys the copy; it is mounted where it inherits,
        and carries the user property C(pitcopy:restored_from=<the guid of the snapshot sent>) and no snapshot.
        See RV(restored_to).
      - The new volumes carry none of the pool's copy marks and are recorded in no replication record, so rotation,
        retention, O(state=absent), pool removal and M(pitcopy.versions.verify_records) never touch or report them.
        Deleting them is the user's job (C(btrfs subvolume delete), C(lvremove), C(zfs destroy)).
      - A volume that exists already and was made from the same version's copy is no change; anything else at its
        name is refused before anything is made. Several sources are made one by one under a journal naming every
        volume; a run killed midway is finished by M(pitcopy.versions.verify_records) with
        O(pitcopy.versions.verify_records#module:repair=true), which makes the missing volumes and never deletes one.
      - Whole sources restored elsewhere are not supported for C(lvm_clone) yet (refused, nothing changed).
    type: path
  media:
    description:
      - With O(state=dumped), the medium, an existing absolute directory, on a filesystem you name (another disk, a
        removable drive, a network filesystem), owned by root or the user running the module and writable by no one
        else (its parents neither, except sticky ones like C(/tmp)), with no symbolic link on the way, and not inside
        a source or a target directory of the pool. A missing, relative or unsafe O(media) is refused, nothing
        written.
      - The streams go to C(<media>/<pool>/v<version>/); nothing else of the medium is ever touched or deleted.
        A run killed while writing leaves only a C(.pitcopy-dump.<pid>.*) file there, which
        M(pitcopy.versions.verify_records) reports (V(media_leftover)) and removes with
        O(pitcopy.versions.verify_records#module:repair=true).
    type: path
  from_media:
    description:
      - With O(state=restored), restore whole sources of O(version) from the dump of O(version) on this medium
        (the O(media) it was dumped to, as the inventory records it) instead of from the copies, as NEW volumes
        under O(restore_to), which is required. For C(btrfs_snapshot) and C(btrfs_send), O(restore_to) is an
        existing directory on any btrfs filesystem, outside the pool's sources and C(.pitcopy) directories; each
        source becomes the writable subvolume C(<restore_to>/<source's last component>) (received with C(btrfs
        receive) into C(<restore_to>/.pitcopy-media.<pid>), snapshotted writable to its name, the received one
        deleted), carrying none of the pool's marks. For C(zfs_snapshot) and C(zfs_send), O(restore_to) is the name
        of an existing filesystem dataset, as for whole sources restored elsewhere; each source becomes the new
        dataset C(<restore_to>/<name>), received with C(zfs receive -u) (marked C(pitcopy:restoring=media) until it
        is finished), its received snapshot destroyed, mounted where it inherits (an encrypted one stays unmounted
        until its key is loaded), carrying none of the pool's marks. For C(lvm_snapshot), C(lvm_thin) and
        C(lvm_clone), O(restore_to) is an LV name prefix (each source C(vg/lv) becomes C(vg/<restore_to><lv>)) or,
        with one source, the new LV's C(vg/lv) name in any existing VG; the new LV is a thin LV in the thin pool the
        stream names when that VG has it (an lvm_thin copy; all-zero MiBs are not written when the pool zeroes new
        blocks), else a plain LV of the stream's size, every block written. It is tagged
        C(pitcopy_restoring) and C(pitcopy_restored_from=media) while it is written (removed when anything fails)
        and untagged when it is whole.
      - With O(volumes), only those sources. Not with O(paths).
      - Runs under the journal of a restore elsewhere naming the medium; a run killed midway is finished by
        M(pitcopy.versions.verify_records) with O(pitcopy.versions.verify_records#module:repair=true).
    type: path
  dataset:
    description:
      - With O(state=restored) and O(paths), the paths are relative to this dataset's directory (a dataset of the
        pool, see O(pitcopy.versions.copy_pool#module:datasets)), for example V(base/16384) of dataset V(db) at
        C(/srv/pg/data); each is read from the copy of the source volume it lies on in that version. Restored in
        place, it goes back under the dataset's directory; with O(restore_to), under that directory.
      - The version must hold the dataset (M(pitcopy.versions.copy_pool_info) O(pitcopy.versions.copy_pool_info#module:dataset)
        lists the versions that do); an unknown dataset, a version that does not hold it, a path with C(..), an
        absolute path or a symlink leading out of the dataset is refused and nothing is changed. Not with
        O(volumes).
    type: str
seealso:
  - module: pitcopy.versions.copy_pool
  - module: pitcopy.versions.prepair_record
  - module: pitcopy.versions.verify_records
"""

EXAMPLES = r"""
- name: Take a copy version of the web pool
  pitcopy.versions.copy_version:
    pool: web
  register: taken

- name: Show which target pool it used and how long the copy window was
  ansible.builtin.debug:
    msg: "version {{ taken.version.number }} in target pool {{ taken.version.target_pool }}, {{ taken.copy_window_ms }} ms"

- name: Take the daily copy version once per day, however often the job runs
  pitcopy.versions.copy_version:
    pool: offsite
    label: "daily-{{ '%Y-%m-%d' | strftime }}"

- name: Restore only the database subvolume from version 1
  pitcopy.versions.copy_version:
    pool: web
    state: restored
    version: 1
    volumes:
      - /srv/data/db

- name: Take a copy version labelled pre-upgrade before upgrading the database
  pitcopy.versions.copy_version:
    pool: web
    label: pre-upgrade

- name: Hold the version labelled pre-upgrade so that rotation never replaces it
  pitcopy.versions.copy_version:
    pool: web
    state: held
    label: pre-upgrade
    reason: database schema upgrade of 2026-12-01

- name: Release that hold once the upgrade is done
  pitcopy.versions.copy_version:
    pool: web
    state: released
    label: pre-upgrade

- name: Mount version 2 read-only under /srv/data/browse (/srv/data/browse/db, /srv/data/browse/www)
  pitcopy.versions.copy_version:
    pool: web
    state: mounted
    version: 2
    path: /srv/data/browse
  register: browsed

- name: Show where each source's copy is readable
  ansible.builtin.debug:
    msg: "{{ browsed.mounts }}"

- name: Unmount version 2
  pitcopy.versions.copy_version:
    pool: web
    state: unmounted
    version: 2

- name: Restore one file of the www subvolume in place from version 2, leaving everything else as it is
  pitcopy.versions.copy_version:
    pool: web
    state: restored
    version: 2
    volumes:
      - /srv/data/www
    paths:
      - index.html

- name: Restore the uploads directory as of version 2 beside production, to compare it
  pitcopy.versions.copy_version:
    pool: web
    state: restored
    version: 2
    volumes:
      - /srv/data/www
    paths:
      - uploads
    restore_to: /srv/data/compare

- name: Restore the whole db and www subvolumes as of version 2 as new writable snapshots under /srv/data/compare
  pitcopy.versions.copy_version:
    pool: web
    state: restored
    version: 2
    restore_to: /srv/data/compare
  register: beside

- name: Show where each source's data as of version 2 now is (/srv/data/compare/db, /srv/data/compare/www)
  ansible.builtin.debug:
    msg: "{{ beside.restored_to }}"

- name: A directory for dumps on the backup disk, writable by root only
  ansible.builtin.file:
    path: /srv/backup/media
    state: directory
    mode: "0700"

- name: Dump version 2 there (one btrfs send stream per source, with its sha256)
  pitcopy.versions.copy_version:
    pool: web
    state: dumped
    version: 2
    media: /srv/backup/media

- name: A directory on the data filesystem to restore into
  ansible.builtin.file:
    path: /srv/data/from-media
    state: directory
    mode: "0755"

- name: Restore version 2 from the medium as new writable subvolumes, even if its copies are gone
  pitcopy.versions.copy_version:
    pool: web
    state: restored
    version: 2
    from_media: /srv/backup/media
    restore_to: /srv/data/from-media

- name: Delete copy version 1
  pitcopy.versions.copy_version:
    pool: web
    state: absent
    version: 1
"""

RETURN = r"""
version:
  description:
    - The copy version that was taken, deleted or restored (that would be, in check mode).
    - With O(state=present) and an existing O(label), the version that carries the label.
    - Null with O(state=absent) when the version did not exist (nothing to do).
    - With O(state=held) and O(state=released), the version as it is afterwards.
    - With O(from_media), null when the pool no longer keeps the version (its copies are gone).
  returned: success
  type: dict
  contains:
    number:
      description: The copy version number; numbers grow monotonically.
      type: int
      sample: 3
    target_pool:
      description: The target pool that holds it.
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
        - What went wrong around this copy although it was kept (a failed post-copy hook, a pre-copy hook that
          failed without O(pitcopy.versions.copy_pool#module:pre_copy_hooks[].abort_on_failure), a filesystem the
          watchdog thawed early so that the copy may not be one point in time). Also on the record and in the task's
          warnings. A failed post-copy hook with C(abort_on_failure) fails the task after the copy was recorded.
      type: list
      elements: str
      sample: []
    held:
      description: Whether the version is held (see O(state=held)).
      type: bool
      sample: false
    hold_reason:
      description: The O(reason) of its hold, or null.
      type: str
      sample: null
    pre_copy_record:
      description:
        - Where the copy record came from. V(prepairing) a pre-pairing record, V(replication) the replication record
          of the version replaced, V(none) a fresh target selection.
      type: str
      sample: prepairing
    pairs:
      description:
        - The copy pairs of the version, each with C(source) and C(target).
        - For send technologies (C(btrfs_send), C(zfs_send)), each pair also has C(base_version), the version its copy
          was sent incrementally from (C(btrfs send -p) from the base kept beside the source, C(zfs send -i) from the
          bookmark kept on the source), or null for a full send (the
          first copy into its target pool, or its base gone or not matching the copy the target pool holds); and
          C(bytes_sent), the bytes of the send stream, counted as it passed through the module. Both are left out
          when not known (versions taken before incremental sends, or finished by M(pitcopy.versions.verify_records)
          repair after a kill).
        - In check mode (O(state=present), a new version), each pair of a send technology has the C(base_version) the
          copy would send from, chosen as the copy chooses it (the storage only read), or null for a full send; and
          C(bytes_sent) null, known only once sent.
      type: list
      elements: dict
      sample: [{"source": "/srv/data/db", "target": "/srv/backup/a", "base_version": 3, "bytes_sent": 1048576}]
replaced_version:
  description: The version number that the new version replaced (its copies are deleted), or null.
  returned: success
  type: int
  sample: 1
broken_pairs:
  description: Pairs released because their source left the copy pool since the pre-copy record was made.
  returned: success
  type: list
  elements: dict
  sample: [{"source": "/srv/data/old", "target": "/srv/backup/b"}]
deleted_versions:
  description:
    - Version numbers whose copies and records were deleted besides the replaced one, because the pool keeps only
      the copy pool's C(versions) versions or because its O(pitcopy.versions.copy_pool#module:retention) grid no
      longer needs them (with O(state=present); in check mode, those that would be deleted), or the deleted version
      (with O(state=absent)).
  returned: success
  type: list
  elements: int
  sample: []
restored:
  description:
    - With O(state=restored), the sources that were restored (would be, in check mode).
    - A source that already held its copy's data is not restored and not listed.
  returned: when O(state=restored)
  type: list
  elements: str
  sample: [/srv/data/db]
asides:
  description:
    - With O(state=restored), where each restored source's data from before the restore is held while its copy takes
      its place (btrfs; C(zfs_send), the source renamed to C(<source>.pitcopy-replaced); empty for technologies
      that restore in place). The aside is deleted once the source holds
      the copy; it is recorded in the restore journal first, so a run killed in between is finished by
      M(pitcopy.versions.verify_records) with O(pitcopy.versions.verify_records#module:repair=true).
  returned: when O(state=restored)
  type: list
  elements: dict
  contains:
    source:
      description: The source volume.
      type: str
    aside:
      description: Where its data from before the restore is held during the restore.
      type: str
  sample: [{"source": "/srv/data/db", "aside": "/srv/data/.pitcopy/web/restore/.pitcopy-aside.db"}]
mounts:
  description:
    - With O(state=mounted), where each source's copy is readable; with O(state=unmounted), where they were.
  returned: when O(state=mounted) or O(state=unmounted)
  type: list
  elements: dict
  contains:
    source:
      description: The source volume.
      type: str
    path:
      description: The directory its copy is mounted at.
      type: str
  sample: [{"source": "/srv/data/www", "path": "/srv/data/browse/www"}]
datasets:
  description:
    - With O(state=mounted), where each dataset the version holds reads in the mounted copies, C(name), C(path)
      (the dataset's directory in the copy of the source volume holding it) and C(places) (per source volume of
      the dataset, C(source), C(path) and C(at), where in the dataset that part belongs).
  returned: when O(state=mounted)
  type: list
  elements: dict
  sample: [{"name": "db", "path": "/srv/data/browse/pg/data",
            "places": [{"source": "/srv/pg", "path": "/srv/data/browse/pg/data", "at": ""}]}]
restored_paths:
  description:
    - With O(state=restored) and O(paths), one item per path and source whose copy holds it.
  returned: when O(state=restored) with O(paths)
  type: list
  elements: dict
  contains:
    source:
      description: The source volume.
      type: str
    path:
      description:
        - The path as given (normalized); with O(dataset), relative to the dataset's part on that source volume.
      type: str
    dataset:
      description: The O(dataset), when given.
      type: str
      returned: with O(dataset)
    copy:
      description: Where it was read (null when the copy is read through a temporary mount).
      type: str
    destination:
      description: Where it is restored.
      type: str
    changes:
      description:
        - What restoring it changes (would change, in check mode), one entry per changed file naming it and why,
          at most 200; empty when it already is as in the version (then it is not copied). Null when check mode
          cannot read the copy.
      type: list
      elements: str
    change_count:
      description: How many changes there are in all.
      type: int
  sample: [{"source": "/srv/data/www", "path": "index.html", "copy": "/srv/data/.pitcopy/web/02/www/index.html",
            "destination": "/srv/data/www/index.html", "changes": ["index.html: missing"], "change_count": 1}]
restored_to:
  description:
    - With O(state=restored), O(restore_to) and no O(paths), the new volume each source was restored to (would be,
      in check mode), those that existed already from this version included. Not the pool's, never rotated.
  returned: when O(state=restored) with O(restore_to) and no O(paths)
  type: list
  elements: dict
  contains:
    source:
      description: The source volume.
      type: str
    volume:
      description: The new volume holding the source's data as of the version.
      type: str
  sample: [{"source": "/srv/data/db", "volume": "/srv/data/compare/db"}]
restore_to:
  description: With O(state=restored) and O(restore_to), O(restore_to) as given (normalized with O(paths)), or null
    (in place).
  returned: when O(state=restored) with O(paths) or O(restore_to)
  type: str
  sample: /srv/data/compare
medium:
  description: With O(state=dumped), O(media) normalized.
  returned: when O(state=dumped)
  type: str
  sample: /srv/backup/media
written:
  description:
    - With O(state=dumped), the streams written (would be, in check mode); empty when the medium holds them all
      already with matching sizes and checksums.
  returned: when O(state=dumped)
  type: list
  elements: dict
  contains:
    source:
      description: The source volume.
      type: str
    stream:
      description: The stream's path relative to O(media).
      type: str
  sample: [{"source": "/srv/data/db", "stream": "web/v2/db-4f9c0a1b2c3d.btrfs-stream"}]
dump:
  description:
    - With O(state=dumped), the inventory entry of the dump (null in check mode when something would be written);
      with O(from_media), the entry restored from.
  returned: when O(state=dumped) or O(from_media)
  type: dict
  contains:
    medium:
      description: The medium directory.
      type: str
    version:
      description: The version dumped.
      type: int
    version_time:
      description: The version's time stamp (when its copies were taken, ISO 8601 UTC).
      type: str
    streams:
      description: One per source, C(source), C(stream) (relative to the medium), C(size) (bytes), C(sha256).
      type: list
      elements: dict
    dumped:
      description: When the dump was written (ISO 8601 UTC).
      type: str
  sample: {"medium": "/srv/backup/media", "version": 2, "version_time": "2026-11-25T23:00:00Z",
           "streams": [{"source": "/srv/data/db", "stream": "web/v2/db-4f9c0a1b2c3d.btrfs-stream",
                        "size": 1048576, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}],
           "dumped": "2026-11-26T02:00:00Z"}
from_media:
  description: With O(from_media), the medium restored from (normalized).
  returned: when O(state=restored) with O(from_media)
  type: str
  sample: /srv/backup/media
copy_window_ms:
  description:
    - Milliseconds from the first freeze, hook or copy command to the last thaw, for O(state=present).
    - 0 when nothing was copied (check mode, or an existing O(label)).
  returned: when O(state=present)
  type: float
  sample: 41.7
hooks:
  description:
    - What each pre-copy and post-copy hook of the pool did when this version was taken, in the order they ran.
    - A hook that failed without aborting the copy is only visible here.
    - Empty when nothing was copied (check mode, or an existing O(label)).
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - {phase: pre, argv: [/usr/local/bin/db-checkpoint], rc: 0, ok: true, timed_out: false, ms: 812.4, stdout: "", stderr: ""}
"""

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._module import (
    PitcopyModule,
    check_no_control_chars,
    check_positive,
)


def validate(params):
    check_no_control_chars(params, ("pool", "label", "volumes", "reason"))
    check_positive(params, "version")
    if params["state"] == "present" and params["version"] is not None:
        raise InvalidInput(
            "version %r is not accepted with state=present: the next version number is assigned; "
            "use label to make the task idempotent" % (params["version"],)
        )
    if params["volumes"] is not None and params["state"] != "restored":
        raise InvalidInput("volumes is only accepted with state=restored, not state=%s" % params["state"])
    if params["reason"] is not None and params["state"] != "held":
        raise InvalidInput("reason %r is only accepted with state=held, not state=%s" % (
            params["reason"], params["state"]))
    if params["force"] and params["state"] != "absent":
        raise InvalidInput("force is only accepted with state=absent, not state=%s" % params["state"])
    check_no_control_chars(params, ("path", "paths", "restore_to", "dataset", "media", "from_media"))
    if params["media"] is not None and params["state"] != "dumped":
        raise InvalidInput("media %r is only accepted with state=dumped, not state=%s (a restore from media takes "
                           "from_media)" % (params["media"], params["state"]))
    if params["from_media"] is not None:
        if params["state"] != "restored":
            raise InvalidInput("from_media %r is only accepted with state=restored, not state=%s" % (
                params["from_media"], params["state"]))
        if params["paths"] is not None or params["dataset"] is not None:
            raise InvalidInput("from_media restores whole sources: paths and dataset are not accepted with it")
        if params["restore_to"] is None:
            raise InvalidInput("from_media %r needs restore_to: a restore from media makes NEW volumes beside "
                               "production, never in place" % (params["from_media"],))
    if params["path"] is not None and params["state"] not in ("mounted", "unmounted"):
        raise InvalidInput("path %r is only accepted with state=mounted or state=unmounted, not state=%s (restore "
                           "takes paths and restore_to)" % (params["path"], params["state"]))
    if params["dataset"] is not None and not params["paths"]:
        raise InvalidInput("dataset %s is only accepted with state=restored and paths (files or directories "
                           "relative to the dataset)" % (params["dataset"],))
    for name in ("paths", "restore_to"):
        if params[name] is not None and params["state"] != "restored":
            raise InvalidInput("%s is only accepted with state=restored, not state=%s" % (name, params["state"]))
    if params["paths"] is not None and not params["paths"]:
        raise InvalidInput("paths is empty; name at least one file or directory relative to a source's mount point, "
                           "or leave paths out to restore whole sources")


def main():
    module = PitcopyModule(
        argument_spec=dict(
            pool=dict(type="str", required=True),
            state=dict(type="str", default="present",
                       choices=["present", "absent", "restored", "held", "released", "mounted", "unmounted",
                                "dumped"]),
            version=dict(type="int"),
            label=dict(type="str"),
            volumes=dict(type="list", elements="str"),
            reason=dict(type="str"),
            force=dict(type="bool", default=False),
            path=dict(type="path"),
            paths=dict(type="list", elements="str"),
            restore_to=dict(type="path"),
            dataset=dict(type="str"),
            media=dict(type="path"),
            from_media=dict(type="path"),
        ),
        required_if=[
            ("state", "absent", ("version",)),
            ("state", "restored", ("version",)),
            ("state", "mounted", ("version", "path")),
            ("state", "unmounted", ("version",)),
            ("state", "dumped", ("version", "media")),
            ("state", "held", ("version", "label"), True),
            ("state", "released", ("version", "label"), True),
        ],
        validate=validate,
    )
    params = module.params

    def build(session):
        if params["state"] == "present":
            return session.plan_copy(label=params["label"])
        if params["state"] == "absent":
            return session.plan_delete(params["version"], force=params["force"])
        if params["state"] in ("held", "released"):
            return session.plan_hold(params["version"], held=params["state"] == "held", reason=params["reason"],
                                     label=params["label"])
        if params["state"] == "mounted":
            return session.plan_mount(params["version"], params["path"])
        if params["state"] == "unmounted":
            return session.plan_unmount(params["version"], path=params["path"])
        if params["state"] == "dumped":
            return session.plan_dump(params["version"], params["media"])
        if params["from_media"] is not None:
            return session.plan_restore_from_media(params["version"], params["from_media"], params["restore_to"],
                                                   volumes=params["volumes"])
        if params["paths"] is not None:
            return session.plan_restore_paths(params["version"], params["paths"], restore_to=params["restore_to"],
                                              volumes=params["volumes"], dataset=params["dataset"])
        if params["restore_to"] is not None:
            return session.plan_restore_elsewhere(params["version"], params["restore_to"], volumes=params["volumes"])
        return session.plan_restore(params["version"], volumes=params["volumes"])

    module.run_plan(params["pool"], build)


if __name__ == "__main__":
    main()
