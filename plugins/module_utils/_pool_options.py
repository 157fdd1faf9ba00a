# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_pool's options: their argument spec and the PoolDefinition they
describe. Plain Python, no Ansible import (the spec is plain dicts).

copy_pool decides whether a pool changes by comparing that PoolDefinition
with the stored one. The rotation role asks the same question on the
controller before it calls copy_pool, so that a run over many pools does not
pay one module run per unchanged pool; its filter
(plugin_utils/_rotation.py) answers it with this argument spec, put through
Ansible's own validator (same defaults, same type conversion), and this
``definition``, never with rules of its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CONSISTENCY_MODES,
    SNAPSHOT_TECHNOLOGIES,
    TECHNOLOGIES,
    TRANSFER_RAW_MODES,
    Dataset,
    Hook,
    PoolDefinition,
    SshSettings,
    TargetPool,
    TransferSettings,
)

HOOK_SPEC = dict(
    argv=dict(type="list", elements="str", required=True),
    timeout=dict(type="int", default=60),
    abort_on_failure=dict(type="bool", default=True),
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    technology=dict(type="str", choices=list(TECHNOLOGIES)),
    sources=dict(type="list", elements="str"),
    versions=dict(type="int"),
    target_pools=dict(
        type="list",
        elements="dict",
        options=dict(
            name=dict(type="str", required=True),
            volumes=dict(type="list", elements="str", required=True),
            host=dict(type="str"),
        ),
    ),
    ssh=dict(
        type="dict",
        options=dict(
            port=dict(type="int"),
            identity_file=dict(type="str"),
            options=dict(type="list", elements="str", default=[]),
        ),
    ),
    snapshot_size=dict(type="str"),
    consistency=dict(type="str", choices=list(CONSISTENCY_MODES), default="auto"),
    pre_copy_hooks=dict(type="list", elements="dict", options=HOOK_SPEC, default=[]),
    post_copy_hooks=dict(type="list", elements="dict", options=HOOK_SPEC, default=[]),
    max_age=dict(type="str"),
    retention=dict(type="str"),
    datasets=dict(
        type="list",
        elements="dict",
        options=dict(
            name=dict(type="str", required=True),
            path=dict(type="str", required=True),
        ),
    ),
    remove_copies=dict(type="bool", default=False),
    transfer=dict(
        type="dict",
        options=dict(
            raw=dict(type="str", choices=list(TRANSFER_RAW_MODES), default="auto"),
            compressed=dict(type="bool", default=False),
            large_block=dict(type="bool", default=False),
            filter=dict(type="list", elements="str", default=[]),
        ),
    ),
)

REQUIRED_IF = [("state", "present", ("technology", "sources", "versions"))]

# The options of a stored pool that copy_pool_info returns (its pool dict).
_DEFINITION_OPTIONS = ("name", "technology", "sources", "versions", "target_pools", "snapshot_size", "consistency",
                       "pre_copy_hooks", "post_copy_hooks", "max_age", "ssh", "retention",
                       "datasets", "transfer")


def _hooks(items):
    return tuple(Hook(argv=tuple(h["argv"]), timeout=h["timeout"], abort_on_failure=h["abort_on_failure"])
                 for h in items)


def definition(params):
    """The PoolDefinition that copy_pool's (validated) options describe."""
    return PoolDefinition(
        name=params["name"],
        technology=params["technology"],
        sources=tuple(params["sources"]),
        versions=params["versions"],
        target_pools=tuple(TargetPool(name=tp["name"], volumes=tuple(tp["volumes"]), host=tp.get("host"))
                           for tp in params["target_pools"] or ()),
        snapshot_size=params["snapshot_size"],
        consistency=params["consistency"],
        pre_copy_hooks=_hooks(params["pre_copy_hooks"]),
        post_copy_hooks=_hooks(params["post_copy_hooks"]),
        max_age=params["max_age"],
        ssh=_ssh(params.get("ssh")),
        retention=params.get("retention"),
        datasets=tuple(Dataset(name=d["name"], path=_normpath(d["path"])) for d in params.get("datasets") or ()),
        transfer=_transfer(params.get("transfer")),
    )


def _normpath(path):
    """An absolute path normalized (``/srv/db/`` is ``/srv/db``), so that the
    same directory compares equal; anything else as given (refused later,
    with its value named)."""
    if isinstance(path, str) and path.startswith("/") and ".." not in path.split("/"):
        return posixpath.normpath(path)
    return path


def _ssh(value):
    if not value:
        return None
    return SshSettings(port=value.get("port"), identity_file=value.get("identity_file"),
                       options=tuple(value.get("options") or ()))


def _transfer(value):
    """The ``transfer`` option; omitted (or all defaults), the defaults."""
    if not value:
        return TransferSettings()

    def given(key, default):
        return default if value.get(key) is None else value[key]

    # values as given: a wrong one is refused by the definition check, named
    return TransferSettings(raw=given("raw", "auto"), compressed=given("compressed", False),
                            large_block=given("large_block", False), filter=tuple(value.get("filter") or ()))


def stored_options(pool):
    """The copy_pool options (state=present) that define ``pool``, a pool as
    copy_pool_info returns it. Snapshot technologies list their implied
    target pools there, which copy_pool does not take as an option."""
    options = dict((key, pool.get(key)) for key in _DEFINITION_OPTIONS)
    if options["technology"] in SNAPSHOT_TECHNOLOGIES:
        options["target_pools"] = None
    # the options name a dataset by {name, path}; the inventory is resolved
    options["datasets"] = [{"name": d["name"], "path": d["path"]} for d in options.get("datasets") or ()] or None
    options["state"] = "present"
    return options
