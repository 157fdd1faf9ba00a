# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The technology table (_technologies.TABLE) is the one list of the
technologies: what derives from it in Python is checked to derive, and every
place that cannot import it (the rotation role's argument specs and package
defaults, copy_pool's DOCUMENTATION, the docs) is compared with it here. A new
technology, a renamed one, or a changed package fails this test until every
such place says the same."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import pytest
import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils import _backends, _model, _technologies
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import (
    LISTED_TARGET_TECHNOLOGIES,
    SNAPSHOT_SIZE_TECHNOLOGIES,
    SNAPSHOT_TECHNOLOGIES,
    TABLE,
    TECHNOLOGIES,
)
from ansible_collections.pitcopy.versions.plugins.modules import copy_pool

# the collection under test (works from the checkout and from ansible-test's copy)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(_technologies.__file__))))
ROLE = os.path.join(ROOT, "roles", "rotation")
LISTED = [t.name for t in TABLE if not t.snapshot]
SNAPSHOT = [t.name for t in TABLE if t.snapshot]


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


def _yaml(*parts):
    return yaml.safe_load(_read(*parts))


def _mentioned(text, markup):
    """The technologies named in ``text`` as ``markup % name`` (C(x), V(x), `x`)."""
    return [t for t in TECHNOLOGIES if markup % t in text]


# --- what derives in Python -----------------------------------------------------

def test_the_table_names_each_technology_once_and_kinds_partition_it():
    assert len(set(TECHNOLOGIES)) == len(TECHNOLOGIES) == len(TABLE)
    assert SNAPSHOT_TECHNOLOGIES | LISTED_TARGET_TECHNOLOGIES == set(TECHNOLOGIES)
    assert not SNAPSHOT_TECHNOLOGIES & LISTED_TARGET_TECHNOLOGIES
    assert SNAPSHOT_SIZE_TECHNOLOGIES == {"lvm_snapshot"}
    for t in TABLE:
        assert t.name.startswith(t.family + "_") and t.packages, t


def test_the_model_constants_are_the_table():
    assert _model.TECHNOLOGIES is TECHNOLOGIES
    assert _model.SNAPSHOT_TECHNOLOGIES is SNAPSHOT_TECHNOLOGIES
    assert _model.LISTED_TARGET_TECHNOLOGIES is LISTED_TARGET_TECHNOLOGIES


@pytest.mark.parametrize("family", _technologies.FAMILIES)
def test_each_family_module_serves_exactly_its_rows(family):
    classes = _backends._FAMILIES[family]()  # pylint: disable=protected-access
    assert sorted(cls.technology for cls in classes) == sorted(t.name for t in TABLE if t.family == family)
    for cls in classes:
        assert _backends.backend_class(cls.technology) is cls


# --- copy_pool --------------------------------------------------------------------

def test_copy_pool_documentation_lists_the_table():
    options = yaml.safe_load(copy_pool.DOCUMENTATION)["options"]
    assert options["technology"]["choices"] == list(TECHNOLOGIES)
    assert _mentioned(" ".join(options["technology"]["description"]), "V(%s)") == list(TECHNOLOGIES)
    assert _mentioned(" ".join(options["target_pools"]["description"][:1]), "V(%s)") == LISTED
    assert _mentioned(options["snapshot_size"]["description"][0], "O(technology=%s)") \
        == sorted(SNAPSHOT_SIZE_TECHNOLOGIES)
    assert options["consistency"]["choices"] == list(_model.CONSISTENCY_MODES)


# --- the rotation role ------------------------------------------------------------

ENTRY_POINTS = sorted(_yaml("roles", "rotation", "meta", "argument_specs.yml")["argument_specs"])


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_rotation_argument_specs_list_the_table(entry_point):
    options = _yaml("roles", "rotation", "meta", "argument_specs.yml")["argument_specs"][entry_point]["options"]
    pool = options["rotation_pools"]["options"]
    assert pool["technology"]["choices"] == list(TECHNOLOGIES)
    assert pool["consistency"]["choices"] == list(_model.CONSISTENCY_MODES)
    assert _mentioned(pool["target_pools"]["description"][0], "C(%s)") == LISTED
    assert _mentioned(pool["tiers"]["options"]["target_pools"]["description"], "C(%s)") == LISTED
    assert _mentioned(pool["snapshot_size"]["description"], "C(%s)") == sorted(SNAPSHOT_SIZE_TECHNOLOGIES)
    assert options["rotation_packages_by_technology"]["default"] == _technologies.packages_by_technology()


def test_rotation_package_defaults_are_the_table():
    assert _yaml("roles", "rotation", "defaults", "main.yml")["rotation_packages_by_technology"] \
        == _technologies.packages_by_technology()


def test_the_rotation_pools_spec_is_written_once():
    """The entry points share main's options through YAML aliases: the text
    holds one spec of rotation_pools, the loaded data three equal ones."""
    text = _read("roles", "rotation", "meta", "argument_specs.yml")
    assert text.count("choices: [%s]" % ", ".join(TECHNOLOGIES)) == 1
    assert text.count("lvm_thin: [lvm2, thin-provisioning-tools]") == 1
    assert text.count("rotation_pools: &rotation_pools") == 1
    assert text.count("rotation_pools: *rotation_pools") == len(ENTRY_POINTS) - 1
    specs = yaml.safe_load(text)["argument_specs"]
    for entry_point in ENTRY_POINTS:
        for name, spec in specs[entry_point]["options"].items():
            if name in specs["main"]["options"]:
                assert spec == specs["main"]["options"][name], (entry_point, name)


# --- the docs ---------------------------------------------------------------------

def _table_first_column(text, after):
    """The backticked first cells of the first Markdown table after ``after``."""
    rest = text[text.index(after):]
    rows = []
    for line in rest.splitlines():
        cell = re.match(r"^\| `([a-z_]+)` \|", line)
        if cell:
            rows.append(cell.group(1))
        elif rows:
            break
    return rows


def test_readme_table_lists_the_table():
    assert _table_first_column(_read("README.md"), "## Technologies") == list(TECHNOLOGIES)


@pytest.mark.parametrize("heading", ["| technology | copy is |", "| technology | needed per version |"])
def test_docs_technologies_tables_list_the_table(heading):
    assert _table_first_column(_read("docs", "technologies.md"), heading) == list(TECHNOLOGIES)


def test_docs_concepts_names_the_snapshot_technologies():
    text = _read("docs", "concepts.md")
    sentence = re.search(r"For snapshot technologies \(([^)]*)\)", text.replace("\n", " ")).group(1)
    assert re.findall(r"`([a-z_]+)`", sentence) == SNAPSHOT
    listed = re.search(r"For (`[a-z_]+`(?:, `[a-z_]+`)*,? and\s+`[a-z_]+`) you list", text.replace("\n", " "))
    assert re.findall(r"`([a-z_]+)`", listed.group(1)) == LISTED


def test_docs_roles_names_every_package():
    row = [line for line in _read("docs", "roles.md").splitlines() if line.startswith("| `rotation_packages_by_technology`")]
    assert len(row) == 1
    for package in set(p for t in TABLE for p in t.packages):
        assert "`%s`" % package in row[0], package
