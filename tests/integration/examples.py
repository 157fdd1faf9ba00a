# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the modules' EXAMPLES, verbatim, as a task file for one technology
family (the module_examples integration target includes it).

    examples.py --tech btrfs|lvm|zfs --out TASKS.yml

Every EXAMPLES task in module order; a task that defines a pool of another
technology family is left out, as are the tasks on such pools (and a helper
task, debug or assert, goes with the pitcopy task before it); so is a pool
with a target pool on another host (``host``), which needs a second host:
tests/real/test_btrfs_push.py runs those options between two test hosts.
Prints what ran and what was left out, and why.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import ast
import os

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MODULES = ["copy_pool", "prepair_record", "copy_version", "verify_records", "copy_pool_info"]
FQCN = "pitcopy.versions.%s"
TECH_OF = {"btrfs": "btrfs_", "lvm": "lvm_", "zfs": "zfs_"}


def module_examples(module):
    path = os.path.join(REPO, "plugins", "modules", module + ".py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            return yaml.safe_load(node.value.value)
    raise SystemExit("%s has no EXAMPLES" % path)


def examples(tech):
    """(tasks, ran, left_out) for one technology family."""
    tasks, ran, left_out = [], [], []
    foreign_pools = set()
    remote_pools = set()
    for module in MODULES:
        previous_ran = True
        for task in module_examples(module):
            key = FQCN % module
            if key in task:
                args = task[key] if isinstance(task[key], dict) else {}
                technology = args.get("technology")
                pool = args.get("name") if module == "copy_pool" else args.get("pool")
                if technology and not technology.startswith(TECH_OF[tech]):
                    foreign_pools.add(pool)
                if any(isinstance(tp, dict) and tp.get("host") for tp in args.get("target_pools") or ()):
                    # a target pool on another host: this stage has no second
                    # host; tests/real/test_btrfs_push.py runs these options
                    # between two test hosts with an sshd each
                    remote_pools.add(pool)
                previous_ran = pool not in foreign_pools and pool not in remote_pools
            if not previous_ran:
                left_out.append("%s: %s (%s)" % (module, task.get("name"), "a target pool on another host"
                                                 if pool in remote_pools else "other technology"))
                continue
            ran.append("%s: %s" % (module, task.get("name")))
            tasks.append(task)
    return tasks, ran, left_out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tech", required=True, choices=sorted(TECH_OF))
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    tasks, ran, left_out = examples(args.tech)
    with open(args.out, "w") as f:
        yaml.safe_dump(tasks, f, default_flow_style=False, sort_keys=False, width=120)
    print("EXAMPLES run: %d tasks" % len(ran))
    for t in ran:
        print("  ran: " + t)
    for t in left_out:
        print("  not here: " + t)


if __name__ == "__main__":
    main()
