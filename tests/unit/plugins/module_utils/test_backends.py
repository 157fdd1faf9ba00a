# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which backend serves which technology, loaded per technology family."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import os
import subprocess
import sys

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _backends
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import TECHNOLOGIES

MU = "ansible_collections.pitcopy.versions.plugins.module_utils."


@pytest.mark.parametrize("technology", TECHNOLOGIES)
def test_every_technology_has_its_backend(technology):
    cls = _backends.backend_class(technology)
    assert cls.technology == technology
    assert cls.__module__ == MU + "_" + technology.split("_")[0]


@pytest.mark.parametrize("bad", ["lvm_nope", "lvm", "nope", "", None, "zfs_snapshot; ls"])
def test_an_unknown_technology_is_refused_with_the_accepted_ones(bad):
    with pytest.raises(InvalidInput) as exc:
        _backends.backend_class(bad)
    assert repr(bad) in exc.value.msg
    assert "lvm_thin" in exc.value.msg and "btrfs_send" in exc.value.msg


def test_factory_shares_the_runner():
    runner = object()
    backend = _backends.backend_factory(runner)("btrfs_snapshot")
    assert backend.runner is runner


def test_a_family_is_imported_only_when_used():
    # a fresh interpreter: this test session has imported every backend already
    code = (
        "import sys\n"
        "from ansible_collections.pitcopy.versions.plugins.module_utils import _backends\n"
        "_backends.backend_class('zfs_snapshot')\n"
        "print([f for f in ('_btrfs', '_lvm', '_zfs') if %r + f in sys.modules])\n" % MU
    )
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))).stdout
    assert out.decode().strip() == "['_zfs']"


def test_every_backend_import_is_a_literal_statement():
    """Ansible ships a module's module_utils by reading its import statements:
    each backend module must be named in one, even though it runs lazily."""
    with open(_backends.__file__) as fh:
        tree = ast.parse(fh.read())
    imported = set(node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom))
    for family in ("_btrfs", "_lvm", "_zfs"):
        assert MU + family in imported
