# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small LVM host in memory: a runner for the real LVM backends in unit tests.

It answers the commands ``_lvm.py`` issues (``lvs --reportformat json``, the
``lvm`` shell on stdin with ``lvcreate -s`` / ``lvremove``, ``lvchange`` for
tags, permission and activation) from a dict of LVs, and keeps each LV's
data as a string so that the block copy can be faked by ``copy_blocks``
(install with ``host.patch(monkeypatch)``). It is a model of what the tests
need, not of LVM; tests/real and the UML suite prove the backend against the
real tools.

    host = LvmHost()
    host.add("vg/A", data="A@1")
    backend = LvmCloneBackend(host)      # host is the runner
    host.patch(monkeypatch)              # device reads/writes go to host.data
    host.fail_copy_to = {"vg/b"}         # the block copy onto vg/b fails (EIO)
    host.fail_change = {"vg/b"}          # lvchange of vg/b fails
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import uuid

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError

MiB = 1024 * 1024


class LvmHost:
    def __init__(self, vg_size=1024 * MiB):
        self.lvs = {}  # "vg/lv" -> {"attr": list, "size": int, "tags": [..], "origin": str, "uuid": str}
        self.data = {}  # "vg/lv" -> str
        self.vg_size = vg_size
        self.calls = []
        self.fail_copy_to = set()
        self.fail_change = set()  # lvchange of these LVs fails, as on a full or damaged VG

    # --- the host ------------------------------------------------------------

    def add(self, name, size=8 * MiB, data=None, tags=()):
        self.lvs[name] = {"attr": list("-wi-a-----"), "size": size, "tags": list(tags), "origin": "",
                          "uuid": uuid.uuid4().hex[:32]}
        self.data[name] = data

    def tags(self, name):
        return list(self.lvs[name]["tags"])

    def writable(self, name):
        return self.lvs[name]["attr"][1] == "w"

    # --- the runner -------------------------------------------------------------

    def run(self, argv, data=None, check=True):
        argv = list(argv)
        self.calls.append(argv)
        if argv == ["lvm"]:
            errs = []
            for line in (data or b"").decode("utf-8").splitlines():
                words = line.split()
                if words == ["exit"]:
                    errs.append("  Exiting.\n")  # as the real shell says on stderr
                    break
                if not words:
                    continue
                rc, _out, err = self._one(words)
                errs.append(err)
            return 0, "", "".join(errs)
        rc, out, err = self._one(argv)
        if check and rc != 0:
            raise CommandError("%s failed with exit status %d: %s" % (argv[0], rc, err.strip()), argv=argv, rc=rc,
                               stdout=out, stderr=err)
        return rc, out, err

    def pipe(self, argvs, check=True):
        raise CommandError("no pipes on this host", argv=argvs[0], rc=1)

    def _one(self, argv):
        cmd = argv[0]
        if cmd == "lvs":
            return 0, self._report(argv), ""
        if cmd == "lvcreate":
            return self._lvcreate(argv)
        if cmd == "lvremove":
            name = argv[-1]
            if name not in self.lvs:
                return 5, "", "  Failed to find logical volume \"%s\"\n" % name
            del self.lvs[name]
            self.data.pop(name, None)
            return 0, "", ""
        if cmd == "lvchange":
            return self._lvchange(argv)
        return 127, "", "%s: command not found\n" % cmd

    def _report(self, argv):
        vgs = [a for a in argv[1:] if "/" not in a and not a.startswith("-") and "," not in a and a not in (
            "json", "b")]
        used = sum(v["size"] for v in self.lvs.values())
        rows = []
        for name in sorted(self.lvs):
            vg, lv = name.split("/", 1)
            if vgs and vg not in vgs:
                continue
            v = self.lvs[name]
            rows.append({"vg_name": vg, "lv_name": lv, "lv_attr": "".join(v["attr"]), "lv_size": str(v["size"]),
                         "origin": v["origin"], "pool_lv": "", "lv_tags": ",".join(v["tags"]),
                         "segtype": "linear", "data_percent": "", "metadata_percent": "", "snap_percent": "",
                         "lv_metadata_size": "", "lv_kernel_minor": "-1", "vg_extent_size": str(4 * MiB),
                         "vg_free": str(self.vg_size - used), "vg_size": str(self.vg_size), "lv_uuid": v["uuid"]})
        return json.dumps({"report": [{"lv": rows}]})

    def _lvcreate(self, argv):
        name = argv[argv.index("-n") + 1]
        origin = argv[-1]
        vg = origin.split("/", 1)[0]
        full = "%s/%s" % (vg, name)
        if origin not in self.lvs:
            return 5, "", "  Volume group \"%s\" has no logical volume %s\n" % (vg, origin)
        if full in self.lvs:
            return 5, "", "  Logical Volume \"%s\" already exists in volume group \"%s\"\n" % (name, vg)
        tags = [argv[i + 1] for i, a in enumerate(argv) if a == "--addtag"]
        self.lvs[full] = {"attr": list("swi-a-s---"), "size": self.lvs[origin]["size"], "tags": tags,
                          "origin": origin.split("/", 1)[1], "uuid": uuid.uuid4().hex[:32]}
        self.data[full] = self.data.get(origin)
        return 0, "", ""

    def _lvchange(self, argv):
        name = argv[-1]
        v = self.lvs.get(name)
        if v is None:
            return 5, "", "  Failed to find logical volume \"%s\"\n" % name
        if name in self.fail_change:
            return 5, "", "  Failed to update logical volume %s.\n" % name
        i = 1
        while i < len(argv) - 1:
            a = argv[i]
            if a == "--addtag" and argv[i + 1] not in v["tags"]:
                v["tags"].append(argv[i + 1])
            elif a == "--deltag" and argv[i + 1] in v["tags"]:
                v["tags"].remove(argv[i + 1])
            elif a == "-p":
                v["attr"][1] = "r" if argv[i + 1] == "r" else "w"
            elif a in ("-ay",):
                v["attr"][4] = "a"
            i += 2 if a in ("--addtag", "--deltag", "-p") else 1
        return 0, "", ""

    # --- the devices ---------------------------------------------------------------

    def _name_of(self, path):
        for name in self.lvs:
            if _lvm.dm_path(name) == path:
                return name
        raise OSError(errno.ENOENT, "No such device", path)

    def patch(self, monkeypatch):
        """Device access of _lvm (size, zero check, block copy, checksum) on
        ``self.data``; a copy onto a name in ``fail_copy_to`` fails with EIO
        after it began (the target holds half of it)."""
        host = self

        def device_size(path):
            return host.lvs[host._name_of(path)]["size"]

        def is_zero_region(path, offset, length):
            return host.data.get(host._name_of(path)) is None

        def copy_blocks(src, dst, length, only_changed=False, digest=None, progress=None):
            s, d = host._name_of(src), host._name_of(dst)
            if d in host.fail_copy_to:
                host.data[d] = "half of %s" % host.data.get(s)
                raise IOError(errno.EIO, "Input/output error", dst)
            host.data[d] = host.data.get(s)
            if digest is not None:
                digest.update(("%s" % host.data[d]).encode("utf-8"))

        def sha256_of(path, length=None, flags=0):
            return length, hashlib.sha256(("%s" % host.data.get(host._name_of(path))).encode("utf-8")).hexdigest()

        monkeypatch.setattr(_lvm, "_device_size", device_size)
        monkeypatch.setattr(_lvm, "_is_zero_region", is_zero_region)
        monkeypatch.setattr(_lvm, "_copy_blocks", copy_blocks)
        monkeypatch.setattr(_lvm, "sha256_of", sha256_of)
