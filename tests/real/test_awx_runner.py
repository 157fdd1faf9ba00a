# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation and restore playbooks run the way AWX runs them, on real
btrfs filesystems on loop devices (native; no VM).

AWX does not call ansible-playbook itself: for each job it lays out a
private data directory and hands it to ansible-runner
(``ansible_runner.interface.run``), reading the job's events back through an
event handler. This module does the same:

- ``project/``: the project checkout (here the collection's ``playbooks/``,
  which use only FQCNs; the collection itself comes from the execution
  environment, here ANSIBLE_COLLECTIONS_PATH);
- ``inventory/hosts``: the inventory with the copy pools as host variables,
  as docs/awx.md's inventory section has them;
- ``env/extravars``: the survey answers, ALL strings, as an AWX survey's
  text and multiple-choice fields send them (booleans "true"/"false",
  numbers "1", lists comma-separated), plus the ``awx_*`` variables AWX
  adds to every job;
- ``env/envvars``, ``env/settings``; the job's command line as AWX builds it
  (``--check`` for a job of type check, ``-u``, ``-l`` for a limit), passed
  as ansible-runner's ``cmdline``.

What is asserted is what an operator reading the job in AWX relies on: the
job's status and return code, the events (task results, the failure
message), the storage and the records on the host before and after.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.btrfs

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "storage1"
GROUP = "storage"
DAY1, DAY2 = "2026-11-25", "2026-11-26"


def _runner():
    """ansible-runner is part of the test tooling (requirements/test.txt):
    missing, the test FAILS saying so, it does not skip."""
    try:
        import ansible_runner as mod
        from ansible_runner.utils import args2cmdline
    except ImportError as exc:
        pytest.fail("ansible-runner is not installed (%s); run tests/setup.sh (requirements/test.txt)" % exc,
                    pytrace=False)
    return mod, args2cmdline


def _collections_path():
    """Where the collection is found as ansible_collections/pitcopy/versions
    (tests/run.sh exports it; otherwise the tree tests/setup.sh builds)."""
    for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) + [
            os.path.join(REPO, ".cache", "coll-link")]:
        if path and os.path.isdir(os.path.join(path, "ansible_collections", "pitcopy", "versions")):
            return os.path.abspath(path)
    pytest.fail("no collection tree found (ANSIBLE_COLLECTIONS_PATH or .cache/coll-link); "
                "run tests/setup.sh --sync-only", pytrace=False)


class AwxSite:
    """One managed host (this machine, connection local) with copy pools on a
    real btrfs filesystem, and a job launcher that lays out each job's
    private data directory the way AWX does."""

    def __init__(self, workdir, fs):
        self.workdir = workdir
        self.fs = fs
        self.src = fs.path("src")
        self.state_dir = os.path.join(workdir, "state")
        self.ledger_dir = os.path.join(workdir, "restores")
        self.jobs = 0
        os.makedirs(self.src)
        for s in ("a", "b"):
            subprocess.check_call(["btrfs", "-q", "subvolume", "create", os.path.join(self.src, s)])
            self.write(s, "%s one" % s)
        self.pools = [
            {"name": "keep", "technology": "btrfs_snapshot", "versions": 2, "every": "day",
             "sources": [os.path.join(self.src, "a"), os.path.join(self.src, "b")]},
            {"name": "solo", "technology": "btrfs_snapshot", "versions": 3, "every": "day",
             "sources": [os.path.join(self.src, "b")]},
        ]

    def write(self, source, text):
        with open(os.path.join(self.src, source, "data"), "w") as fh:
            fh.write(text + "\n")

    def read(self, source):
        with open(os.path.join(self.src, source, "data")) as fh:
            return fh.read().strip()

    def records(self, pool):
        """The pool's replication records from its state file (docs/state-file.md)."""
        path = os.path.join(self.state_dir, "%s.yml" % pool)
        if not os.path.exists(path):
            return []
        with open(path) as fh:
            return yaml.safe_load(fh)["replication_records"]

    def fingerprint(self):
        """Every subvolume on the filesystem and every file of the records,
        the restore ledger and the sources, with a hash of its bytes: what
        check mode must leave exactly as it was. Lock files are left out
        (taking a pool's lock is no change), as in the molecule scenarios'
        snapshot_host.yml."""
        out = subprocess.run(["btrfs", "subvolume", "list", "-o", self.fs.mountpoint], check=True,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout
        subvols = sorted(line.split(" path ", 1)[1] for line in out.splitlines() if " path " in line)
        files = {}
        for top in (self.state_dir, self.ledger_dir, self.src):
            for root, dirs, names in os.walk(top):
                dirs.sort()
                for name in sorted(names):
                    if name.startswith(".") and name.endswith(".lock"):
                        continue
                    p = os.path.join(root, name)
                    with open(p, "rb") as fh:
                        files[p] = hashlib.sha256(fh.read()).hexdigest()
        return subvols, files

    def job(self, playbook, survey, job_type="run", limit=None):
        """Launches one job like AWX's RunJob and returns the finished
        ansible-runner Runner (``status``, ``rc``, ``events``, ``stats``,
        ``config.command``)."""
        runner, args2cmdline = _runner()
        self.jobs += 1
        job_id = self.jobs
        pdd = os.path.join(self.workdir, "job-%d" % job_id)
        # the project: AWX copies the project's checkout into the private data directory
        shutil.copytree(os.path.join(REPO, "playbooks"), os.path.join(pdd, "project", "playbooks"))
        os.makedirs(os.path.join(pdd, "inventory"))
        os.makedirs(os.path.join(pdd, "env"))
        inventory = {"all": {"children": {GROUP: {"hosts": {HOST: {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "rotation_pools": self.pools,
        }}}}}}
        with open(os.path.join(pdd, "inventory", "hosts"), "w") as fh:
            yaml.safe_dump(inventory, fh)
        for value in survey.values():
            assert isinstance(value, str), "survey answers are strings, as AWX sends them: %r" % (survey,)
        extravars = dict(survey, awx_job_id=job_id, awx_job_template_name="pitcopy %s" % playbook,
                         awx_job_launch_type="manual", awx_user_name="operator")
        with open(os.path.join(pdd, "env", "extravars"), "w") as fh:
            json.dump(extravars, fh)
        envvars = {
            "ANSIBLE_COLLECTIONS_PATH": _collections_path(),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_HOME": os.path.join(pdd, "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": os.path.join(pdd, "tmp"),
            "ANSIBLE_REMOTE_TEMP": os.path.join(pdd, "tmp"),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "PATH": os.pathsep.join((os.path.dirname(sys.executable), os.environ.get("PATH", ""),
                                     "/usr/local/sbin", "/usr/sbin", "/sbin")),
            "LC_ALL": "C.UTF-8",
        }
        with open(os.path.join(pdd, "env", "envvars"), "w") as fh:
            json.dump(envvars, fh)
        with open(os.path.join(pdd, "env", "settings"), "w") as fh:
            json.dump({"job_timeout": 600, "idle_timeout": 0, "pexpect_timeout": 5,
                       "suppress_ansible_output": True}, fh)
        # AWX's RunJob.build_args: --check for a check job, the SSH user, the limit
        args = (["--check"] if job_type == "check" else []) + ["-u", "root"]
        if limit:
            args += ["-l", limit]
        events = []

        def on_event(event):
            events.append(event)
            return True

        result = runner.run(private_data_dir=pdd, playbook=os.path.join("playbooks", playbook),
                            ident=str(job_id), cmdline=args2cmdline(*args), event_handler=on_event,
                            quiet=True)
        result.job_events = events
        with open(os.path.join(pdd, "artifacts", str(job_id), "stdout")) as fh:
            result.job_stdout = fh.read()
        return result


def host_stats(result):
    """The play recap of the host: {'ok': n, 'changed': n, 'failures': n, ...}."""
    return {k: v.get(HOST, 0) for k, v in (result.stats or {}).items() if isinstance(v, dict)}


def assert_successful(result, what):
    assert (result.status, result.rc) == ("successful", 0), \
        "%s: job %s (rc %s); its output:\n%s" % (what, result.status, result.rc, result.job_stdout[-6000:])


def failed_messages(result):
    return [e["event_data"]["res"].get("msg", "") for e in result.job_events
            if e.get("event") == "runner_on_failed" and "res" in e.get("event_data", {})]


ROTATE = {
    "pitcopy_hosts": GROUP,
    "rotation_date": DAY1,
    "rotation_only": "",
    "rotation_label": "",
    "rotation_repair": "false",
    "rotation_install_packages": "false",
    "rotation_prepair_versions": "1",
}


@pytest.fixture
def site(loopfs_factory, real_workdir):
    _runner()
    return AwxSite(real_workdir, loopfs_factory("btrfs", name="awx0"))


def test_rotate_check_job_then_run_jobs(site):
    """A check job predicts and changes nothing; the run job takes one
    version of each pool; a relaunch the same day takes nothing twice; a
    job restricted by a comma-separated survey field rotates only those
    pools."""
    survey = dict(ROTATE, rotation_state_dir=site.state_dir)
    before = site.fingerprint()

    check = site.job("rotate.yml", survey, job_type="check")
    assert_successful(check, "check job")
    assert "--check" in check.config.command
    assert site.fingerprint() == before, "a check job changed the storage or the records"
    assert site.records("keep") == [] and site.records("solo") == []

    run = site.job("rotate.yml", survey)
    assert_successful(run, "run job")
    assert "--check" not in run.config.command
    assert host_stats(run)["changed"] > 0
    for pool, sources in (("keep", ["a", "b"]), ("solo", ["b"])):
        records = site.records(pool)
        assert [(r["version"], r["status"]) for r in records] == [(1, "valid")], records
        pairs = records[0]["pairs"].splitlines()
        assert [p.split(" -> ")[0] for p in pairs] == [os.path.join(site.src, s) for s in sources]
        for p in pairs:
            target = p.split(" -> ")[1]
            with open(os.path.join(target, "data")) as fh:
                assert fh.read().strip() == "%s one" % os.path.basename(p.split(" -> ")[0])
    # the event stream AWX stores: the role's copy task reported a change on the host
    assert any(e.get("event") == "runner_on_ok" and e["event_data"].get("host") == HOST
               and e["event_data"].get("res", {}).get("changed") for e in run.job_events)

    after_run = site.fingerprint()
    again = site.job("rotate.yml", survey)
    assert_successful(again, "relaunch the same day")
    assert host_stats(again)["changed"] == 0, again.job_stdout[-4000:]
    assert [r["version"] for r in site.records("keep")] == [1]
    assert site.fingerprint() == after_run

    only = site.job("rotate.yml", dict(survey, rotation_date=DAY2, rotation_only=" solo ,"), limit=HOST)
    assert_successful(only, "rotation_only job")
    assert [r["version"] for r in site.records("solo")] == [1, 2]
    assert [r["version"] for r in site.records("keep")] == [1], "rotation_only 'solo' rotated 'keep' too"


def test_restore_jobs(site):
    """A restore job from survey strings: refused without the confirmation
    (a failed job naming the pool, nothing changed), a check job changes
    nothing, the run job brings version 1 back, and a relaunch with the same
    request id restores nothing again."""
    rotate = site.job("rotate.yml", dict(ROTATE, rotation_state_dir=site.state_dir))
    assert_successful(rotate, "rotation before the restore")
    site.write("a", "a two")
    site.write("b", "b two")
    restore = {
        "pitcopy_hosts": HOST,
        "restore_pool": "keep",
        "restore_version": "1",
        "restore_label": "",
        "restore_sources": "",
        "restore_confirm": "",
        "restore_request_id": "CHG-1001",
        "restore_allow_invalid": "false",
        "restore_state_dir": site.state_dir,
        "restore_ledger_dir": site.ledger_dir,
    }
    before = site.fingerprint()

    refused = site.job("restore.yml", restore)
    assert (refused.status, refused.rc) != ("successful", 0)
    assert refused.status == "failed"
    msgs = failed_messages(refused)
    assert any("Refusing to restore" in m and "keep" in m and "restore_confirm" in m for m in msgs), msgs
    assert site.fingerprint() == before, "a refused restore changed something"

    confirmed = dict(restore, restore_confirm="keep")
    check = site.job("restore.yml", confirmed, job_type="check")
    assert_successful(check, "restore check job")
    assert "--check" in check.config.command
    assert site.fingerprint() == before, "a restore check job changed something"
    assert (site.read("a"), site.read("b")) == ("a two", "b two")

    run = site.job("restore.yml", confirmed)
    assert_successful(run, "restore job")
    assert host_stats(run)["changed"] > 0
    assert (site.read("a"), site.read("b")) == ("a one", "b one")
    with open(os.path.join(site.ledger_dir, "keep.log")) as fh:
        assert fh.read().splitlines() == ["CHG-1001 version=1 volumes=all"]

    # the operator relaunches the job (same survey answers) after writing new data
    site.write("a", "a three")
    relaunch = site.job("restore.yml", confirmed)
    assert_successful(relaunch, "relaunched restore job")
    assert host_stats(relaunch)["changed"] == 0
    assert site.read("a") == "a three", "a relaunch with the same request id restored again"
    assert "already carried out" in relaunch.job_stdout

    # one source, chosen by a comma-separated survey field, under a new request id
    site.write("b", "b four")
    one = site.job("restore.yml", dict(confirmed, restore_sources=os.path.join(site.src, "a"),
                                       restore_request_id="CHG-1002"))
    assert_successful(one, "restore of one source")
    assert (site.read("a"), site.read("b")) == ("a one", "b four")
