# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""zfs_send's choice of base without the storage: the pairs that are sent
in full before anything is read, and a missing bookmark read as absent
(OpenZFS 2.1 says "no such pool or dataset" for it, as recorded in the
guest). The storage side: test_replay_zfs.py and
tests/real/test_zfs_incremental.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend


class Canned(object):
    """A runner answering each ``run`` with the next canned (rc, out, err)."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.argvs = []

    def run(self, argv, data=None, check=True, timeout=None):
        self.argvs.append(list(argv))
        if not self.answers:
            raise AssertionError("unexpected command %r" % (argv,))
        return self.answers.pop(0)


DEF = PoolDefinition(name="inc", technology="zfs_send", sources=("s/a", "s/b"), versions=2,
                     target_pools=(TargetPool("A", ("t/A/a", "t/A/b")), TargetPool("B", ("t/B/a", "t/B/b"))))


def test_no_earlier_copy_or_another_target_is_full_without_reading():
    b = ZfsSendBackend(Canned())
    plan = b.plan_copies(DEF, 3, [CopyPair("s/a", "t/A/a"), CopyPair("s/b", "t/A/b")])
    plan.bases = {"s/b": (1, CopyPair("s/b", "t/A/a"))}
    chosen = b._choose_bases(plan)
    assert chosen["s/a"] == (None, "the target pool holds no earlier copy of it")
    assert chosen["s/b"][0] is None and "another target dataset (t/A/a)" in chosen["s/b"][1]
    assert b.runner.argvs == []


def test_base_names():
    assert ZfsSendBackend.base_bookmark(DEF, "s/a", 4) == "s/a#pitcopy-inc-v4"
    assert ZfsSendBackend.received_snapshot(DEF, "t/A/a", 4) == "t/A/a@pitcopy-inc-v4"


def test_a_missing_bookmark_is_absent_other_errors_raise():
    b = ZfsSendBackend(Canned([
        (1, "s/a#pitcopy-inc-v1\tguid\t42\t-\n", "cannot open 's/b#pitcopy-inc-v1': no such pool or dataset\n"),
        (1, "", "cannot open 's/b': permission denied\n"),
    ]))
    assert b._get(("guid",), ["s/a#pitcopy-inc-v1", "s/b#pitcopy-inc-v1"], types="bookmark") == {
        "s/a#pitcopy-inc-v1": {"guid": ("42", "-")}}
    with pytest.raises(CommandError) as exc:
        b._get(("guid",), ["s/b"], recursive=True, depth=1, types="bookmark")
    assert "permission denied" in exc.value.msg
