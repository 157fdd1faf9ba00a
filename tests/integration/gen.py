# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the integration playbooks that tests/integration/run.sh runs.

The playbooks are generated so that every module task gets the same
discipline without copy-and-paste: a fingerprint of the host (state files and
volumes) before and after, check mode first (must report the change and leave
the host as it was), then the task (must report the change), then the same
task again (must report no change and leave the host as it was).

    gen.py flow     --tech TECH --root ROOT [--level light] > flow.yml  (every module, real storage)
    gen.py bad      --root ROOT               > bad.yml       (the bad-input table, btrfs)
    gen.py examples --tech TECH --state-dir D > examples.yml  (the modules' EXAMPLES, verbatim)

TECH is btrfs, lvm or zfs. ROOT is the scratch directory run.sh prepared.
"""

from __future__ import absolute_import, division, print_function

import argparse
import ast
import json
import os
import shlex
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FINGERPRINT = os.path.join(HERE, "fingerprint.sh")
MODULES = ["copy_pool", "prepair_record", "copy_version", "verify_records", "copy_pool_info"]
FQCN = "pitcopy.versions.%s"


class Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper, data):
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


Dumper.add_representer(str, _str_presenter)
Dumper.ignore_aliases = lambda self, data: True


# Where the modules run: this host (connection local), or a managed host
# over ssh (--target, --target-ssh-config; tests/vm/with-guest.sh gives the VM).
TARGET = {"host": None, "ssh_config": None}


def play(name, tasks, state_dirs, extra_vars=None):
    head = {"name": name}
    if TARGET["host"]:
        # the inventory says how to reach it and which Python it has
        head["hosts"] = TARGET["host"]
        vars_ = {}
    else:
        head.update({"hosts": "localhost", "connection": "local"})
        vars_ = {"ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    vars_.update(extra_vars or {})
    return [dict(head, **{
        "gather_facts": False,
        "become": True,
        "vars": vars_,
        "module_defaults": {FQCN % m: {"state_dir": state_dirs[0]} for m in MODULES},
        "tasks": tasks,
    })]


class Flow(object):
    """Builds tasks; ``fp_argv`` is the fingerprint command for this host."""

    def __init__(self, fp_argv):
        self.fp_argv = fp_argv
        self.tasks = []
        self.n = 0

    def step_id(self):
        self.n += 1
        return "s%03d" % self.n

    def add(self, *tasks):
        self.tasks.extend(tasks)

    def fingerprint(self, reg):
        return {
            "name": "Fingerprint the host (%s)" % reg,
            "ansible.builtin.command": {"argv": self.fp_argv},
            "register": reg,
            "changed_when": False,
        }

    def command(self, title, argv, register=None):
        task = {"name": title, "ansible.builtin.command": {"argv": argv}}
        if register:
            task["register"] = register
            task["changed_when"] = False
        self.add(task)

    def assert_(self, title, that, msg=None):
        task = {"name": title, "ansible.builtin.assert": {"that": that, "quiet": True}}
        if msg:
            task["ansible.builtin.assert"]["fail_msg"] = msg
        self.add(task)

    def module(self, title, module, args, register, check=False, diff=False):
        task = {"name": title, FQCN % module: args, "register": register}
        if check:
            task["check_mode"] = True
        if diff:
            task["diff"] = True
        return task

    def lookup(self):
        """The fingerprint without a task of its own: a pipe lookup on the
        controller, which is the managed host itself (connection local) or
        reaches it with ssh."""
        cmd = " ".join(shlex.quote(a) for a in self.fp_argv)
        if TARGET["host"]:
            cmd = " ".join(shlex.quote(a) for a in ["ssh", "-F", TARGET["ssh_config"], TARGET["host"], "--", cmd])
        return "lookup('ansible.builtin.pipe', %s)" % json.dumps(cmd)

    def set_fingerprint(self, var):
        return {"name": "Fingerprint the host (%s)" % var,
                "ansible.builtin.set_fact": {var: "{{ %s }}" % self.lookup()}}

    def triple(self, title, module, args, changes=True, idempotent=True, asserts=(), check_asserts=()):
        """check mode -> apply -> again, with host fingerprints in between.

        ``asserts`` are evaluated after the apply, with ``{id}`` replaced by
        the step id (registers: {id}_check, {id}_apply, {id}_again)."""
        sid = self.step_id()
        chk, app, again = sid + "_check", sid + "_apply", sid + "_again"
        fp0, fp2 = sid + "_fp0", sid + "_fp2"
        word = "changed" if changes else "not changed"
        self.add(
            self.set_fingerprint(fp0),
            self.module("%s [check mode]" % title, module, args, chk, check=True, diff=module != "copy_pool_info"),
        )
        self.assert_(
            "%s [check mode] reports %s and leaves the host as it was" % (title, word),
            ["%s is %s" % (chk, word), "%s == %s" % (self.lookup(), fp0)]
            + ([] if module == "copy_pool_info" else ["%s.diff is defined" % chk])
            + [a.replace("{id}", sid) for a in check_asserts],
            msg="check mode result {{ %s }}" % chk,
        )
        self.add(self.module(title, module, args, app, diff=True), self.set_fingerprint(fp2))
        that = (["%s is %s" % (app, word)]
                + (["%s != %s" % (fp0, fp2)] if changes else ["%s == %s" % (fp0, fp2)])
                + [a.replace("{id}", sid) for a in asserts])
        if not idempotent:
            self.assert_("%s reports %s" % (title, word), that, msg="result {{ %s }}" % app)
            return sid
        self.add(self.module("%s [again]" % title, module, args, again))
        self.assert_(
            "%s reports %s; run again, it reports no change and changes nothing" % (title, word),
            that + ["%s is not changed" % again, "%s == %s" % (self.lookup(), fp2)],
            msg="result {{ %s }}; second run {{ %s }}" % (app, again),
        )
        return sid


# --- the per-technology module flow ------------------------------------------

def tech_context(tech, root):
    """Sources, targets and host commands of the flow for one technology."""
    if tech == "btrfs":
        data, backup = root + "/data", root + "/backup"
        return {
            "fp": ["bash", FINGERPRINT, "--state", root + "/state", "--btrfs", data, backup],
            "pools": [
                {"name": "snap", "technology": "btrfs_snapshot",
                 "sources": [data + "/s1", data + "/s2", data + "/s3"], "extra": data + "/s4"},
                {"name": "send", "technology": "btrfs_send",
                 "sources": [data + "/s1", data + "/s2", data + "/s3"], "extra": data + "/s4",
                 "target_pools": [{"name": "01", "volumes": [backup + "/t1", backup + "/t2", backup + "/t3"]},
                                  {"name": "02", "volumes": [backup + "/t4", backup + "/t5", backup + "/t6"]}],
                 "extra_targets": [backup + "/t7", backup + "/t8"]},
            ],
            "write": ["sh", "-c", 'printf "%s\\n" "$1" > "$2/data.txt" && sync', "sh"],
            "read": ["sh", "-c", 'cat "$1/data.txt"', "sh"],
            "delete_copy": ["btrfs", "subvolume", "delete"],
        }
    if tech == "lvm":
        vg = "pitcopyit"
        return {
            "fp": ["bash", FINGERPRINT, "--state", root + "/state", "--lvm", vg],
            "pools": [
                {"name": "cow", "technology": "lvm_snapshot", "snapshot_size": "8M",
                 "sources": [vg + "/s1", vg + "/s2", vg + "/s3"], "extra": vg + "/s4"},
                {"name": "thin", "technology": "lvm_thin",
                 "sources": [vg + "/th1", vg + "/th2", vg + "/th3"], "extra": vg + "/th4"},
                {"name": "clone", "technology": "lvm_clone",
                 "sources": [vg + "/s1", vg + "/s2", vg + "/s3"], "extra": vg + "/s4",
                 "target_pools": [{"name": "01", "volumes": [vg + "/t1", vg + "/t2", vg + "/t3"]},
                                  {"name": "02", "volumes": [vg + "/t4", vg + "/t5", vg + "/t6"]}],
                 "extra_targets": [vg + "/t7", vg + "/t8"]},
            ],
            "write": ["sh", "-c", 'printf "%s\\n" "$1" | dd of="/dev/$2" bs=512 count=1 conv=sync,fsync status=none',
                      "sh"],
            "read": ["sh", "-c", 'head -c 512 "/dev/$1" | head -n 1 | tr -d "\\000"', "sh"],
            "delete_copy": ["lvremove", "-y"],
        }
    if tech == "zfs":
        zp = "pitcopyit"
        return {
            "fp": ["bash", FINGERPRINT, "--state", root + "/state", "--zfs", zp],
            "pools": [
                {"name": "zsnap", "technology": "zfs_snapshot",
                 "sources": [zp + "/s1", zp + "/s2", zp + "/s3"], "extra": zp + "/s4"},
                {"name": "zsend", "technology": "zfs_send",
                 "sources": [zp + "/s1", zp + "/s2", zp + "/s3"], "extra": zp + "/s4",
                 "target_pools": [{"name": "01", "volumes": [zp + "/b/t1", zp + "/b/t2", zp + "/b/t3"]},
                                  {"name": "02", "volumes": [zp + "/b/t4", zp + "/b/t5", zp + "/b/t6"]}],
                 "extra_targets": [zp + "/b/t7", zp + "/b/t8"]},
            ],
            "write": ["sh", "-c", 'printf "%s\\n" "$1" > "$(zfs get -H -o value mountpoint "$2")/data.txt" && sync',
                      "sh"],
            "read": ["sh", "-c", 'cat "$(zfs get -H -o value mountpoint "$1")/data.txt"', "sh"],
            "delete_copy": ["zfs", "destroy"],
        }
    raise SystemExit("unknown technology family %r (use btrfs, lvm or zfs)" % tech)


def pool_flow(f, ctx, pool, level="full"):
    """The module flow on one pool. ``full``: everything, the source pool
    changing between versions included. ``light`` (for the VM, where every
    task costs seconds): without the source pool changes. ``mini``: define,
    two versions, info, remove -- for the further technologies of a family."""
    name, srcs = pool["name"], list(pool["sources"])
    listed = "target_pools" in pool
    define = {"name": name, "technology": pool["technology"], "sources": srcs, "versions": 2}
    if listed:
        define["target_pools"] = pool["target_pools"]
    if "snapshot_size" in pool:
        define["snapshot_size"] = pool["snapshot_size"]

    def write_all(tag):
        for src in define["sources"]:
            f.command("Write %s to %s" % (tag, src), ctx["write"] + ["%s:%s" % (tag, src), src])

    f.triple(
        "copy_pool %s: define (%s)" % (name, pool["technology"]), "copy_pool", define,
        asserts=["{id}_apply.pool.name == %s" % json.dumps(name),
                 "{id}_apply.pool.sources == %s" % json.dumps(srcs),
                 "{id}_apply.pool.versions == 2",
                 "{id}_apply.pool.target_pools | length == 2"],
        check_asserts=["{id}_check.pool.name == %s" % json.dumps(name)],
    )
    if level == "vm":
        level = "light"
    if level == "mini":
        write_all("v1")
        f.triple("copy_version %s: take version 1" % name, "copy_version", {"pool": name, "label": "v1"},
                 asserts=["{id}_apply.version.number == 1", "{id}_apply.version.status == 'valid'",
                          "{id}_apply.version.pairs | length == 3", "{id}_check.version.pairs == {id}_apply.version.pairs"])
        write_all("v2")
        f.triple("copy_version %s: take version 2" % name, "copy_version", {"pool": name, "label": "v2"},
                 asserts=["{id}_apply.version.number == 2"])
        f.triple("copy_pool_info %s" % name, "copy_pool_info", {"pool": name}, changes=False,
                 asserts=["{id}_apply.pools[0].replication_records | map(attribute='version') | list == [1, 2]",
                          "{id}_apply.pools[0].replication_records | map(attribute='status') | unique | list"
                          " == ['valid']"])
        f.triple("copy_pool %s: remove with its copies" % name, "copy_pool",
                 {"name": name, "state": "absent", "remove_copies": True},
                 asserts=["{id}_apply.removed_versions == [1, 2]"])
        return
    # copy_pool may already have pre-paired; start prepair_record from a clean slate
    f.add(f.module("prepair_record %s: drop any pre-pairing records" % name, "prepair_record",
                   {"pool": name, "state": "absent"}, "drop_" + name))
    f.triple(
        "prepair_record %s: pre-pair the next two versions" % name, "prepair_record",
        {"pool": name, "versions": 2},
        asserts=["{id}_apply.records | length == 2",
                 "{id}_apply.records | map(attribute='version') | list == [1, 2]",
                 "{id}_apply.records[0].pairs | length == 3",
                 "{id}_apply.unpaired == []",
                 "{id}_apply.records | map(attribute='pairs') | list == {id}_check.records | map(attribute='pairs') | list"],
    )
    write_all("v1")
    v1 = f.triple(
        "copy_version %s: take version 1" % name, "copy_version", {"pool": name, "label": "v1"},
        asserts=["{id}_apply.version.number == 1",
                 "{id}_apply.version.label == 'v1'",
                 "{id}_apply.version.status == 'valid'",
                 "{id}_apply.version.pre_copy_record == 'prepairing'",
                 "{id}_apply.version.pairs | length == 3",
                 "{id}_apply.replaced_version is none",
                 "{id}_apply.copy_window_ms is number",
                 "{id}_check.version.pairs == {id}_apply.version.pairs"],
    )
    write_all("v2")
    f.triple("copy_version %s: take version 2" % name, "copy_version", {"pool": name, "label": "v2"},
             asserts=["{id}_apply.version.number == 2", "{id}_apply.version.target_pool != %s_apply.version.target_pool"
                      % v1])
    write_all("v3")
    f.triple(
        "copy_version %s: version 3 rotates onto the target pool of version 1" % name, "copy_version",
        {"pool": name, "label": "v3"},
        asserts=["{id}_apply.version.number == 3",
                 "{id}_apply.replaced_version == 1",
                 "{id}_check.replaced_version == 1",
                 "{id}_apply.version.target_pool == %s_apply.version.target_pool" % v1]
        + (["{id}_apply.version.pairs == %s_apply.version.pairs" % v1] if listed else []),
    )
    if level == "full":
        # the environment changes: a source joins and one leaves
        grown = dict(define, sources=srcs + [pool["extra"]])
        if listed:
            grown["target_pools"] = [
                {"name": tp["name"], "volumes": tp["volumes"] + [pool["extra_targets"][i]]}
                for i, tp in enumerate(pool["target_pools"])
            ]
        f.triple("copy_pool %s: add source %s" % (name, pool["extra"]), "copy_pool", grown,
                 asserts=["{id}_apply.pool.sources | length == 4"])
        shrunk = dict(grown, sources=[s for s in grown["sources"] if s != srcs[1]])
        f.triple("copy_pool %s: remove source %s" % (name, srcs[1]), "copy_pool", shrunk,
                 asserts=["%s not in {id}_apply.pool.sources" % json.dumps(srcs[1])])
        define = shrunk
        broken = [srcs[1]]
    else:
        broken = []
    write_all("v4")
    v4 = f.triple(
        "copy_version %s: version 4%s" % (name, " with the changed source pool" if broken else ""), "copy_version",
        {"pool": name, "label": "v4"},
        asserts=["{id}_apply.version.number == 4",
                 "{id}_apply.replaced_version == 2",
                 "{id}_apply.version.pairs | map(attribute='source') | list == %s" % json.dumps(define["sources"]),
                 "{id}_apply.broken_pairs | map(attribute='source') | list == %s" % json.dumps(broken)],
    )
    f.triple("verify_records %s: consistent" % name, "verify_records", {"pool": name}, changes=False,
             asserts=["{id}_apply.consistent", "{id}_apply.findings == []"])
    f.triple("verify_records %s: repair of a consistent pool changes nothing" % name, "verify_records",
             {"pool": name, "repair": True}, changes=False, asserts=["{id}_apply.consistent"])
    f.triple(
        "copy_pool_info %s" % name, "copy_pool_info", {"pool": name}, changes=False,
        asserts=["{id}_apply.pools | length == 1",
                 "{id}_apply.pools[0].name == %s" % json.dumps(name),
                 "{id}_apply.pools[0].replication_records | map(attribute='version') | list == [3, 4]",
                 "{id}_apply.pools[0].replication_records | map(attribute='label') | list == ['v3', 'v4']",
                 "{id}_apply.pools[0].replication_records | map(attribute='status') | unique | list == ['valid']"],
    )
    # restore source 1 from version 4 after overwriting it
    f.command("Overwrite %s" % define["sources"][0], ctx["write"] + ["after", define["sources"][0]])
    sid = f.triple(
        "copy_version %s: restore %s from version 4" % (name, define["sources"][0]), "copy_version",
        {"pool": name, "state": "restored", "version": 4, "volumes": [define["sources"][0]]},
        idempotent=False, asserts=["{id}_apply.version.number == 4"],
    )
    f.command("Read %s after the restore" % define["sources"][0], ctx["read"] + [define["sources"][0]],
              register=sid + "_read")
    f.assert_("The restored source holds the data of version 4",
              ["%s_read.stdout == %s" % (sid, json.dumps("v4:%s" % define["sources"][0]))])
    f.triple("copy_version %s: delete version 3" % name, "copy_version",
             {"pool": name, "state": "absent", "version": 3},
             asserts=["{id}_apply.version.number == 3"])
    if not listed:
        # a copy deleted behind our back: verify must report it, repair must drop it
        f.command("Delete a copy of version 4 behind the collection's back",
                  ctx["delete_copy"] + ["{{ %s_apply.version.pairs[0].target }}" % v4])
        f.triple("verify_records %s: reports the missing copy" % name, "verify_records", {"pool": name},
                 changes=False,
                 asserts=["not {id}_apply.consistent",
                          "{id}_apply.findings | selectattr('target', 'equalto', %s_apply.version.pairs[0].target)"
                          " | list | length >= 1" % v4,
                          "{id}_apply.findings | map(attribute='record') | list | unique == ['replication']"])
        f.triple("verify_records %s: repair" % name, "verify_records", {"pool": name, "repair": True},
                 asserts=["not {id}_apply.consistent"])
        f.triple("verify_records %s: consistent after the repair" % name, "verify_records", {"pool": name},
                 changes=False, asserts=["{id}_apply.consistent"])
    f.triple("copy_pool %s: remove with its copies" % name, "copy_pool",
             {"name": name, "state": "absent", "remove_copies": True},
             asserts=["{id}_apply.pool.name == %s" % json.dumps(name),
                      "{id}_apply.removed_versions == [4]"])


# ``vm``: the light flow on one pool of the family (its fastest technology).
# In the emulated VM a module task costs ~7 s, most of it Python compiling
# ansible.module_utils.basic from the AnsiballZ zip; the other technologies
# of the family run in the VM's backend tests (tests/real).
VM_POOL = {"lvm": "thin", "zfs": "zsnap", "btrfs": "snap"}


def gen_flow(tech, root, level):
    ctx = tech_context(tech, root)
    f = Flow(ctx["fp"])
    sd = root + "/state"
    pools = ctx["pools"]
    if level == "vm":
        pools = [p for p in pools if p["name"] == VM_POOL[tech]]
    for i, pool in enumerate(pools):
        # light: the first pool of the family gets the light flow, the others the mini one
        pool_flow(f, ctx, pool, level if level == "full" or i == 0 else "mini")
    f.triple("copy_pool_info: no pools left", "copy_pool_info", {}, changes=False,
             asserts=["{id}_apply.pools == []"])
    return play("pitcopy.versions modules on %s (%s)" % (tech, level), f.tasks, [sd])


# --- the bad-input table -------------------------------------------------------

def bad_cases(root):
    """(title, module, args, words, setup argv list, state_dir override)."""
    d, b, sd = root + "/data", root + "/backup", root + "/state"
    good = {"name": "good", "technology": "btrfs_snapshot", "sources": [d + "/s1", d + "/s2"], "versions": 2}
    send_tp = [{"name": "01", "volumes": [b + "/t1", b + "/t2"]}, {"name": "02", "volumes": [b + "/t3", b + "/t4"]}]
    send = {"name": "send", "technology": "btrfs_send", "sources": [d + "/s1", d + "/s2"], "versions": 2,
            "target_pools": send_tp}

    def pool(**kw):
        out = dict(good)
        out.update(kw)
        return out

    def sendpool(**kw):
        out = dict(send)
        out.update(kw)
        return out

    cases = [
        # unknown pool / version / source
        ("unknown pool (copy_version)", "copy_version", {"pool": "nopool"}, ["nopool"]),
        ("unknown pool (prepair_record)", "prepair_record", {"pool": "nopool"}, ["nopool"]),
        ("unknown pool (verify_records)", "verify_records", {"pool": "nopool"}, ["nopool"]),
        ("unknown pool (copy_pool_info)", "copy_pool_info", {"pool": "nopool"}, ["nopool"]),
        ("unknown version to restore", "copy_version", {"pool": "good", "state": "restored", "version": 99}, ["99"]),
        ("restore of a source not in the pool", "copy_version",
         {"pool": "good", "state": "restored", "version": 1, "volumes": [d + "/s3"]}, [d + "/s3"]),
        ("unknown source", "copy_pool", pool(sources=[d + "/s1", d + "/missing"]), [d + "/missing"]),
        ("duplicated source", "copy_pool", pool(sources=[d + "/s1", d + "/s1"]), [d + "/s1"]),
        ("source that is a plain directory, not a subvolume", "copy_pool", pool(sources=[d + "/plain"]),
         [d + "/plain"]),
        ("source on a file system that is not btrfs", "copy_pool", pool(sources=[root + "/ext/dir"]),
         [root + "/ext/dir"]),
        ("source that is a regular file", "copy_pool", pool(sources=[d + "/file"]), [d + "/file"]),
        # targets
        ("target too small for the source (pre-pairing)", "prepair_record", {"pool": "small"},
         [root + "/tiny"]),
        ("target too small for the source (copy)", "copy_version", {"pool": "small"}, [root + "/tiny"]),
        # a target whose type can never receive a copy is refused when the
        # pool is defined, not first by pre-pairing or copying
        ("target of the wrong type, a regular file", "copy_pool",
         sendpool(name="wrongfile", target_pools=[{"name": "01", "volumes": [b + "/t1", b + "/file"]},
                                                  {"name": "02", "volumes": [b + "/t3", b + "/t4"]}]),
         [b + "/file", "kind file", "directory, subvolume"]),
        ("target on a file system that is not btrfs", "copy_pool",
         sendpool(name="wrongfs", target_pools=[{"name": "01", "volumes": [b + "/t1", b + "/t2"]},
                                                {"name": "02", "volumes": [root + "/ext/dir", b + "/t4"]}]),
         [root + "/ext/dir", "btrfs_send"]),
        ("consistency freeze with btrfs", "copy_pool", sendpool(name="frozen", consistency="freeze"),
         ["freeze", "btrfs_send", "auto"]),
        ("target holding data we do not own", "copy_pool",
         sendpool(target_pools=[{"name": "01", "volumes": [b + "/foreign", b + "/t2"]},
                                {"name": "02", "volumes": [b + "/t3", b + "/t4"]}]), [b + "/foreign"]),
        ("the same target in two target pools", "copy_pool",
         sendpool(target_pools=[{"name": "01", "volumes": [b + "/t1", b + "/t2"]},
                                {"name": "02", "volumes": [b + "/t1", b + "/t4"]}]), [b + "/t1"]),
        ("the same target twice in one target pool", "copy_pool",
         sendpool(target_pools=[{"name": "01", "volumes": [b + "/t1", b + "/t1"]},
                                {"name": "02", "volumes": [b + "/t3", b + "/t4"]}]), [b + "/t1"]),
        ("duplicated target pool name", "copy_pool",
         sendpool(target_pools=[{"name": "01", "volumes": [b + "/t1", b + "/t2"]},
                                {"name": "01", "volumes": [b + "/t3", b + "/t4"]}]), ["01"]),
        ("target_pools with a snapshot technology", "copy_pool", pool(target_pools=send_tp),
         ["target_pools", "btrfs_snapshot"]),
        ("btrfs_send without target_pools", "copy_pool", sendpool(target_pools=[]), ["target_pools", "btrfs_send"]),
        ("snapshot_size with btrfs", "copy_pool", pool(snapshot_size="1G"), ["snapshot_size", "1G"]),
        ("unknown technology", "copy_pool", pool(technology="tape"), ["technology", "tape"]),
        ("technology change of a pool with copies", "copy_pool",
         sendpool(name="good"), ["good", "technology"]),
        # numbers
        ("versions: 0", "copy_pool", pool(versions=0), ["versions", "0"]),
        ("versions: negative", "copy_pool", pool(versions=-2), ["versions", "-2"]),
        ("versions: not an integer", "copy_pool", pool(versions="two"), ["versions", "two"]),
        ("versions: fractional", "copy_pool", pool(versions=1.5), ["versions", "1.5"]),
        ("prepair_record versions: 0", "prepair_record", {"pool": "good", "versions": 0}, ["versions", "0"]),
        ("prepair_record versions: negative", "prepair_record", {"pool": "good", "versions": -1},
         ["versions", "-1"]),
        ("copy_version version: negative", "copy_version", {"pool": "good", "state": "absent", "version": -1},
         ["version", "-1"]),
        ("copy_version version: not an integer", "copy_version",
         {"pool": "good", "state": "absent", "version": "last"}, ["version", "last"]),
        ("copy_version version with state=present", "copy_version", {"pool": "good", "version": 1},
         ["version", "state=present"]),
        ("lock_timeout: negative", "copy_version", {"pool": "good", "lock_timeout": -5}, ["lock_timeout", "-5"]),
        ("hook timeout: 0", "copy_pool",
         pool(pre_copy_hooks=[{"argv": ["/bin/true"], "timeout": 0}]), ["timeout", "0"]),
        ("hook with an empty argv", "copy_pool", pool(pre_copy_hooks=[{"argv": []}]), ["argv"]),
        # names
        ("pool name with a space", "copy_pool", pool(name="my pool"), ["my pool"]),
        ("pool name with ;", "copy_pool", pool(name="a;b"), ["a;b"]),
        ("pool name with $()", "copy_pool", pool(name="$(touch " + root + "/pwned)"), ["$(touch"]),
        ("pool name ..", "copy_pool", pool(name=".."), [".."]),
        ("pool name with ../", "copy_pool", pool(name="../escape"), ["../escape"]),
        ("pool name with a newline", "copy_pool", pool(name="a\nb"), ["name"]),
        ("pool name with a leading -", "copy_pool", pool(name="-rf"), ["-rf"]),
        ("pool name with a slash", "prepair_record", {"pool": "sub/good"}, ["sub/good"]),
        ("source with a space", "copy_pool", pool(sources=[d + "/s 1"]), [d + "/s 1"]),
        ("source with ;", "copy_pool", pool(sources=[d + "/s1;reboot"]), [d + "/s1;reboot"]),
        ("source with $()", "copy_pool", pool(sources=[d + "/$(touch " + root + "/pwned)"]), ["$(touch"]),
        ("source with ..", "copy_pool", pool(sources=[d + "/../data/s1"]), [d + "/../data/s1"]),
        ("source with a newline", "copy_pool", pool(sources=[d + "/s1\n" + d + "/s2"]), ["sources"]),
        ("source with a leading -", "copy_pool", pool(sources=["-" + d + "/s1"]), ["-" + d + "/s1"]),
        ("source given as a relative path", "copy_pool", pool(sources=["data/s1"]), ["data/s1"]),
        ("target given as a relative path", "copy_pool",
         sendpool(target_pools=[{"name": "01", "volumes": ["backup/t1", b + "/t2"]},
                                {"name": "02", "volumes": [b + "/t3", b + "/t4"]}]), ["backup/t1"]),
        ("target with ..", "copy_pool",
         sendpool(target_pools=[{"name": "01", "volumes": [b + "/../backup/t1", b + "/t2"]},
                                {"name": "02", "volumes": [b + "/t3", b + "/t4"]}]), [b + "/../backup/t1"]),
        ("label with a newline", "copy_version", {"pool": "good", "label": "x\ny"}, ["label"]),
        ("restore volume with ;", "copy_version",
         {"pool": "good", "state": "restored", "version": 1, "volumes": [d + "/s1;ls"]}, [d + "/s1;ls"]),
        # state directory and state files
        ("relative state_dir", "copy_version", {"pool": "good", "state_dir": "state"}, ["state_dir", "state"]),
        ("corrupt state file", "copy_version", {"pool": "broken", "state_dir": root + "/sd_corrupt"},
         ["broken"]),
        ("state file from a newer schema", "copy_version", {"pool": "future", "state_dir": root + "/sd_newer"},
         ["schema"]),
        ("unreadable state file (a directory in its place)", "copy_version",
         {"pool": "unreadable", "state_dir": root + "/sd_unreadable"}, ["unreadable"]),
        ("state_dir that is a symlink", "copy_pool_info", {"state_dir": root + "/sd_link"},
         [root + "/sd_link", "symlink"]),
        ("state_dir that is world-writable", "copy_pool_info", {"state_dir": root + "/sd_world"},
         [root + "/sd_world"]),
        ("state_dir that is a regular file", "copy_pool_info", {"state_dir": root + "/sd_file"},
         [root + "/sd_file"]),
        ("pool busy in another run", "copy_version", {"pool": "good", "lock_timeout": 1}, ["busy", "good"]),
        ("unknown option", "copy_pool", pool(colour="blue"), ["colour"]),
    ]
    small = [{"name": "small", "technology": "btrfs_send", "sources": [d + "/big"], "versions": 1,
             "target_pools": [{"name": "01", "volumes": [root + "/tiny/t"]}]}]
    return cases, good, send, small, sd


def gen_bad(root):
    cases, good, send, extra_pools, sd = bad_cases(root)
    state_dirs = [sd] + [root + "/" + n for n in ("sd_corrupt", "sd_newer", "sd_unreadable", "sd_link", "sd_world",
                                                  "sd_file")]
    fp = ["bash", FINGERPRINT, "--state"] + state_dirs + ["--btrfs", root + "/data", root + "/backup",
                                                          root + "/tiny"]
    f = Flow(fp)
    # a known-good starting point: two pools, one version taken
    f.add(f.module("Define the pool the bad inputs are aimed at", "copy_pool", good, "setup_good"))
    f.add(f.module("Take a version of it", "copy_version", {"pool": "good", "label": "one"}, "setup_version"))
    f.add(f.module("Define a btrfs_send pool", "copy_pool", send, "setup_send"))
    for extra in extra_pools:
        f.add(f.module("Define btrfs_send pool %s (a target that selection must refuse)" % extra["name"],
                       "copy_pool", extra, "setup_" + extra["name"]))
    f.command("Prepare the broken state directories", ["bash", os.path.join(HERE, "prepare_bad_state.sh"), root, sys.executable])
    hold = {
        "name": "Hold the lock of pool good from another process (pool busy)",
        "ansible.builtin.command": {"argv": ["bash", os.path.join(HERE, "hold_lock.sh"), sd, "good",
                                             root + "/lock.pid", "120"]},
        "changed_when": False,
    }
    for i, (title, module, args, words) in enumerate(cases, 1):
        reg = "case%02d" % i
        busy = title.startswith("pool busy")
        if busy:
            f.add(hold)
        f.add(f.set_fingerprint(reg + "_before"))
        task = f.module("case %02d: %s" % (i, title), module, args, reg)
        task["ignore_errors"] = True
        f.add(task)
        f.assert_(
            "case %02d: %s fails with a clear message and changes nothing" % (i, title),
            ["%s is failed" % reg, "%s.msg is string and %s.msg | length > 10" % (reg, reg)]
            + ["%s in %s.msg" % (json.dumps(w), reg) for w in words]
            + ["%s_before == %s" % (reg, f.lookup()),
               "%s is not changed" % reg],
            msg="case %02d (%s): {{ %s.msg | default('no msg') }}" % (i, title, reg),
        )
        # keep going: every case is reported, the summary below fails the play
        f.tasks[-1]["ignore_errors"] = True
        f.tasks[-1]["register"] = reg + "_verdict"
        if busy:
            release = ["bash", os.path.join(HERE, "hold_lock.sh"), "--release", root + "/lock.pid"]
            f.command("Release the lock of pool good", release)
    f.add({"name": "Nothing ran a user string through a shell",
           "ansible.builtin.stat": {"path": root + "/pwned"}, "register": "pwned"})
    f.assert_("No file was created by a $() in a name", ["not pwned.stat.exists"])
    verdicts = ["case%02d_verdict" % i for i in range(1, len(cases) + 1)]
    f.assert_(
        "Every bad-input case failed cleanly and changed nothing",
        ["[%s] | select('failed') | list | length == 0" % ", ".join(verdicts)],
        msg="failed cases: {{ [%s] | select('failed') | map(attribute='msg') | list }}" % ", ".join(verdicts),
    )
    f.add({"name": "The message of every bad-input case",
           "ansible.builtin.debug": {"msg": ["case %02d %s: {{ case%02d.msg }}" % (i, c[0], i)
                                             for i, c in enumerate(cases, 1)]}})
    f.add({"name": "Bad-input cases run", "ansible.builtin.debug": {"msg": "%d bad-input cases passed" % len(cases)}})
    return play("pitcopy.versions bad input (btrfs)", f.tasks, [sd])


# --- the EXAMPLES ---------------------------------------------------------------

TECH_OF = {"btrfs": "btrfs_", "lvm": "lvm_", "zfs": "zfs_"}


def module_examples(module):
    path = os.path.join(REPO, "plugins", "modules", module + ".py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise SystemExit("%s has no EXAMPLES" % path)


def gen_examples(tech, state_dir, report):
    """Every EXAMPLES task, verbatim, in module order. A task that defines a
    pool of another technology family (LVM or ZFS on the native run) is left
    out, as are tasks on such pools; ``report`` lists what ran and what not."""
    tasks = []
    foreign_pools = set()
    ran, left_out = [], []
    for module in MODULES:
        previous_ran = True
        for task in module_examples(module):
            key = FQCN % module
            args = task.get(key)
            if key in task:
                args = args if isinstance(args, dict) else {}
                technology = args.get("technology")
                pool = args.get("name") if module == "copy_pool" else args.get("pool")
                if technology and not technology.startswith(TECH_OF[tech]):
                    foreign_pools.add(pool)
                previous_ran = pool not in foreign_pools
            # a helper task (debug, assert) goes with the pitcopy task before it
            if not previous_ran:
                left_out.append("%s: %s" % (module, task.get("name")))
                continue
            ran.append("%s: %s" % (module, task.get("name")))
            tasks.append(task)
    with open(report, "w") as f:
        json.dump({"ran": ran, "left_out": left_out}, f, indent=1)
    return play("pitcopy.versions EXAMPLES (%s)" % tech, tasks, [state_dir])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["flow", "bad", "examples"])
    parser.add_argument("--tech", default="btrfs", choices=["btrfs", "lvm", "zfs"])
    parser.add_argument("--root")
    parser.add_argument("--state-dir")
    parser.add_argument("--report")
    parser.add_argument("--level", default="full", choices=["full", "light", "vm"])
    parser.add_argument("--target", help="inventory host the modules run on (default: localhost, connection local)")
    parser.add_argument("--target-ssh-config", help="ssh config that reaches --target (for the fingerprints)")
    args = parser.parse_args(argv)
    if bool(args.target) != bool(args.target_ssh_config):
        parser.error("--target and --target-ssh-config go together")
    TARGET.update(host=args.target, ssh_config=args.target_ssh_config)
    if args.what == "flow":
        doc = gen_flow(args.tech, args.root, args.level)
    elif args.what == "bad":
        doc = gen_bad(args.root)
    else:
        doc = gen_examples(args.tech, args.state_dir, args.report)
    yaml.dump(doc, sys.stdout, Dumper=Dumper, default_flow_style=False, sort_keys=False, width=120)


if __name__ == "__main__":
    main()
