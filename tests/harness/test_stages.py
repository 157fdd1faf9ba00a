# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stage runner behind tests/run.sh (tests/stages.py), with fake stages:
selection, opt-in reporting, the summary line, the exit status, logs, the
background stages running beside the others."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import io
import os
import re
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("pitcopy_stages", os.path.join(HERE, "..", "stages.py"))
stages = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(stages)
Stage = stages.Stage


def sh(code):
    """A stage body running a shell snippet (fixed test text, no user input)."""
    def body(ctx):
        return ctx.run(["sh", "-c", code])
    return body


def ok(ctx):
    ctx.say("fine")
    return 0


def fake_stages():
    return [
        Stage("a", "passes", ok),
        Stage("b", "fails", sh("echo line1; echo boom; exit 4")),
        Stage("c", "passes too", sh("echo '========== 3 passed in 0.12s =========='")),
        Stage("opt", "opt-in", ok, opt_in=True, groups=["extra"]),
    ]


def make(tmp_path, stage_list=None, setup=None, serial=False):
    out = io.StringIO()
    runner = stages.Runner(stages=stage_list if stage_list is not None else fake_stages(),
                           setup_stage=setup or Stage("setup", "set-up", ok), repo=str(tmp_path),
                           logs=str(tmp_path / "logs"), out=out, tail_lines=5, serial=serial, environ={})
    return runner, out


def run(tmp_path, args, **kw):
    runner, out = make(tmp_path, **kw)
    rc = runner.main(args, environment=False)
    return rc, out.getvalue(), runner


def rows(text):
    """summary rows: stage -> result"""
    table = text.split("==================== summary ====================")[1].splitlines()[2:]
    return {line.split()[0]: " ".join(line.split()[1:3]) if "NOT RUN" in line else line.split()[1]
            for line in table if line and not line.startswith(("total:",)) and " passed, " not in line}


def test_default_run_skips_opt_in_runs_all_after_a_failure_and_exits_non_zero(tmp_path):
    rc, text, runner = run(tmp_path, [])
    assert rc == 1
    assert [s.name for s in runner.selected] == ["a", "b", "c"]
    assert rows(text) == {"setup": "PASS", "a": "PASS", "b": "FAIL", "c": "PASS", "opt": "NOT RUN"}
    assert text.rstrip().splitlines()[-1] == "3 passed, 1 failed"
    # the failing stage's tail, indented, and its log
    assert "---- b failed (rc=4); last 5 lines of" in text
    assert "    boom" in text
    assert (tmp_path / "logs" / "b.log").read_text().splitlines()[1:] == ["line1", "boom"]
    assert "not in this run (tests/run.sh opt)" in text
    # pytest's closing line is the stage's detail
    assert "3 passed in 0.12s" in [line for line in text.splitlines() if line.startswith("c ")][0]


def test_all_passing_exits_zero(tmp_path):
    rc, text, dummy = run(tmp_path, ["a", "c"])
    assert rc == 0
    assert text.rstrip().splitlines()[-1] == "3 passed, 0 failed"
    assert rows(text)["b"] == "NOT RUN"


def test_selection_is_deduplicated_in_declared_order_with_groups_and_all(tmp_path):
    runner, dummy = make(tmp_path)
    assert [s.name for s in runner.select(["c", "a", "c"])] == ["a", "c"]
    assert [s.name for s in runner.select(["extra"])] == ["opt"]
    assert [s.name for s in runner.select(["all"])] == ["a", "b", "c", "opt"]


def test_opt_in_stage_named_runs_and_passes(tmp_path):
    rc, text, dummy = run(tmp_path, ["opt"])
    assert rc == 0 and rows(text)["opt"] == "PASS"


def test_unknown_stage_is_a_usage_error(tmp_path, capsys):
    rc, text, dummy = run(tmp_path, ["nope"])
    assert rc == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err
    assert "summary" not in text


def test_list_names_every_stage_and_the_opt_in_ones(tmp_path):
    rc, text, dummy = run(tmp_path, ["--list"])
    assert rc == 0
    assert "default: all but opt" in text
    for name in ("a", "b", "c", "opt"):
        assert any(line.split()[0] == name for line in text.splitlines()[2:-1])
    assert "aliases: extra = opt" in text


def test_failed_setup_runs_nothing_and_counts_every_stage_failed(tmp_path):
    rc, text, dummy = run(tmp_path, ["a", "c"], setup=Stage("setup", "set-up", sh("exit 1")))
    assert rc == 1
    assert "set-up failed; no stage can run" in text
    assert text.rstrip().splitlines()[-1] == "0 passed, 3 failed"
    assert not (tmp_path / "logs" / "a.log").exists()


def test_missing_script_fails_as_missing(tmp_path):
    rc, text, dummy = run(tmp_path, ["x"], stage_list=[Stage("x", "a script", stages.script("tests/nothing.sh"))])
    assert rc == 1
    assert rows(text)["x"] == "MISSING"
    assert "tests/nothing.sh does not exist" in text


def test_a_crashing_stage_body_fails_that_stage_only(tmp_path):
    def crash(ctx):
        raise RuntimeError("bug")
    rc, text, dummy = run(tmp_path, [], stage_list=[Stage("x", "crashes", crash), Stage("y", "passes", ok)])
    assert rc == 1 and rows(text) == {"setup": "PASS", "x": "FAIL", "y": "PASS"}


def _waits_for(flag, seconds=20):
    """A stage that passes only when FLAG appears while it runs."""
    def body(ctx):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if os.path.exists(flag):
                return 0
            time.sleep(0.02)
        ctx.say("%s never appeared" % flag)
        return 1
    return body


def _touch(flag):
    def body(ctx):
        open(flag, "w").close()
        return 0
    return body


def test_background_stage_runs_beside_the_stages_before_it(tmp_path):
    # the foreground stage "fg" comes first and waits for what the background
    # stage "bg", declared after it, writes: only side by side do both pass
    flag = str(tmp_path / "flag")
    stage_list = [Stage("fg", "foreground", _waits_for(flag)), Stage("bg", "background", _touch(flag), background=True)]
    rc, text, dummy = run(tmp_path, [], stage_list=stage_list)
    assert rc == 0, text
    assert text.index("bg           started in the background") < text.index("==> fg")
    assert "bg           background (waiting for the background run)" in text
    assert (tmp_path / "logs" / "bg.log").read_text().startswith("# ")
    assert "(background)" in (tmp_path / "logs" / "bg.log").read_text().splitlines()[0]


def test_serial_runs_background_stages_in_order(tmp_path):
    flag = str(tmp_path / "flag")
    stage_list = [Stage("fg", "foreground", _waits_for(flag, 0.2)), Stage("bg", "bg", _touch(flag), background=True)]
    rc, text, dummy = run(tmp_path, [], stage_list=stage_list, serial=True)
    assert rc == 1 and rows(text)["fg"] == "FAIL" and rows(text)["bg"] == "PASS"
    assert "started in the background" not in text


@pytest.mark.parametrize("text, detail", [
    ("==== 5 passed, 1 skipped in 3.10s ====\n", "5 passed, 1 skipped in 3.10s"),
    ("== 2 passed in 1.0s ==\nx\n== 3 passed in 2.0s ==\n", "2 passed in 1.0s; 3 passed in 2.0s"),
    ("Running sanity test 'pep8'\nRunning sanity test 'pylint'\n", "2 sanity tests ran"),
    ("ERROR: The 1 sanity test(s) listed below (out of 40) failed. See error output above for details.\npylint\n"
     "FATAL: Command \"x\" returned exit status 1.\n",
     "The 1 sanity test(s) listed below (out of 40) failed: pylint"),
    ("nothing to report\n", ""),
])
def test_detail_of(text, detail):
    assert stages.detail_of(text) == detail


def test_declared_stages_keep_their_names_order_and_opt_in():
    assert [s.name for s in stages.STAGES] == ["unit", "sanity", "units", "btrfs", "integration", "molecule", "vm-lvm",
                                               "vm-lvm-faults", "vm-lvm-grid", "vm-lvm-molecule", "vm-zfs", "vm-zfs-faults",
                                               "vm-zfs-playbooks", "vm-zfs-grid", "vm-molecule", "vm-btrfs", "build", "lint",
                                               "changelog", "ee"]
    assert [s.name for s in stages.STAGES if s.opt_in] == ["vm-lvm-faults", "vm-lvm-grid", "vm-lvm-molecule",
                                                           "vm-zfs-faults", "vm-zfs-grid", "vm-molecule", "vm-btrfs"]
    assert [s.name for s in stages.STAGES if s.background] == ["vm-lvm", "vm-lvm-faults", "vm-lvm-grid",
                                                               "vm-lvm-molecule", "vm-zfs", "vm-zfs-faults",
                                                               "vm-zfs-playbooks", "vm-zfs-grid", "vm-molecule",
                                                               "vm-btrfs"]


def test_default_run_reports_the_fault_sweeps_not_run(tmp_path):
    """The declared stages (their bodies replaced): a default run, as CI's,
    runs vm-lvm and vm-zfs and lists the opt-in sweeps vm-lvm-faults and
    vm-zfs-faults as NOT RUN, never as passed; named, they run."""
    declared = [Stage(s.name, s.describe, ok, opt_in=s.opt_in, groups=s.groups) for s in stages.STAGES]
    rc, text, dummy = run(tmp_path, [], stage_list=declared, serial=True)
    assert rc == 0
    found = rows(text)
    assert found["vm-zfs"] == "PASS" and found["vm-lvm"] == "PASS"
    assert found["vm-zfs-faults"] == "NOT RUN" and found["vm-lvm-faults"] == "NOT RUN"
    assert "not in this run (tests/run.sh vm-zfs-faults)" in text
    rc, text, dummy = run(tmp_path, ["vm-zfs-faults"], stage_list=declared, serial=True)
    assert rc == 0 and rows(text)["vm-zfs-faults"] == "PASS" and rows(text)["vm-zfs"] == "NOT RUN"


@pytest.mark.parametrize("selected, suites", [
    (["unit", "sanity", "units"], ["tests/roles", "tests/harness"]),
    (["unit"], ["tests/unit", "tests/roles", "tests/harness"]),
])
def test_unit_leaves_tests_unit_to_ansible_test_units_when_both_run(tmp_path, selected, suites):
    """The default run has both stages: tests/unit runs once (under
    ansible-test units); `tests/run.sh unit` alone still runs it."""
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    ran = []

    class Ctx:
        runner = stages.Runner(repo=str(tmp_path), logs=str(tmp_path), out=io.StringIO(), environ={})
        repo = str(tmp_path)

        def path(self, rel):
            return os.path.join(self.repo, rel)

        def say(self, text):
            pass

        def run(self, argv, env=None):
            ran.append(argv)
            return 0

    Ctx.runner.select(selected)
    assert stages.unit(Ctx()) == 0
    argv = ran[0]
    assert argv[argv.index(str(tmp_path)) + 1:] == suites


def test_summary_reports_each_stages_cpu_seconds_and_the_total(tmp_path):
    # a stage that burns about 0.3 s of CPU in a child of its command: the
    # rusage of waited-for grandchildren counts too
    burn = sh("python3 -c 'import time; t = time.process_time()\nwhile time.process_time() - t < 0.3: pass'")
    rc, text, runner = run(tmp_path, [], stage_list=[Stage("burn", "burns CPU", burn),
                                                     Stage("idle", "sleeps", sh("sleep 0.3"))])
    assert rc == 0
    assert runner.cpu["burn"] >= 0.25
    assert runner.cpu["idle"] < 0.2
    header = text.split("==================== summary ====================")[1].splitlines()[1]
    assert header.split() == ["stage", "result", "seconds", "cpu", "detail"]
    burn_row = [line for line in text.splitlines() if line.startswith("burn ")][-1].split()
    assert burn_row[1] == "PASS" and float(burn_row[3]) >= 0.25 and float(burn_row[3]) <= float(burn_row[2]) + 0.5
    total = [line for line in text.splitlines() if line.startswith("total: ")][0]
    assert re.match(r"total: [0-9.]+s, [0-9.]+ CPU seconds; logs in ", total)
    assert float(total.split(", ")[1].split()[0]) >= 0.25


def test_a_stage_runs_its_commands_at_its_declared_niceness(tmp_path):
    # nice(1) without arguments prints the niceness it runs at
    base = os.nice(0)
    rc, text, dummy = run(tmp_path, [], stage_list=[Stage("low", "lower priority", sh("nice"), nice=3),
                                                    Stage("plain", "as started", sh("nice"))])
    assert rc == 0
    assert (tmp_path / "logs" / "low.log").read_text().splitlines()[1:] == [str(base + 3)]
    assert (tmp_path / "logs" / "plain.log").read_text().splitlines()[1:] == [str(base)]


def test_declared_guest_priorities():
    # qemu guests yield to the foreground; User-mode Linux guests, whose every
    # system call is a ptrace round trip, are not put behind it (see STAGES)
    for s in stages.STAGES:
        script_path = s.describe.split()[0]
        if script_path.startswith("tests/uml/"):
            assert s.nice == stages.UML_NICE >= 0, s.name
        elif script_path.startswith("tests/vm/"):
            assert s.nice == stages.QEMU_NICE > 0, s.name
        else:
            assert s.nice == 0, s.name


def test_the_runner_gives_its_stages_the_bytecode_caches_outside_the_tree(tmp_path):
    # the hook itself: tests/harness/test_bytecode_cache.py
    runner = stages.Runner(stages=[], repo=str(tmp_path), logs=str(tmp_path), environ={})
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": "/elsewhere"}
    runner.bytecode_caches(env)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == os.path.join(str(tmp_path), ".cache", "pycache")
    assert env["PITCOPY_ZIPIMPORT_CACHE"] == os.path.join(str(tmp_path), ".cache", "zipimport")
    assert env["PYTHONPATH"].split(os.pathsep) == [os.path.join(str(tmp_path), "tests", "bytecode-cache"), "/elsewhere"]
