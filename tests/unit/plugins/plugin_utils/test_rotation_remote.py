# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation role's ``ssh``, ``transfer`` and target pool ``host``
(issue 14): rotation_expand carries them to each copy pool (a tier takes ssh
only when one of its target pools names a host; an entry whose target pools
never do is a problem), and rotation_to_define sees a changed transfer, host
or ssh as copy_pool does, on the in-memory host. The role's argument specs
of the new options are copy_pool's (types, choices, defaults)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils._pool_options import ARGUMENT_SPEC
from ansible_collections.pitcopy.versions.plugins.modules import copy_pool
from ansible_collections.pitcopy.versions.plugins.plugin_utils import _rotation as rotation
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import ModuleHarness
from ansible_collections.pitcopy.versions.tests.unit.plugins.plugin_utils.test_rotation import (
    GIB,
    define_args,
    pools_of,
    stored,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

FAR = {"name": "far", "volumes": ["/o/far"], "host": "root@backup"}
NEAR = {"name": "near", "volumes": ["/b/near"]}
SSH = {"port": 2222, "identity_file": "/root/.ssh/k", "options": ["UserKnownHostsFile=/etc/pitcopy/kh"]}


def send(name="s", **extra):
    return dict({"name": name, "technology": "btrfs_send", "sources": ["/srv/a"], "versions": 2,
                 "target_pools": [NEAR, FAR]}, **extra)


# --- the role's argument specs ----------------------------------------------------

def _spec_shape(spec):
    """Types, elements, choices, defaults and required of an option tree, as
    the role's specs and copy_pool's ARGUMENT_SPEC both write them."""
    out = {}
    for key, option in spec.items():
        shape = dict((k, option[k]) for k in ("type", "elements", "choices", "default", "required") if k in option)
        shape.setdefault("required", False)
        if option.get("options"):
            shape["options"] = _spec_shape(option["options"])
        out[key] = shape
    return out


def _role_pool_spec(entry_point):
    with open(os.path.join(ROOT, "roles", "rotation", "meta", "argument_specs.yml")) as f:
        specs = yaml.safe_load(f)["argument_specs"]
    return specs[entry_point]["options"]["rotation_pools"]["options"]


@pytest.mark.parametrize("entry_point", ["main", "prepare", "verify"])
def test_the_role_takes_ssh_transfer_and_host_as_copy_pool_does(entry_point):
    pool = _role_pool_spec(entry_point)
    for key in ("ssh", "transfer", "target_pools"):
        assert _spec_shape({key: pool[key]}) == _spec_shape({key: ARGUMENT_SPEC[key]}), key
    assert _spec_shape({"t": pool["tiers"]["options"]["target_pools"]}) \
        == _spec_shape({"t": ARGUMENT_SPEC["target_pools"]})


# --- expand -------------------------------------------------------------------------

def test_a_pool_carries_ssh_transfer_and_its_target_pools_hosts():
    transfer = {"compressed": True, "filter": ["pv", "-q"]}
    (pool,) = pools_of(send(ssh=SSH, transfer=transfer))
    assert pool["ssh"] == SSH and pool["transfer"] == transfer and pool["target_pools"] == [NEAR, FAR]
    assert define_args(pool)["ssh"] == SSH and define_args(pool)["transfer"] == transfer


def test_left_out_they_are_none_and_not_passed():
    (pool,) = pools_of(send(target_pools=[NEAR, dict(NEAR, name="n2", volumes=["/b/n2"])]))
    assert pool["ssh"] is None and pool["transfer"] is None
    assert "ssh" not in define_args(pool) and "transfer" not in define_args(pool)
    # an empty transfer is no transfer
    (pool,) = pools_of(send(transfer={}))
    assert "transfer" not in define_args(pool)


def test_a_tier_takes_ssh_only_when_one_of_its_target_pools_names_a_host():
    entry = send("db", policy="tiered", target_pools=[NEAR, dict(NEAR, name="n2", volumes=["/b/n2"])], ssh=SSH,
                 transfer={"compressed": True},
                 tiers=[{"name": "daily", "keep": 2}, {"name": "monthly", "keep": 1, "target_pools": [FAR]}])
    entry.pop("versions")
    daily, monthly = pools_of(entry)
    assert daily["ssh"] is None and monthly["ssh"] == SSH
    assert daily["transfer"] == monthly["transfer"] == {"compressed": True}


@pytest.mark.parametrize("entry, tail", [
    (send(target_pools=[NEAR], versions=1, ssh={"port": 22}), "none of its target pools names host"),
    (send(target_pools=[NEAR], ssh={"port": 22}, policy="tiered", tiers=[{"name": "daily", "keep": 1}]),
     "none of its target pools (nor those of its tiers) names host"),
])
def test_ssh_without_any_target_pool_on_another_host_is_a_problem(entry, tail):
    run = rotation.expand([entry])
    assert len(run["problems"]) == 1
    assert 'pool "s" has ssh {"port": 22}, which reaches target pools on another host, but ' in run["problems"][0]
    assert tail + "; leave ssh out or give a target pool a host" in run["problems"][0]
    # removing such a pool is no problem
    assert rotation.expand([dict(entry, state="absent")])["problems"] == []


# --- to_define: copy_pool's comparison --------------------------------------------

def send_host(tmp_path):
    """btrfs_send on the memory host, which (for this test) may name hosts:
    the memory host keeps remote target names as plain names."""
    be = MemoryBackend("btrfs_send")
    be.remote_targets = True
    be.extra_target_kinds = {"directory"}
    be.add_volume("/srv/a", size=GIB)
    for name in ("/b/near", "/o/far", "/o/far2"):
        be.add_volume(name, size=2 * GIB, kind="directory")
    return ModuleHarness(tmp_path / "state", be, window_factory=SimpleWindow)


SAME, CHANGED = False, True
BASE = send(ssh=SSH, transfer={"compressed": True})


@pytest.mark.parametrize("variant, changed", [
    ({}, SAME),
    # copy_pool's defaults given are no change
    ({"transfer": {"compressed": True, "raw": "auto", "large_block": False, "filter": []}}, SAME),
    ({"ssh": dict(SSH, port="2222")}, SAME),
    ({"transfer": {"compressed": False}}, CHANGED),
    ({"transfer": None}, CHANGED),
    ({"transfer": {"compressed": True, "filter": ["pv", "-q", "-L", "10m"]}}, CHANGED),
    ({"ssh": dict(SSH, port=22)}, CHANGED),
    ({"ssh": dict(SSH, options=[])}, CHANGED),
    ({"target_pools": [NEAR, dict(FAR, host="root@elsewhere")]}, CHANGED),
    ({"target_pools": [NEAR, dict(FAR, volumes=["/o/far2"])]}, CHANGED),
])
def test_to_define_sees_a_changed_transfer_ssh_or_host_as_copy_pool_does(tmp_path, variant, changed):
    host = send_host(tmp_path)
    (first,) = pools_of(BASE)
    host.ok(copy_pool, define_args(first))
    assert rotation.to_define([first], stored(host)) == []
    (pool,) = pools_of(dict(BASE, **variant))
    assert host.ok(copy_pool, define_args(pool), check_mode=True)["changed"] is changed
    assert rotation.to_define([pool], stored(host)) == (["s"] if changed else [])


def test_a_target_pool_moved_to_the_managed_host_is_a_change(tmp_path):
    host = send_host(tmp_path)
    (first,) = pools_of(BASE)
    host.ok(copy_pool, define_args(first))
    local_far = dict(FAR)
    local_far.pop("host")
    (pool,) = pools_of(dict(BASE, target_pools=[NEAR, local_far], ssh=None))
    assert host.ok(copy_pool, define_args(pool), check_mode=True)["changed"] is True
    assert rotation.to_define([pool], stored(host)) == ["s"]
