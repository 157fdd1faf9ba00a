# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the module unit tests: module args, exit/fail capture, and an
engine wired to the in-memory backend instead of the real storage tools."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import json
import os
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.pitcopy.versions.plugins.module_utils import _module

try:  # ansible-core 2.19+
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # pragma: no cover - older ansible-core
    patch_module_args = None


CLONE_POOL = {
    "name": "tab",
    "technology": "lvm_clone",
    "sources": ["vg/A", "vg/B"],
    "versions": 2,
    "target_pools": [
        {"name": "01", "volumes": ["vg/a", "vg/b"]},
        {"name": "02", "volumes": ["vg/c", "vg/d"]},
    ],
}

SNAP_POOL = {
    "name": "web",
    "technology": "btrfs_snapshot",
    "sources": ["/srv/data/db", "/srv/data/www"],
    "versions": 3,
}


class AnsibleExitJson(Exception):
    """exit_json was called; ``result`` is what the module returned."""

    def __init__(self, result):
        super(AnsibleExitJson, self).__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    """fail_json was called; ``result`` is what the module returned."""

    def __init__(self, result):
        super(AnsibleFailJson, self).__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, msg=None, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise AnsibleFailJson(kwargs)


@contextlib.contextmanager
def set_module_args(args):
    """Make ``args`` the arguments of the next AnsibleModule."""
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    serialized = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))  # pragma: no cover
    with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):  # pragma: no cover
        yield


def run_main(module):
    """``module.main()`` under the patched exit_json/fail_json: (result
    dict, failed bool)."""
    try:
        module.main()
    except AnsibleExitJson as exc:
        return exc.result, False
    except AnsibleFailJson as exc:
        return exc.result, True
    raise AssertionError("module.main() returned without exit_json or fail_json")


def pair_list(entry):
    """[(source, target)] of a record or version dict of a module's result."""
    return [(p["source"], p["target"]) for p in entry["pairs"]]


class ModuleHarness(object):
    """Runs a module's main() against one in-memory host and one state_dir.

    ``backend`` is a tests.unit.memory_backend.MemoryBackend; every module run
    gets it from the patched backend factory, so the host persists between
    runs like a real one would.
    """

    def __init__(self, state_dir, backend, window_factory=None, clock=None, tz=None):
        self.state_dir = str(state_dir)
        self.backend = backend
        self.window_factory = window_factory
        # the engine's clock and timezone for every module run (a grid
        # pool's hours simulated); None: the real ones
        self.clock = clock
        self.tz = tz

    def _engine_class(self):
        real = _module.RecordEngine
        window_factory = self.window_factory
        harness = self

        def make(store, backend_for, clock=None):
            clock = clock or harness.clock
            extra = {"tz": harness.tz} if harness.tz is not None else {}
            if window_factory is None:
                return real(store, backend_for, clock=clock, **extra)
            return real(store, backend_for, clock=clock, window_factory=window_factory, **extra)

        return make

    def run(self, module, args, check_mode=False, diff=False, add_state_dir=True):
        """Run ``module.main()``; return (result dict, failed bool)."""
        args = dict(args)
        if add_state_dir:
            args.setdefault("state_dir", self.state_dir)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        backend = self.backend
        with set_module_args(args), mock.patch.multiple(
            basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json
        ), mock.patch.object(_module, "backend_factory", lambda runner: (lambda technology: backend)), \
                mock.patch.object(_module, "RecordEngine", self._engine_class()):
            return run_main(module)

    def ok(self, module, args, **kwargs):
        result, failed = self.run(module, args, **kwargs)
        assert not failed, result
        return result

    def fail(self, module, args, **kwargs):
        result, failed = self.run(module, args, **kwargs)
        assert failed, result
        return result

    def state_path(self, pool):
        return os.path.join(self.state_dir, "%s.yml" % pool)

    def snapshot(self):
        """Bytes of every file under state_dir (lock files and the previous
        generation excluded) plus the in-memory host: compared before/after
        to prove nothing changed. The previous generation (.<pool>.yml.prev)
        is a recovery copy that every write rotates, also a write that puts
        the same records back (a failed copy drops its journal)."""
        files = {}
        if os.path.isdir(self.state_dir):
            for name in sorted(os.listdir(self.state_dir)):
                if name.endswith((".lock", ".yml.prev")):
                    continue
                path = os.path.join(self.state_dir, name)
                if os.path.isfile(path):
                    with open(path, "rb") as f:
                        files[name] = hashlib.sha256(f.read()).hexdigest()
        host = json.dumps(
            {
                "volumes": sorted((n, repr(v)) for n, v in self.backend.volumes.items()),
                "data": sorted(self.backend.data.items()),
                "copies": sorted((n, sorted(c.items())) for n, c in self.backend.copies.items()),
            },
            sort_keys=True,
            default=str,
        )
        return files, host
