# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A zfs_send restore killed before each of its zfs commands is finished by
resume_restore (what verify_records repair=true calls), against a small
model of the zfs commands the restore runs. The real proof is
tests/real/test_zfs_faults.py in the ZFS guest; this runs everywhere and
takes every kill point."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend

MUTATING = ("destroy", "rename", "inherit", "mount", "unmount", "snapshot", "set", "rollback", "receive")


class Killed(BaseException):
    """The process died here."""


class ZfsModel:
    """Filesystems and snapshots with local properties, as ``zfs get``,
    ``send | receive``, ``rename``, ``destroy``, ``inherit``, ``mount`` and
    ``unmount`` see and change them. ``kill_at``: raise Killed before that
    mutating command (1-based)."""

    def __init__(self):
        self.fs = {}     # name -> {"props": {}, "mounted": bool, "data": str}
        self.snaps = {}  # name@snap -> {"props": {}, "data": str}
        self.kill_at = None
        self.count = 0
        self.log = []

    def _step(self, what):
        self.count += 1
        if self.kill_at is not None and self.count == self.kill_at:
            raise Killed(what)
        self.log.append(what)

    def _exists(self, name):
        return name in self.fs or name in self.snaps

    def _rows(self, name, props, sources):
        snap = "@" in name
        entry = self.snaps[name] if snap else self.fs[name]
        parent = self.fs.get(name.split("@")[0]) if snap else None
        fixed = {"type": ("snapshot" if snap else "filesystem", "-"), "written": ("0", "-"),
                 "guid": (str(abs(hash(name)) % 10 ** 12), "-")}
        if not snap:
            fixed.update({"mounted": ("yes" if entry["mounted"] else "no", "-"), "canmount": ("on", "default"),
                          "mountpoint": ("/mnt/" + name, "default")})
        if props == ["all"]:
            props = sorted(set(entry["props"]) | set(fixed))
        out = []
        for prop in props:
            if prop in entry["props"]:
                value, source = entry["props"][prop], "local"
            elif parent is not None and prop in parent["props"]:
                value, source = parent["props"][prop], "inherited from " + name.split("@")[0]
            elif prop in fixed:
                value, source = fixed[prop]
            else:
                value, source = "-", "-"
            if sources and source not in sources:
                continue
            out.append("%s\t%s\t%s\t%s\n" % (name, prop, value, source))
        return out

    def _get(self, argv):
        args = argv[2:]
        types, sources, recursive, depth = None, None, False, None
        rest = []
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-H", "-p"):
                pass
            elif a in ("-o",):
                i += 1
            elif a == "-t":
                types = args[i + 1].split(",")
                i += 1
            elif a == "-s":
                sources = args[i + 1].split(",")
                i += 1
            elif a == "-d":
                depth = int(args[i + 1])
                i += 1
            elif a == "-r":
                recursive = True
            else:
                rest.append(a)
            i += 1
        props, names = rest[0].split(","), rest[1:]
        everything = sorted(list(self.fs) + list(self.snaps))
        if not names:
            chosen = everything
        else:
            chosen = []
            for n in names:
                if not self._exists(n):
                    continue
                chosen.append(n)
                if recursive or depth:
                    chosen += [x for x in everything if x != n and (x.startswith(n + "/") or x.startswith(n + "@"))]
        out = []
        missing = [n for n in names if not self._exists(n)]
        for n in chosen:
            kind = "snapshot" if "@" in n else "filesystem"
            if types and kind not in types:
                continue
            out += self._rows(n, props, sources)
        err = "".join("cannot open '%s': dataset does not exist\n" % n for n in missing)
        return (1 if missing else 0), "".join(out), err

    def run(self, argv, data=None, check=True):
        argv = [str(a) for a in argv]
        if argv[0] == "udevadm":
            return 0, "", ""
        assert argv[0] == "zfs", argv
        sub = argv[1]
        if sub == "get":
            return self._get(argv)
        assert sub in MUTATING, argv
        self._step(" ".join(argv[1:]))
        rc, err = 0, ""
        if sub == "destroy":
            name = argv[-1]
            if name in self.snaps:
                del self.snaps[name]
            elif name in self.fs and not [x for x in self.snaps if x.startswith(name + "@")]:
                del self.fs[name]
            else:
                rc, err = 1, "cannot destroy '%s': has snapshots or does not exist" % name
        elif sub == "rename":
            old, new = argv[-2], argv[-1]
            if old not in self.fs or self._exists(new):
                rc, err = 1, "cannot rename '%s' to '%s'" % (old, new)
            else:
                self.fs[new] = self.fs.pop(old)
                for s in [x for x in self.snaps if x.startswith(old + "@")]:
                    self.snaps[new + s[len(old):]] = self.snaps.pop(s)
        elif sub == "inherit":
            self.fs[argv[-1]]["props"].pop(argv[-2], None)
        elif sub in ("mount", "unmount"):
            self.fs[argv[-1]]["mounted"] = sub == "mount"
        if rc and check:
            raise CommandError("zfs failed with exit status %d: %s" % (rc, err), argv=argv, rc=rc, stderr=err)
        return rc, "", err

    def pipe(self, argvs, check=True):
        send, recv = [[str(a) for a in x] for x in argvs]
        self._step("send %s | receive %s" % (send[-1], recv[-1]))
        snap, target = send[-1], recv[-1]
        if snap not in self.snaps or self._exists(target):
            return 1, "", "cannot receive: %s exists or %s missing" % (target, snap)
        props = dict(recv[i + 1].split("=", 1) for i, a in enumerate(recv) if a == "-o")
        self.fs[target] = {"props": props, "mounted": "-u" not in recv, "data": self.snaps[snap]["data"]}
        self.snaps[target + "@" + snap.split("@")[1]] = {"props": {}, "data": self.snaps[snap]["data"]}
        return 0, "", ""


POOL = "P"
SOURCE = "tank/db"
COPY = "backup/A/db"
DEF = PoolDefinition(POOL, "zfs_send", (SOURCE,), 1, (TargetPool("A", (COPY,)),))
PAIR = CopyPair(SOURCE, COPY)


def model():
    """The source with live data; version 1's copy received in the target."""
    z = ZfsModel()
    z.fs["tank"] = {"props": {}, "mounted": True, "data": ""}
    z.fs["backup/A"] = {"props": {}, "mounted": True, "data": ""}
    z.fs[SOURCE] = {"props": {"compression": "lz4"}, "mounted": True, "data": "live"}
    z.fs[COPY] = {"props": {"pitcopy:pool": POOL, "pitcopy:version": "1", "pitcopy:source": SOURCE,
                            "readonly": "on"}, "mounted": True, "data": "v1"}
    z.snaps[COPY + "@pitcopy-P-v1"] = {"props": {}, "data": "v1"}
    return z


def restored(z):
    """What a finished restore leaves: the copy's data in the source, our
    marks and the received snapshot gone, nothing beside it, the copy kept."""
    src = z.fs.get(SOURCE)
    assert src is not None and src["data"] == "v1" and src["mounted"], src
    assert not [p for p in src["props"] if p.startswith("pitcopy:")], src["props"]
    assert src["props"].get("compression") == "lz4"  # kept from the dataset it replaced
    assert sorted(z.fs) == ["backup/A", COPY, "tank", SOURCE]
    assert sorted(z.snaps) == [COPY + "@pitcopy-P-v1"]


def test_a_whole_restore():
    z = model()
    assert ZfsSendBackend(runner=z).restore(DEF, 1, [PAIR]) == [SOURCE]
    restored(z)
    # the snapshot received with the copy carries no mark of its own: it used
    # to be skipped as not ours and left on the restored source
    assert not [s for s in z.snaps if s.startswith(SOURCE + "@")]


def steps_of(make, run):
    """The commands ``run`` gives a fresh ``make()`` model: one kill point each."""
    z = make()
    run(z)
    return z.log


def killed_at(make, run, kill_at):
    """A fresh ``make()`` model after ``run`` was killed before its
    ``kill_at``-th command; it runs on unkilled."""
    z = make()
    z.kill_at = kill_at
    with pytest.raises(Killed):
        run(z)
    z.kill_at = None
    return z


def _restore(z):
    ZfsSendBackend(runner=z).restore(DEF, 1, [PAIR])


@pytest.mark.parametrize("kill_at", range(1, len(steps_of(model, _restore)) + 1))
def test_a_restore_killed_before_each_command_is_finished(kill_at):
    z = killed_at(model, _restore, kill_at)
    b = ZfsSendBackend(runner=z)
    aside = SOURCE + ".pitcopy-replaced"
    where = b.restore_progress(DEF, PAIR, aside)  # what verify_records reports
    b.resume_restore(DEF, 1, PAIR, aside)
    restored(z)
    assert where
    assert b.restore_aside(DEF, SOURCE) == aside  # named in the journal


def test_what_fits_no_state_of_a_restore_is_left_alone():
    z = model()
    z.fs[SOURCE + ".pitcopy-replaced"] = {"props": {}, "mounted": False, "data": "someone's"}
    before = (dict(z.fs), dict(z.snaps))
    with pytest.raises(InvalidInput) as exc:
        ZfsSendBackend(runner=z).resume_restore(DEF, 1, PAIR, SOURCE + ".pitcopy-replaced")
    assert SOURCE + ".pitcopy-replaced" in exc.value.msg and "nothing was changed" in exc.value.msg
    assert (z.fs, z.snaps) == before and z.log == []
