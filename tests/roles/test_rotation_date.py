# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation role refuses a rotation_date that is not a real calendar day
(ansible-playbook against localhost, the role's own check tasks).

Outside tests/unit on purpose: it runs ansible-playbook with the collection
tree of tests/setup.sh, which `ansible-test units` (it collects tests/unit)
does not provide; the `unit` stage of tests/run.sh runs it."""

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
COLLECTIONS = os.path.join(ROOT, ".cache", "coll-link")

GOOD = ["", "2026-11-25", "2024-02-29", "2000-02-29", "2026-12-31", "2026-01-01"]
BAD = ["9999-99-99", "2026-11-31", "2023-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-01-00",
       "0000-01-01", "26-11-25", "2026-11-25x", "yesterday"]


def _playbook_bin():
    local = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return local if os.path.exists(local) else shutil.which("ansible-playbook")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    playbook = _playbook_bin()
    if playbook is None or not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections")):
        pytest.fail("needs ansible-playbook next to the test's Python and %s (tests/setup.sh --sync-only)" % COLLECTIONS)
    out = str(tmp_path_factory.mktemp("rotation") / "out.json")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    extra = json.dumps({"rotation__cases": GOOD + BAD, "rotation__out": out, "ansible_python_interpreter": sys.executable})
    proc = subprocess.run([playbook, "-i", "localhost,", "-c", "local", os.path.join(HERE, "rotation_date.yml"),
                           "-e", extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")[-4000:]
    with open(out) as fh:
        return dict((r["date"], r) for r in json.load(fh))


@pytest.mark.parametrize("date", GOOD)
def test_real_dates_are_accepted(outcomes, date):
    assert outcomes[date]["ok"], outcomes[date]["msg"]


@pytest.mark.parametrize("date", BAD)
def test_impossible_dates_are_refused_naming_the_value_and_the_form(outcomes, date):
    result = outcomes[date]
    assert not result["ok"]
    assert "rotation_date %s is not a calendar day" % json.dumps(date) in result["msg"], result["msg"]
    assert "YYYY-MM-DD" in result["msg"]
