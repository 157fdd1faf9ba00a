# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small simulated ZFS host behind the runner interface, for unit tests
that drive the real zfs_snapshot backend through whole module runs (the
check-mode test, where the commands a module runs matter, not the tool's
every answer). It answers the ``zfs`` commands that backend uses in the
format of the real tool (tab-separated ``-H -p`` output, error texts of
OpenZFS 2.1), and records every call. It is no proof against the real tool:
the VM suite (tests/real/test_zfs.py) is, and the replay tests
(test_replay_*.py) use what the real tools printed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._runner import command_error

# built-in properties the simulator knows, with their value for each type
_NUMERIC = ("used", "available", "referenced", "volsize", "volblocksize", "recordsize", "written", "createtxg")


class ZfsHost(object):
    """Datasets and snapshots of one zpool; ``calls`` lists every argv run."""

    def __init__(self, zpool="tank", available=10 << 30):
        self.zpool = zpool
        self.available = available
        self.txg = 100
        self.ds = {}
        self.calls = []
        self._add(zpool, "filesystem", data="")

    # --- the host ---------------------------------------------------------------

    def _add(self, name, kind, data="", props=None):
        self.txg += 1
        self.ds[name] = {"type": kind, "data": data, "props": dict(props or {}), "createtxg": self.txg}

    def add_filesystem(self, name, data=""):
        self._add(name, "filesystem", data=data)

    def write(self, name, data):
        self.ds[name]["data"] = data

    def state(self):
        """Everything a mutation would change, for before/after comparisons."""
        return sorted((n, d["type"], d["data"], sorted(d["props"].items()), d["createtxg"])
                      for n, d in self.ds.items())

    def snapshots_of(self, name):
        return sorted((n for n in self.ds if n.startswith(name + "@")), key=lambda n: self.ds[n]["createtxg"])

    # --- the runner interface ----------------------------------------------------

    def resolve(self, name):
        return "/usr/sbin/" + name

    def processes(self):
        """Commands run so far (SubprocessRunner.processes)."""
        return len(self.calls)

    def run(self, argv, data=None, check=True, timeout=None):
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        if argv[0] == "udevadm":
            return 0, "", ""
        if argv[0] != "zfs":
            rc, out, err = 127, "", "cannot run %s: not on this simulated host" % argv[0]
        else:
            rc, out, err = getattr(self, "_zfs_" + argv[1], self._unknown)(argv[2:])
        if check and rc != 0:
            raise command_error(argv, rc, out, err)
        return rc, out, err

    def pipe(self, argvs, check=True, timeout=None):
        self.calls.append(["|"] + [list(a) for a in argvs])
        raise AssertionError("the simulated ZFS host has no send/receive")

    # --- zfs subcommands ------------------------------------------------------------

    @staticmethod
    def _unknown(args):
        return 2, "", "unrecognized command\n"

    def _missing(self, name):
        return "cannot open '%s': dataset does not exist\n" % name

    def _value(self, name, prop):
        d = self.ds[name]
        if prop == "type":
            return d["type"], "-"
        if prop == "name":
            return name, "-"
        if prop == "createtxg":
            return str(d["createtxg"]), "-"
        if prop == "guid":  # unique per object made, kept by a rename, as ZFS's
            return str(7000000 + d["createtxg"]), "-"
        if prop == "available":
            return str(self.available), "-"
        if prop == "mounted":
            return ("yes" if d["type"] == "filesystem" else "-"), "-"
        if prop.startswith("written@"):
            snap = name + "@" + prop.split("@", 1)[1]
            if snap not in self.ds or "@" in name:
                return "-", "-"
            return ("0" if self.ds[snap]["data"] == d["data"] else "4096"), "-"
        if prop in _NUMERIC:
            return str(len(d["data"]) * 512 + 4096), "-"
        if prop in d["props"]:
            return d["props"][prop], "local"
        if ":" in prop and "@" not in name:
            parent = name.rsplit("/", 1)[0] if "/" in name else None
            while parent:
                if prop in self.ds.get(parent, {}).get("props", {}):
                    return self.ds[parent]["props"][prop], "inherited from %s" % parent
                parent = parent.rsplit("/", 1)[0] if "/" in parent else None
        return "-", "-"

    def _select(self, names, types, recursive, depth):
        out, err = [], ""
        for n in names:
            if n not in self.ds:
                err += self._missing(n)
                continue
            for m in sorted(self.ds):
                inside = m == n or (recursive or depth is not None) and (
                    m.startswith(n + "/") or m.startswith(n + "@"))
                if depth is not None and inside and m != n:
                    rest = m[len(n) + 1:]
                    inside = rest.count("/") < depth if m.startswith(n + "/") else m.startswith(n + "@") and depth >= 1
                if inside and self.ds[m]["type"] in types and m not in out:
                    out.append(m)
        return out, err

    def _options(self, args, with_value):
        opts, rest = {}, list(args)
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0)
            if flag in with_value:
                opts[flag] = rest.pop(0)
            else:
                opts[flag] = True
        return opts, rest

    def _zfs_get(self, args):
        opts, rest = self._options(args, ("-o", "-t", "-d", "-s"))
        props, names = rest[0].split(","), rest[1:]
        types = opts.get("-t", "filesystem,volume").split(",")
        sources = opts.get("-s")
        depth = int(opts["-d"]) if "-d" in opts else None
        if names:
            chosen, err = self._select(names, types, "-r" in opts, depth)
        else:
            chosen, err = [n for n in sorted(self.ds) if self.ds[n]["type"] in types], ""
        lines = []
        for n in chosen:
            for p in props:
                value, source = self._value(n, p)
                if sources and source.split(" ")[0] not in sources.split(","):
                    continue
                lines.append("%s\t%s\t%s\t%s\n" % (n, p, value, source))
        return (1 if err else 0), "".join(lines), err

    def _zfs_list(self, args):
        opts, names = self._options(args, ("-o", "-t", "-d", "-s"))
        fields = opts.get("-o", "name").split(",")
        types = opts.get("-t", "filesystem,volume").replace("bookmark", "").split(",")
        depth = int(opts["-d"]) if "-d" in opts else None
        chosen, err = self._select(names, types, "-r" in opts, depth)
        if opts.get("-s") == "createtxg":
            chosen.sort(key=lambda n: self.ds[n]["createtxg"])
        out = "".join("\t".join(self._value(n, f)[0] for f in fields) + "\n" for n in chosen)
        return (1 if err else 0), out, err

    def _zfs_snapshot(self, args):
        opts, names, props = {}, [], {}
        rest = list(args)
        while rest:
            word = rest.pop(0)
            if word == "-o":
                key, _sep, value = rest.pop(0).partition("=")
                props[key] = value
            else:
                names.append(word)
        errs = []
        for n in names:
            ds = n.split("@", 1)[0]
            if ds not in self.ds:
                errs.append(self._missing(ds))
            elif n in self.ds:
                errs.append("cannot create snapshot '%s': dataset already exists\n" % n)
        if errs:
            return 1, "", "".join(errs) + "no snapshots were created\n"
        for n in names:
            self._add(n, "snapshot", data=self.ds[n.split("@", 1)[0]]["data"], props=props)
        return 0, "", ""

    def _below(self, ds, snap):
        """The snapshots called ``snap`` of ``ds`` and of its descendants."""
        return [m for m in sorted(self.ds) if m.endswith("@" + snap)
                and (m.split("@", 1)[0] == ds or m.split("@", 1)[0].startswith(ds + "/"))]

    def _zfs_destroy(self, args):
        name = args[-1]
        if "-r" in args and "@" in name:
            # every snapshot of that name below the dataset, in one
            # transaction: one held makes the whole command fail
            ds, snap = name.split("@", 1)
            found = self._below(ds, snap)
            if not found:
                return 1, "", "could not find any snapshots to destroy; check snapshot names.\n"
            held = [m for m in found if self.ds[m].get("holds")]
            if held:
                return 1, "", "cannot destroy snapshot %s: dataset is busy\n" % held[0]
            for m in found:
                del self.ds[m]
            return 0, "", ""
        if name not in self.ds:
            return 1, "", "could not find any snapshots to destroy; check snapshot names.\n"
        if self.ds[name].get("holds"):
            return 1, "", "cannot destroy snapshot %s: dataset is busy\n" % name
        del self.ds[name]
        return 0, "", ""

    def _zfs_hold(self, args):
        tag, snap = args[-2], args[-1]
        if snap not in self.ds:
            return 1, "", self._missing(snap)
        if tag in self.ds[snap].setdefault("holds", []):
            return 1, "", "cannot hold snapshot '%s': tag already exists on this dataset\n" % snap
        self.ds[snap]["holds"].append(tag)
        return 0, "", ""

    def _zfs_release(self, args):
        tag, snap = args[-2], args[-1]
        if tag not in self.ds.get(snap, {}).get("holds", []):
            return 1, "", "cannot release hold from snapshot '%s': no such tag on this dataset\n" % snap
        self.ds[snap]["holds"].remove(tag)
        return 0, "", ""

    def _zfs_holds(self, args):
        names = [a for a in args if not a.startswith("-")]
        missing = [n for n in names if n not in self.ds]
        out = "".join("%s\t%s\tTue Dec  1 04:00 2026\n" % (n, t) for n in names if n in self.ds
                      for t in self.ds[n].get("holds", []))
        return (1 if missing else 0), out, "".join(self._missing(n) for n in missing)

    def _zfs_rename(self, args):
        old, new = args[-2], args[-1]
        if old not in self.ds:
            return 1, "", self._missing(old)  # -r too: the named snapshot must exist
        if "-r" in args:
            # every snapshot of the old name below the dataset, in one
            # transaction: a new name taken anywhere makes it all fail
            ds, snap = old.split("@", 1)
            new_snap = new.split("@", 1)[1]
            found = self._below(ds, snap)
            taken = [m.split("@", 1)[0] + "@" + new_snap for m in found
                     if m.split("@", 1)[0] + "@" + new_snap in self.ds]
            if taken:
                return 1, "", "cannot rename to '%s': dataset already exists\n" % taken[0]
            for m in found:
                self.ds[m.split("@", 1)[0] + "@" + new_snap] = self.ds.pop(m)
            return 0, "", ""
        if new in self.ds:
            return 1, "", "cannot rename to '%s': dataset already exists\n" % new
        self.ds[new] = self.ds.pop(old)
        return 0, "", ""

    def _zfs_rollback(self, args):
        snap = args[-1]
        if snap not in self.ds:
            return 1, "", self._missing(snap)
        ds = snap.split("@", 1)[0]
        newer = [s for s in self.snapshots_of(ds) if self.ds[s]["createtxg"] > self.ds[snap]["createtxg"]]
        if newer:
            return 1, "", ("cannot rollback to '%s': more recent snapshots or bookmarks exist\n"
                           "use '-r' to force deletion of the following snapshots and bookmarks:\n%s\n"
                           % (snap, "\n".join(newer)))
        self.ds[ds]["data"] = self.ds[snap]["data"]
        return 0, "", ""
