# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the rotation role passes to copy_pool: per rotation_pools entry
``ssh`` and ``transfer``, per target pool ``host`` (issue 14), reach
copy_pool as given and pass its argument spec; left out, they are not passed
at all (``omit``), so copy_pool's defaults apply. A tier takes ``ssh`` only
when one of its target pools names a host. The role's argument specs refuse
a wrong value of the new options before anything runs.

ansible-playbook runs the role's ``prepare`` entry point (argument specs,
rotation_expand, copy_pool_info, _define.yml) against a collection tree
whose files are the worktree's, except plugins/modules/copy_pool.py:
tests/roles/copy_pool_recorder.py, which changes nothing and returns the
arguments it got. Outside tests/unit for the reason test_rotation_date.py
gives."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

SSH = {"port": 2222, "identity_file": "/root/.ssh/pitcopy_push",
       "options": ["UserKnownHostsFile=/etc/pitcopy/known_hosts"]}
TRANSFER = {"compressed": True, "filter": ["mbuffer", "-q", "-m", "64M"]}
LOCAL = [{"name": "near1", "volumes": ["/srv/backup/n1"]}, {"name": "near2", "volumes": ["/srv/backup/n2"]}]
FAR = {"name": "far", "volumes": ["/backup/db/far"], "host": "root@backup.example.com"}

# the accepted pools run in one role run (each case is a run of ansible's
# role machinery, seconds each on a loaded machine)
ACCEPTED = [
    {"name": "offsite", "technology": "btrfs_send", "sources": ["/srv/db"], "versions": 2,
     "target_pools": [LOCAL[0], FAR], "ssh": SSH, "transfer": TRANSFER},
    {"name": "snaps", "technology": "btrfs_snapshot", "sources": ["/srv/db"], "versions": 3},
    {"name": "local", "technology": "btrfs_send", "sources": ["/srv/db"], "versions": 2, "target_pools": LOCAL},
    {"name": "tank_db", "technology": "zfs_send", "sources": ["tank/db"], "versions": 1,
     "target_pools": [{"name": "01", "volumes": ["backup/db"]}], "transfer": {"raw": True, "large_block": True}},
    {"name": "db", "technology": "btrfs_send", "sources": ["/srv/db"], "policy": "tiered", "target_pools": LOCAL,
     "ssh": {"port": 2222}, "transfer": {"compressed": True},
     "tiers": [{"name": "daily", "keep": 2}, {"name": "monthly", "keep": 1, "target_pools": [FAR]}]},
]
CASES = [
    {"name": "accepted", "pools": ACCEPTED},
    {"name": "bad_raw", "pools": [{"name": "bad", "technology": "zfs_send", "sources": ["tank/db"], "versions": 1,
                                   "target_pools": [{"name": "01", "volumes": ["backup/db"]}],
                                   "transfer": {"raw": "maybe"}}]},
    {"name": "bad_target_pool_key", "pools": [{"name": "bad", "technology": "btrfs_send", "sources": ["/srv/db"],
                                               "versions": 1, "target_pools": [dict(FAR, hots="backup")]}]},
    {"name": "bad_ssh_type", "pools": [{"name": "bad", "technology": "btrfs_send", "sources": ["/srv/db"],
                                        "versions": 1, "target_pools": [FAR], "ssh": {"port": "twenty-two"}}]},
    {"name": "ssh_without_host", "pools": [{"name": "lonely", "technology": "btrfs_send", "sources": ["/srv/db"],
                                            "versions": 2, "target_pools": LOCAL, "ssh": {"port": 22}}]},
]
# what _define.yml always passes for a present pool
ALWAYS = {"name", "state", "technology", "sources", "versions", "state_dir"}


def _playbook_bin():
    local = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return local if os.path.exists(local) else shutil.which("ansible-playbook")


def recorder_tree(base):
    """A collection path holding pitcopy.versions: the worktree's files
    (symlinks), with copy_pool replaced by the recorder."""
    coll = base / "ansible_collections" / "pitcopy" / "versions"
    modules = coll / "plugins" / "modules"
    modules.mkdir(parents=True)
    for entry in os.listdir(ROOT):
        if entry not in ("plugins", ".git", ".venv", ".cache", "tests"):
            os.symlink(os.path.join(ROOT, entry), str(coll / entry))
    for entry in os.listdir(os.path.join(ROOT, "plugins")):
        if entry != "modules":
            os.symlink(os.path.join(ROOT, "plugins", entry), str(coll / "plugins" / entry))
    for entry in os.listdir(os.path.join(ROOT, "plugins", "modules")):
        if entry != "copy_pool.py":
            os.symlink(os.path.join(ROOT, "plugins", "modules", entry), str(modules / entry))
    shutil.copy(os.path.join(HERE, "copy_pool_recorder.py"), str(modules / "copy_pool.py"))
    return str(base)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    playbook = _playbook_bin()
    if playbook is None:
        pytest.fail("needs ansible-playbook next to the test's Python")
    base = tmp_path_factory.mktemp("rotation_args")
    collections = recorder_tree(base / "collections")
    state_dir = base / "state"
    state_dir.mkdir()
    out = str(base / "out.json")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    extra = json.dumps({"rotation__cases": CASES, "rotation__out": out, "rotation__state_dir": str(state_dir),
                        "ansible_python_interpreter": sys.executable})
    proc = subprocess.run([playbook, "-i", "localhost,", "-c", "local",
                           os.path.join(HERE, "rotation_copy_pool_args.yml"), "-e", extra],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")[-4000:]
    # the recorder changed nothing: no state file was written
    assert os.listdir(str(state_dir)) == [] or all(n.startswith(".") for n in os.listdir(str(state_dir)))
    with open(out) as fh:
        return dict((r["case"], r) for r in json.load(fh))


def calls(outcomes, case="accepted"):
    result = outcomes[case]
    assert result["ok"], result["msg"]
    return dict((c["name"], c) for c in result["calls"]), dict((v["name"], v) for v in result["validated"])


def test_ssh_transfer_and_host_reach_copy_pool_as_given(outcomes):
    given, validated = calls(outcomes)
    call = given["offsite"]
    assert set(call) == ALWAYS | {"target_pools", "ssh", "transfer"}
    assert call["ssh"] == SSH
    assert call["transfer"] == TRANSFER
    assert call["target_pools"] == [LOCAL[0], FAR]
    # copy_pool's argument spec takes them (its defaults filled in)
    assert validated["offsite"]["transfer"] == {"raw": "auto", "compressed": True, "large_block": False,
                                                "filter": ["mbuffer", "-q", "-m", "64M"]}
    assert [tp["host"] for tp in validated["offsite"]["target_pools"]] == [None, "root@backup.example.com"]
    assert validated["offsite"]["ssh"] == SSH


def test_left_out_they_are_not_passed(outcomes):
    given, validated = calls(outcomes)
    assert set(given["snaps"]) == ALWAYS
    assert set(given["local"]) == ALWAYS | {"target_pools"}
    assert all("host" not in tp for tp in given["local"]["target_pools"])
    for name in ("snaps", "local"):
        assert validated[name]["ssh"] is None and validated[name]["transfer"] is None


def test_raw_given_as_a_yaml_boolean_is_copy_pools_choice(outcomes):
    given, validated = calls(outcomes)
    assert given["tank_db"]["transfer"] == {"raw": True, "large_block": True}
    assert validated["tank_db"]["transfer"] == {"raw": "true", "compressed": False, "large_block": True,
                                                "filter": []}
    assert "ssh" not in given["tank_db"]


def test_a_tier_takes_ssh_only_with_a_target_pool_on_another_host(outcomes):
    given, _validated = calls(outcomes)
    assert set(given) == {"offsite", "snaps", "local", "tank_db", "db-daily", "db-monthly"}
    assert "ssh" not in given["db-daily"] and given["db-daily"]["target_pools"] == LOCAL
    assert given["db-monthly"]["ssh"] == {"port": 2222} and given["db-monthly"]["target_pools"] == [FAR]
    assert given["db-daily"]["transfer"] == given["db-monthly"]["transfer"] == {"compressed": True}


@pytest.mark.parametrize("case, words", [
    ("bad_raw", ["raw", "maybe", "auto, true, false", "rotation_pools"]),
    ("bad_target_pool_key", ["hots", "target_pools"]),
    ("bad_ssh_type", ["port", "twenty-two", "int"]),
    ("ssh_without_host", ['pool "lonely" has ssh {"port": 22}', "none of its target pools names host",
                          "leave ssh out or give a target pool a host"]),
])
def test_wrong_values_are_refused_before_copy_pool_runs(outcomes, case, words):
    result = outcomes[case]
    assert not result["ok"] and result["calls"] == []
    for word in words:
        assert word in result["msg"], result["msg"]
