# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One set of definition rules (_definition): the store refuses, on write and
on read, the values the engine refuses, with the same words; before, the
store let through what the engine refused (a hook timeout of 0, an unknown
technology or consistency, an empty hook argv), so a hand-edited file loaded
and failed later, at a copy, far from its cause. Each refusal names the value
and what is accepted, and leaves the file as it was."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition, check_values
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import Hook, PoolDefinition, PoolState
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore

GOOD = dict(name="db", technology="btrfs_snapshot", sources=("/srv/a",), versions=2)

# (changed fields, the words the refusal must hold: the option, the value, what is accepted)
BAD_VALUES = [
    (dict(pre_copy_hooks=(Hook(("sync",), timeout=0),)), ["pre_copy_hooks[0].timeout", "0", "at least 1"]),
    (dict(post_copy_hooks=(Hook(("sync",), timeout=-5),)), ["post_copy_hooks[0].timeout", "-5", "at least 1"]),
    (dict(pre_copy_hooks=(Hook(()),)), ["pre_copy_hooks[0].argv", "non-empty list of strings"]),
    (dict(technology="tape"), ["technology", "'tape'", "lvm_snapshot", "btrfs_send"]),
    (dict(consistency="maybe"), ["consistency", "'maybe'", "auto, freeze, none"]),
    (dict(versions=0), ["versions", "0", "at least 1"]),
]
IDS = [w[0] for _c, w in BAD_VALUES]


def _definition(**changes):
    fields = dict(GOOD)
    fields.update(changes)
    return PoolDefinition(**fields)


def _message(check, definition):
    with pytest.raises(InvalidInput) as exc:
        check(definition)
    return exc.value.msg


@pytest.fixture
def store(tmp_path):
    return StateStore(str(tmp_path / "state"), lock_timeout=0.5)


@pytest.mark.parametrize("changes,words", BAD_VALUES, ids=IDS)
def test_the_engine_and_the_store_refuse_a_bad_value_with_the_same_words(store, changes, words):
    bad = _definition(**changes)
    engine_msg = _message(check_definition, bad)
    assert engine_msg == _message(check_values, bad)
    for word in words:
        assert word in engine_msg, engine_msg
    store.save(PoolState(_definition()))
    before = store.read_raw("db")
    with pytest.raises(StateFileError) as exc:
        store.save(PoolState(bad))
    assert engine_msg in exc.value.msg and "refusing to write" in exc.value.msg
    assert store.read_raw("db") == before


@pytest.mark.parametrize("changes,words", BAD_VALUES, ids=IDS)
def test_a_hand_edited_file_with_a_bad_value_is_refused_on_load(store, changes, words):
    """A schema_version 1 file (no seal: how an operator's hand edit looks)."""
    bad = _definition(**changes)
    doc = {"schema_version": 1,
           "definition": {"name": "db", "technology": bad.technology, "versions": bad.versions,
                          "sources": list(bad.sources), "consistency": bad.consistency,
                          "pre_copy_hooks": [h.as_dict() for h in bad.pre_copy_hooks],
                          "post_copy_hooks": [h.as_dict() for h in bad.post_copy_hooks]}}
    os.makedirs(store.state_dir, 0o700)
    with open(store.path("db"), "wb") as fh:
        fh.write(yaml.safe_dump(doc).encode())
    before = store.read_raw("db")
    with pytest.raises(StateFileError) as exc:
        store.load("db")
    assert _message(check_definition, bad) in exc.value.msg
    assert "definition" in exc.value.msg
    assert store.read_raw("db") == before


def test_what_the_store_accepts_the_engine_accepts_value_by_value(store):
    """The rules between values (target pools a technology needs, duplicate
    sources) stay the engine's: a file that breaks them still loads, so
    verify_records can show it; check_values passes on it."""
    d = _definition(technology="btrfs_send", sources=("/srv/a", "/srv/a"),
                    pre_copy_hooks=(Hook(("sync",), timeout=1),))
    store.save(PoolState(d))
    assert store.load("db").definition == d
    check_values(d)
    with pytest.raises(InvalidInput, match="source /srv/a is listed twice"):
        check_definition(d)
