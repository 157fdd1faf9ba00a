# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_send target pools on another host (issue 14, push).

The btrfs backend reads and writes its targets with plain file operations
and ioctls (marks beside the copies, subvolume facts, renames). For a target
pool that names ``host`` the same operations run on that host: a
``RemoteSite`` sends each one, over the pool's ssh connection
(_remote.SshRunner, shared through ControlMaster), to an agent run as
``python3 -c <agent>`` there. The agent is built from the very functions the
backend uses on the managed host (``read_mark``, ``write_mark``,
``subvol_info``, ``target_dir_problem``, ``read_mounts`` ...; their source
is taken with inspect), so a mark written on the target host is the mark
the local code would have written, with the same atomic rename and the same
refusal of symlinks. Nothing the user gives is put into the agent's code:
the operation and its arguments travel as JSON on the agent's stdin, and
ssh's remote command is the argv ``python3 -c <agent>`` quoted for the
remote shell (_remote.remote_command).

``LocalSite`` is the same interface on the managed host (the functions
themselves), so the backend asks ``self._at(path)`` and never knows which
one it holds.

What the target host needs: sshd, ``python3`` (3.6 or later) and
``btrfs-progs`` (``btrfs receive``, ``btrfs subvolume delete``); the ssh
user must be root there (receive, delete and the ioctls need it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import inspect
import json
import os
import re

from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs, _quiesce
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError
from ansible_collections.pitcopy.versions.plugins.module_utils._remote import SshRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import MutationRefused, ReadOnlyRunner

#: the functions and classes of the managed host's code the agent runs, in
#: an order where each one's helpers come first
_SHIPPED = (
    _quiesce._unescape_mountinfo, _quiesce.read_mounts, _quiesce.mount_of,
    _btrfs._ior, _btrfs._open_dir, _btrfs._read_ioctl, _btrfs.fs_info, _btrfs.subvol_info, _btrfs.sync_fs,
    _btrfs.nested_subvolume_ids,
    _btrfs.BtrfsKernel,
    _btrfs.mark_path, _btrfs.read_mark, _btrfs.write_mark, _btrfs._create_temp, _btrfs.temp_mark_owner,
    _btrfs._temp_mark_pool, _btrfs.remove_mark, _btrfs._exists, _btrfs._is_subvolume, _btrfs.identity_of,
    _btrfs.mark_agrees, _btrfs.target_dir_problem,
)
#: the constants they read
_CONSTANTS = ("BTRFS", "MARK_PREFIX", "MARK_SUFFIX", "MARK_FORMAT", "TEMP_INFIX", "FIRST_FREE_OBJECTID",
              "_IOC_MAGIC", "_FS_INFO_SIZE", "_SUBVOL_INFO_FMT", "_SUBVOL_INFO_SIZE", "_SUBVOL_RDONLY",
              "_IOC_FS_INFO", "_IOC_GET_SUBVOL_INFO", "_IOC_SYNC", "_ROOTREF_SIZE", "_ROOTREF_MAX",
              "_IOC_GET_SUBVOL_ROOTREF")

#: the agent's own operations (beside the shipped functions)
_AGENT_MAIN = r'''
KERNEL = BtrfsKernel()


def volume_facts(name):
    """What discover() needs of ``name``: kind, file system, space."""
    try:
        st = os.lstat(name)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode) or os.path.realpath(name) != name:
        return {"kind": "symlink"}
    if not stat.S_ISDIR(st.st_mode):
        return {"kind": "file", "size": st.st_size}
    m = mount_of(name, KERNEL.mounts("/proc/self/mountinfo"))
    out = {"kind": "directory", "fstype": m["fstype"] if m else None, "source": m["source"] if m else "",
           "mountpoint": m["mountpoint"] if m else None, "entries": sorted(os.listdir(name))}
    out.update(KERNEL.space(name))
    if m is not None and m["fstype"] == BTRFS:
        out.update(KERNEL.filesystem_info(m["mountpoint"]))
        out["subvolume"] = _is_subvolume(name)
        if out["subvolume"]:
            out["subvolume_id"] = subvol_info(name)["id"]
    return out


def unlink(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def sync(dirs):
    for d in dirs:
        if os.path.isdir(d):
            KERNEL.sync(d)


def scan(dirs, technology):
    """Every read the backend makes of the target directories ``dirs``,
    answered at once ([[op, args], [ok, value]] pairs): each directory's
    facts, listing and mark, and of each entry (and each name a mark is
    written for) its existence, subvolume facts, mark and identity."""
    out = []

    def ask(op, *args):
        try:
            out.append([[op, list(args)], [True, OPS[op](*args)]])
            return out[-1][1][1]
        except (IOError, OSError) as exc:
            out.append([[op, list(args)], [False, [exc.errno, exc.strerror or str(exc),
                                                   getattr(exc, "filename", None)]]])
            return None

    for d in dirs:
        ask("volume", d)
        ask("target_problem", d)
        ask("exists", d)
        ask("read_mark", d)
        if ask("is_subvolume", d):
            ask("subvolume_info", d)
        entries = ask("listdir", d)
        if entries is None:
            continue
        names = set(e for e in entries if not e.startswith(MARK_PREFIX))
        names.update(e[len(MARK_PREFIX):-len(MARK_SUFFIX)] for e in entries
                     if e.startswith(MARK_PREFIX) and e.endswith(MARK_SUFFIX))
        for n in sorted(names):
            path = os.path.join(d, n)
            ask("exists", path)
            ask("read_mark", path)
            if ask("is_subvolume", path):
                ask("subvolume_info", path)
            ask("identity", path, technology)
    return out


OPS = {
    "exists": _exists, "is_subvolume": _is_subvolume, "subvolume_info": subvol_info, "read_mark": read_mark,
    "write_mark": write_mark, "remove_mark": remove_mark, "rename": os.rename, "listdir": os.listdir,
    "unlink": unlink, "temp_mark_owner": temp_mark_owner, "temp_mark_pool": _temp_mark_pool,
    "identity": identity_of, "agrees": mark_agrees, "target_problem": target_dir_problem,
    "volume": volume_facts, "sync": sync,
}
OPS["scan"] = scan


def main():
    answers = []
    for op, args in json.loads(sys.stdin.read()):
        try:
            answers.append([True, OPS[op](*args)])
        except (IOError, OSError) as exc:
            answers.append([False, [exc.errno, exc.strerror or str(exc), getattr(exc, "filename", None)]])
    sys.stdout.write(json.dumps(answers))


main()
'''

_AGENT = {}


def agent_source():
    """The agent's Python source (built once per process)."""
    if "source" not in _AGENT:
        parts = ["import binascii, datetime, errno, fcntl, json, os, re, stat, struct, sys, uuid"]
        for name in _CONSTANTS:
            parts.append("%s = %r" % (name, getattr(_btrfs, name)))
        parts.append("_TEMP_TAIL = re.compile(%r)" % _btrfs._TEMP_TAIL.pattern)
        parts.extend(inspect.getsource(obj) for obj in _SHIPPED)
        parts.append(_AGENT_MAIN)
        _AGENT["source"] = "\n\n".join(parts)
    return _AGENT["source"]


#: operations that change the target host (refused in check mode)
_WRITES = frozenset(("write_mark", "remove_mark", "rename", "unlink", "sync"))
#: reads a RemoteSite answers from one ``scan`` of its target directories
_CACHED = frozenset(("exists", "is_subvolume", "subvolume_info", "read_mark", "listdir", "identity", "agrees",
                     "target_problem", "volume"))


def _local_subvolume_info(path):
    # looked up at each call: the replay tests put a recorded KERNEL in place
    return _btrfs.KERNEL.subvolume_info(path)


class LocalSite:
    """The targets on the managed host: the functions themselves."""

    host = None

    def __init__(self, runner):
        self.runner = runner

    def call(self, op, *args):
        if op == "unlink":
            try:
                os.unlink(args[0])
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            return None
        fn = {"exists": _btrfs._exists, "is_subvolume": _btrfs._is_subvolume,
              "subvolume_info": _local_subvolume_info, "read_mark": _btrfs.read_mark,
              "write_mark": _btrfs.write_mark, "remove_mark": _btrfs.remove_mark, "rename": os.rename,
              "listdir": os.listdir, "temp_mark_owner": _btrfs.temp_mark_owner,
              "temp_mark_pool": _btrfs._temp_mark_pool, "identity": _btrfs.identity_of,
              "agrees": _btrfs.mark_agrees, "target_problem": _btrfs.target_dir_problem}[op]
        return fn(*args)

    def invalidate(self):
        """Nothing is kept here: every read asks the host."""

    def forget(self, paths):
        """Nothing is kept here."""

    def write_mark(self, path, data, durable=True):
        _btrfs.write_mark(path, data, durable)

    def remove_marks(self, paths):
        for path in paths:
            _btrfs.remove_mark(path)

    def batch(self, calls):
        """RemoteSite.batch here: each call's (ok, value or OSError)."""
        out = []
        for op, args in calls:
            try:
                out.append((True, self.call(op, *args)))
            except (IOError, OSError) as exc:
                out.append((False, exc))
        return out


class RemoteSite:
    """The targets on ``host``: each operation one agent run over ssh."""

    def __init__(self, host, ssh, runner):
        read_only = isinstance(runner, ReadOnlyRunner)
        local = runner.inner if read_only else runner
        settings = ssh.as_dict() if ssh is not None else None
        #: the plain runner of the host: reads, and the receive's pipe
        self.ssh = SshRunner.from_pool(host, ssh=settings, local=local)
        #: what changes the host: refused in check mode as every change is
        self.runner = ReadOnlyRunner(self.ssh, runner.why) if read_only else self.ssh
        self.read_only = read_only
        self.host = host
        self.local = local
        #: the target directories of the pool on this host
        self.dirs = []
        #: {json [op, args]: (ok, value)} of the last scan, None when stale
        self._cache = None
        self._entries = {}
        #: how many agent runs this site made (the tests count them)
        self.runs = 0

    def __repr__(self):
        return "RemoteSite(%r)" % self.host

    def batch(self, calls):
        """Run ``calls`` ([(op, args)]) in one agent run; returns a list of
        (ok, value or OSError)."""
        if self.read_only:
            changing = [op for op, _a in calls if op in _WRITES]
            if changing:
                raise MutationRefused("refused to run %s on %s: %s only reads the hosts; nothing was run" % (
                    ", ".join(changing), self.host, self.runner.why))
        # -S: the agent needs no site packages (a faster start, each run)
        argv = ["python3", "-S", "-c", agent_source()]
        request = json.dumps([[op, list(args)] for op, args in calls]).encode("utf-8")
        self.runs += 1
        if any(op in _WRITES and op != "sync" for op, _a in calls):
            self.invalidate()
        rc, out, err = self.ssh.run(argv, data=request, check=False)
        try:
            answers = json.loads(out) if rc == 0 else None
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(calls):
            missing = re.search(r"(python3: (?:command )?not found|No such file or directory)", err or "")
            raise CommandError(
                "the pitcopy agent on %s did not answer (exit status %s)%s: %s" % (
                    self.host, rc, "; python3 must be installed on the target host" if missing else "",
                    (err or out or "").strip()[-500:]),
                argv=argv[:2] + ["<agent>"], rc=rc, stdout=out, stderr=err, host=self.host)
        out = []
        for ok, value in answers:
            if ok:
                out.append((True, value))
            else:
                code, text, filename = (list(value) + [None, None, None])[:3]
                out.append((False, OSError(code, "%s (on %s)" % (text, self.host), filename)))
        return out

    def invalidate(self):
        """Forget the last scan: the host changed (a write, a receive, a
        delete), or a fresh look is wanted (discovery before acting)."""
        self._cache = None
        self._entries = {}

    def _scan(self):
        """One agent run reads everything the backend reads of this host's
        target directories (the ``scan`` operation); the reads after it are
        answered here until the host changes: one round trip per phase
        instead of one per file."""
        ok, value = self.batch([("scan", (list(self.dirs), "btrfs_send"))])[0]
        if not ok:
            raise value
        cache = {}
        entries = {}
        for (op, args), (good, answer) in value:
            if not good:
                code, text, filename = (list(answer) + [None, None, None])[:3]
                answer = OSError(code, "%s (on %s)" % (text, self.host), filename)
            cache[json.dumps([op, args])] = (good, answer)
            if op == "listdir" and good:
                entries[args[0]] = set(answer)
        self._cache, self._entries = cache, entries

    def _cached(self, op, args):
        """(found, ok, value) of a read from the last scan."""
        path = args[0] if args and isinstance(args[0], str) else None
        if path is None or not (path in self.dirs or os.path.dirname(path) in self.dirs):
            return False, None, None
        if self._cache is None:
            self._scan()
        if op == "agrees":
            mark = args[1]
            if mark is None or not mark.get("uuid") or not self.call("is_subvolume", path):
                return True, True, True
            return True, True, self.call("subvolume_info", path)["uuid"] == mark.get("uuid")
        key = json.dumps([op, list(args)])
        if key in self._cache:
            ok, value = self._cache[key]
            return True, ok, value
        d, name = os.path.split(path)
        if d in self._entries and name not in self._entries[d] and \
                (_btrfs.MARK_PREFIX + name + _btrfs.MARK_SUFFIX) not in self._entries[d]:
            # a name the scan saw neither as an entry nor as a mark's copy
            absent = {"exists": False, "is_subvolume": False, "read_mark": None, "identity": None}
            if op in absent:
                return True, True, absent[op]
        return False, None, None

    def call(self, op, *args):
        if op in _CACHED:
            found, ok, value = self._cached(op, args)
            if found:
                if not ok:
                    raise value
                return value
        ok, value = self.batch([(op, args)])[0]
        if not ok:
            raise value
        return value

    def write_mark(self, path, data, durable=True):
        """A mark written; the scan stays true (the mark is known)."""
        cache, entries = self._cache, self._entries
        self.call("write_mark", path, data, durable)
        d, name = os.path.split(path)
        if cache is not None and d in entries:
            cache[json.dumps(["read_mark", [path]])] = (True, json.loads(json.dumps(data)))
            entries[d].add(_btrfs.MARK_PREFIX + name + _btrfs.MARK_SUFFIX)
            self._cache, self._entries = cache, entries

    def forget(self, paths):
        """The subvolumes at ``paths`` were deleted (their marks stay until
        removed): the scan says so without another run."""
        if self._cache is None:
            return
        for path in paths:
            for op, value in (("exists", False), ("is_subvolume", False), ("identity", None)):
                key = [op, [path, "btrfs_send"]] if op == "identity" else [op, [path]]
                self._cache[json.dumps(key)] = (True, value)
            self._cache.pop(json.dumps(["subvolume_info", [path]]), None)
            d, name = os.path.split(path)
            if d in self._entries:
                self._entries[d].discard(name)

    def remove_marks(self, paths):
        """Several marks removed in one agent run; the scan stays true."""
        cache, entries = self._cache, self._entries
        for ok, value in self.batch([("remove_mark", (p,)) for p in paths]):
            if not ok:
                raise value
        if cache is not None:
            for path in paths:
                d, name = os.path.split(path)
                cache[json.dumps(["read_mark", [path]])] = (True, None)
                if d in entries:
                    entries[d].discard(_btrfs.MARK_PREFIX + name + _btrfs.MARK_SUFFIX)
            self._cache, self._entries = cache, entries
