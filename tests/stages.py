# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test stages of pitcopy.versions, declared; and the runner behind THE
test command, ``tests/run.sh`` (README, .ci/run).

    tests/run.sh                 # set-up, then every default stage, in order
    tests/run.sh unit sanity     # set-up, then only these stages
    tests/run.sh all             # the opt-in stages too
    tests/run.sh --list          # the stages and what each runs

Each stage's output goes to tests/output/logs/<stage>.log; a failing stage
shows its last lines. Every stage runs even after a failure; the exit status
is non-zero when any stage failed, and the last line says "N passed, N
failed" (set-up counts as a stage: it can fail like any other). A stage whose
script or tests do not exist yet FAILS as "missing": nothing is skipped
silently. An opt-in stage that was not asked for is listed as NOT RUN, never
as passed.

A stage is one line of ``STAGES`` below: name, what it runs (shown by
--list), its body, and whether it is opt-in or runs in the background. Only
the standard library is used: this file runs before the set-up made the venv.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Missing(Exception):
    """A stage's script or tests do not exist (yet): the stage FAILS as missing."""


class Failed(Exception):
    """A stage body found a failure of its own (not a command's exit status)."""


class Stage:
    """One declared stage. ``body(ctx)`` returns an exit status (0 = pass) or
    raises Missing/Failed. ``background``: started right away beside the other
    stages (it keeps about one core busy in a guest) and collected at its place
    in the order. ``opt_in``: only when named (or ``all``)."""

    def __init__(self, name, describe, body, opt_in=False, background=False, groups=(), nice=0):
        self.name, self.describe, self.body = name, describe, body
        self.opt_in, self.background, self.groups = opt_in, background, tuple(groups)
        # The stage's commands run at this niceness (nice(1)); see STAGES for why.
        self.nice = int(nice)


class Context:
    """What a stage body may use: the repository, the environment, its log."""

    def __init__(self, runner, stage, log):
        self.runner, self.stage, self.log = runner, stage, log
        self.repo = runner.repo
        self.cpu = 0.0  # CPU seconds (user + system) of the commands run, their waited-for children included

    def say(self, text):
        self.log.write(text + "\n")
        self.log.flush()

    def path(self, rel):
        return os.path.join(self.repo, rel)

    def need_exec(self, rel):
        if not os.access(self.path(rel), os.X_OK) or not os.path.isfile(self.path(rel)):
            raise Missing("%s does not exist (or is not executable)" % rel)

    def need_glob(self, pattern, why):
        if not glob.glob(self.path(pattern)):
            raise Missing(why)

    def run(self, argv, env=None, cwd=None, log=None):
        """Run argv (never through a shell), its output into the log, at the
        stage's niceness; adds the command's CPU time to ``cpu``."""
        self.log.flush()
        full_env = dict(os.environ)
        full_env.update(env or {})
        out = log or self.log
        if self.stage.nice:
            # coreutils nice: a negative niceness needs root; without it nice
            # warns and runs the command unchanged.
            argv = ["nice", "-n", str(self.stage.nice)] + list(argv)
        with self.runner.child(argv, cwd=cwd or self.repo, env=full_env, stdin=subprocess.DEVNULL,
                               stdout=out, stderr=subprocess.STDOUT) as proc:
            # wait4 rather than wait: the rusage is where a stage's CPU time
            # comes from (issue 13: where CI's two cores go).
            dummy, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            self.cpu += usage.ru_utime + usage.ru_stime
            return proc.returncode

    def log_text(self):
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()


# --- stage bodies --------------------------------------------------------------

def script(rel, *args):
    """A stage that runs one of the repository's scripts; it must exist."""
    def body(ctx):
        ctx.need_exec(rel)
        return ctx.run([ctx.path(rel)] + list(args))
    return body


def pytest(*args):
    """pytest with the collection tree on PYTHONPATH, as ansible-test units has it."""
    def body(ctx):
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [ctx.runner.coll_link_root, os.environ.get("PYTHONPATH")]))}
        return ctx.run(["python", "-m", "pytest", "-c", ctx.path("pytest.ini"), "--rootdir", ctx.repo] + list(args),
                       env=env)
    return body


def unit(ctx):
    if not os.path.isdir(ctx.path("tests/unit")):
        raise Missing("tests/unit does not exist")
    # tests/unit is what `ansible-test units` collects: when the units stage
    # runs in the same run (the default run, CI) it runs them, and running
    # them here as well would cost CI three minutes of a core for nothing.
    # Alone (`tests/run.sh unit`, the developer's fast tier) all three run.
    if any(s.name == "units" for s in ctx.runner.selected):
        ctx.say("tests/unit: run by the units stage (ansible-test units) in this run; here tests/roles tests/harness")
        return pytest("tests/roles", "tests/harness")(ctx)
    return pytest("tests/unit", "tests/roles", "tests/harness")(ctx)


def btrfs(ctx):
    ctx.need_glob("tests/real/test_btrfs*.py", "tests/real/test_btrfs*.py do not exist")
    return pytest("tests/real", "-m", "btrfs")(ctx)


def ansible_test(ctx, *args):
    # ansible-test resolves the current directory, so it must run inside the
    # copy that tests/setup.sh keeps.
    rc = ctx.run(["ansible-test"] + list(args), cwd=ctx.runner.coll_copy)
    if rc:
        return rc
    text = ctx.log_text()
    # It exits 0 when it found nothing to test; that is no pass.
    if "All targets skipped" in text:
        raise Failed("ansible-test found no targets in %s" % ctx.runner.coll_copy)
    # A sanity test whose tool is missing is skipped with only a warning.
    if re.search(r"WARNING: Required program .* not found", text):
        raise Failed("a tool ansible-test needs is missing (see 'Required program' above;"
                     " add it to APT_PACKAGES in tests/setup.sh)")
    return 0


def sanity(ctx):
    # The project allows no sanity ignore entries at all.
    bad = 0
    for path in sorted(glob.glob(ctx.path("tests/sanity/ignore-*.txt"))):
        with open(path) as f:
            entries = ["%d:%s" % (i, line.rstrip("\n")) for i, line in enumerate(f, 1)
                       if line.strip() and not line.strip().startswith("#")]
        if entries:
            ctx.say("FAIL: %s has ignore entries; fix the code instead:" % os.path.relpath(path, ctx.repo))
            ctx.say("\n".join(entries))
            bad = 1
    return ansible_test(ctx, "sanity", "--venv", "--python", "3.11", "--color", "no") or bad


def units(ctx):
    if not os.path.isdir(ctx.path("tests/unit")):
        raise Missing("tests/unit does not exist")
    return ansible_test(ctx, "units", "--venv", "--python", "3.11", "--color", "no")


def build(ctx):
    out = ctx.path("tests/output/build")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    rc = ctx.run(["ansible-galaxy", "collection", "build", "--force", "--output-path", out, ctx.repo])
    if rc:
        return rc
    tarballs = glob.glob(os.path.join(out, "pitcopy-versions-*.tar.gz"))
    if len(tarballs) != 1:
        raise Failed("expected one pitcopy-versions-*.tar.gz in %s, found %s" % (out, tarballs))
    ctx.say("%s %d bytes" % (tarballs[0], os.path.getsize(tarballs[0])))
    # build_ignore must keep the venv, caches and test output out of a release.
    with tarfile.open(tarballs[0]) as tar:
        leaked = [n for n in tar.getnames() if re.match(r"(\.venv|\.cache|\.git|tests/output)/", n)]
    if leaked:
        raise Failed("the collection tarball contains:\n" + "\n".join(leaked))
    return 0


def lint(ctx):
    ctx.need_glob("roles/*/tasks/main.yml", "no role in roles/ (roles/<name>/tasks/main.yml)")
    ctx.need_glob("playbooks/*.yml", "no playbook in playbooks/")
    return ctx.run(["ansible-lint", "--offline", "--nocolor", "--profile", "production", "roles", "playbooks"],
                   env={"ANSIBLE_COLLECTIONS_PATH": ctx.runner.coll_link_root})


def ee(ctx):
    if not os.path.isfile(ctx.path("execution-environment.yml")):
        raise Missing("execution-environment.yml does not exist")
    # ansible-builder create on a copy, then what AWX needs in the context
    return script("tests/ee-check.sh")(ctx)


def command(*argv):
    def body(ctx):
        return ctx.run(list(argv))
    return body


# --- the stages, in their order --------------------------------------------------
# LVM runs in a User-mode Linux guest (tests/uml/guest.py): real device-mapper
# at native speed; the backend tests and the module playbooks (ansible-playbook
# in the guest, connection local) in one boot. vm-lvm-molecule: the LVM
# molecule scenarios in that guest (molecule in the guest, the guest itself the
# managed host); opt-in until a run has passed them end to end and measured
# their time on a quiet machine (the one attempt, on a host loaded by other
# runs, stopped after the first converge). The other VM stages
# are one qemu boot each: the backend tests in the guest, the playbooks and
# molecule scenarios here with the guest as their managed host.
# The VM stages start in the background right away (each keeps about one core
# busy whatever it is given) and run beside each other and the native stages.
# ZFS takes two guests: in one boot its backend tests and playbooks took
# ~59 min, the run's long path, while the machine's cores were not the limit
# of any single stage; split, each half is shorter than the native stages.
# vm-molecule: the ZFS molecule scenarios (they need the OpenZFS module, so the
# emulated qemu guest: the role runs six times at ~7-15 s per module task,
# ~37 min), which does not fit in CI's 90 minutes beside the rest.
# vm-lvm-grid, vm-zfs-grid: grid retention (tests/real/test_grid.py) through
# 72 hourly copies on every LVM and ZFS technology (measured on a loaded
# machine: lvm_thin 206 s, lvm_snapshot 598 s in UML; zfs_snapshot 859 s,
# zfs_send 682 s in qemu); vm-lvm and vm-zfs run lvm_thin and zfs_snapshot
# through the 7 copies of the grid's events, and btrfs the 72 natively.
# vm-btrfs repeats the btrfs backend tests on the guest's kernel (~20 min of
# emulation); the btrfs stage runs them natively in every run.

# Priorities (issue 13): CI's two cores are the limit, and the guests took
# them from the foreground stages (sanity ran 6x slower than alone, the btrfs
# stage 5x: 1,699 s in CI, 342 s on a quiet machine). A qemu guest is pure
# throughput (software emulation keeps a core busy whatever it is given), so
# it runs at a lower priority and fills what the foreground leaves. The
# User-mode Linux guest waits for a time slice at every system call (a ptrace
# round trip between host processes), so it is not put behind the
# foreground; it was put ahead of it (nice -5) once, and then the foreground
# stages were the run's long path (3,598 s of 3,612 s) while the UML stage
# ended ~950 s before them: it shares with the foreground as an equal.
QEMU_NICE = 5
UML_NICE = 0


def guest_stage(name, guest, tech, parts, *pytest_args, what, opt_in=False):
    """A stage that boots one guest (``guest``: "uml", tests/uml, or "vm",
    the qemu guest of tests/vm) and runs ``run-suite.sh <tech>`` in it: the
    ``parts`` given (None: the script's default) and ``pytest_args`` after
    ``--``. It starts in the background at its guest's priority; its
    description is the command itself, then ``what``."""
    argv = [tech] + (["--parts", parts] if parts else []) + (["--"] + list(pytest_args) if pytest_args else [])
    rel = "tests/%s/run-suite.sh" % guest
    return Stage(name, "%s %s (%s)" % (rel, " ".join(argv), what), script(rel, *argv), opt_in=opt_in,
                 background=True, groups=["vm"], nice=UML_NICE if guest == "uml" else QEMU_NICE)


STAGES = [
    Stage("unit", "pytest tests/unit tests/roles tests/harness (collection tree on PYTHONPATH; tests/unit left to"
          " the units stage when it runs too)", unit),
    Stage("sanity", "ansible-test sanity --venv --python 3.11", sanity),
    Stage("units", "ansible-test units --venv --python 3.11", units),
    Stage("btrfs", "pytest tests/real -m btrfs (native loop devices; with the playbooks run as AWX jobs through"
          " ansible-runner)", btrfs),
    Stage("integration", "tests/integration/run.sh btrfs (playbooks, native btrfs)",
          script("tests/integration/run.sh", "btrfs")),
    Stage("molecule", "tests/molecule.sh btrfs (molecule scenarios, native btrfs)", script("tests/molecule.sh", "btrfs")),
    guest_stage("vm-lvm", "uml", "lvm", "real,integration", what="one User-mode Linux boot: pytest -m lvm, the"
                " fault suite at its sampled kill points included; module playbooks"),
    guest_stage("vm-lvm-faults", "uml", "lvm", "real", "-m", "lvm_faults", "--pitcopy-faults=all", opt_in=True,
                what="one User-mode Linux boot: the LVM fault-injection suite at every kill point"),
    guest_stage("vm-lvm-grid", "uml", "lvm", "real", "-k", "test_grid", "--pitcopy-grid=full", opt_in=True,
                what="one User-mode Linux boot: grid retention through 72 hourly copies on lvm_thin and lvm_snapshot"),
    guest_stage("vm-lvm-molecule", "uml", "lvm", "molecule", opt_in=True,
                what="one User-mode Linux boot: the LVM molecule scenarios"),
    guest_stage("vm-zfs", "vm", "zfs", "real", what="one VM boot: pytest -m zfs"),
    guest_stage("vm-zfs-faults", "vm", "zfs", "real", "-m", "zfs_faults", "--pitcopy-faults=all", opt_in=True,
                what="one VM boot: the ZFS fault-injection suite at every kill point"),
    guest_stage("vm-zfs-playbooks", "vm", "zfs", "integration",
                what="a second VM boot beside vm-zfs: the module playbooks with the guest as managed host"),
    guest_stage("vm-zfs-grid", "vm", "zfs", "real", "-k", "test_grid", "--pitcopy-grid=full", opt_in=True,
                what="one VM boot: grid retention through 72 hourly copies on zfs_snapshot and zfs_send"),
    guest_stage("vm-molecule", "vm", "zfs", "molecule", opt_in=True,
                what="one VM boot: the ZFS molecule scenarios"),
    guest_stage("vm-btrfs", "vm", "btrfs", None, opt_in=True,
                what="one VM boot: pytest -m btrfs on the guest's kernel"),
    Stage("build", "ansible-galaxy collection build", build, groups=["package"]),
    Stage("lint", "ansible-lint --profile production roles playbooks", lint, groups=["package"]),
    Stage("changelog", "antsibull-changelog lint", command("antsibull-changelog", "lint"), groups=["package"]),
    Stage("ee", "tests/ee-check.sh (ansible-builder create, then the build context checked)", ee, groups=["package"]),
]


def setup(ctx):
    # The VM harness set-up (kernel, dkms-built zfs module) is only needed by
    # the VM stages; skip its cost when none is selected.
    vm = any(s.name.startswith("vm-") for s in ctx.runner.selected)
    return ctx.run([ctx.path("tests/setup.sh")] + ([] if vm else ["--no-vm"]))


SETUP = Stage("setup", "set-up (tests/setup.sh)", setup)


# --- the runner ------------------------------------------------------------------

class Usage(Exception):
    pass


def detail_of(text):
    """One line for the summary: pytest's closing line(s), or ansible-test
    sanity's count of tests, from a stage's log."""
    # ansible-test units runs pytest once per group (modules, module_utils).
    closing = [re.sub(r" =+$", "", re.sub(r"^=+ ", "", line)) for line in text.splitlines()
               if re.match(r"^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s.*=+$", line)]
    if closing:
        return "; ".join(closing)
    found = re.findall(r"The [0-9]+ sanity test\(s\) listed below \(out of [0-9]+\) failed", text)
    if found:
        listed = re.search(r"sanity test\(s\) listed below[^\n]*\n(.*?)\nFATAL: Command", text, re.S)
        names = " ".join(listed.group(1).split("\n")) if listed else ""
        return ("%s: %s" % (found[-1], names))[:160]
    n = len(re.findall(r"^Running sanity test", text, re.M))
    return "%d sanity tests ran" % n if n else ""


class Runner:
    """Runs the selected stages of ``stages`` after ``setup``; ``out`` gets the
    progress and the summary, ``logs`` the stage logs."""

    def __init__(self, stages=None, setup_stage=None, repo=REPO, logs=None, out=None, tail_lines=None,
                 serial=None, environ=None):
        self.stages = list(STAGES if stages is None else stages)
        self.setup = SETUP if setup_stage is None else setup_stage
        self.repo = repo
        self.logs = logs or os.path.join(repo, "tests", "output", "logs")
        self.out = out or sys.stdout
        env = os.environ if environ is None else environ
        self.tail_lines = int(tail_lines or env.get("PITCOPY_TAIL_LINES", 40))
        self.serial = env.get("PITCOPY_SERIAL", "0") == "1" if serial is None else serial
        # Outside the checkout on purpose: inside it, ansible-test would find
        # the checkout's .git and list only files git knows (none under .cache/).
        self.coll_copy_root = env.get("PITCOPY_COLL_COPY_ROOT") or os.path.join(
            os.path.expanduser("~"), ".cache", "pitcopy", "coll-" + hashlib.sha256(repo.encode()).hexdigest()[:12])
        self.coll_copy = os.path.join(self.coll_copy_root, "ansible_collections", "pitcopy", "versions")
        self.coll_link_root = os.path.join(repo, ".cache", "coll-link")
        self.selected = []
        self.results = {}  # name -> (result, seconds, cpu seconds, detail)
        self.cpu = {}  # name -> CPU seconds of the stage's commands
        self._children = set()
        self._lock = threading.Lock()

    # -- children: tracked so that an interrupted run stops what it started
    def child(self, argv, **kw):
        runner = self

        class Tracked(subprocess.Popen):
            def __exit__(self, *exc):
                try:
                    return super().__exit__(*exc)
                finally:
                    with runner._lock:
                        runner._children.discard(self)
        proc = Tracked(argv, **kw)
        with self._lock:
            self._children.add(proc)
        return proc

    def stop_children(self):
        with self._lock:
            for proc in list(self._children):
                if proc.poll() is None:
                    proc.terminate()

    # -- selection
    def opt_in(self):
        return [s.name for s in self.stages if s.opt_in]

    def usage(self):
        lines = ["usage: tests/run.sh [--list] [STAGE...]",
                 "stages (default: all but %s, in this order):" % " ".join(self.opt_in())]
        lines += ["  %-12s %s" % (s.name, s.describe) for s in self.stages]
        groups = {}
        for s in self.stages:
            for g in s.groups:
                groups.setdefault(g, []).append(s.name)
        lines.append("aliases: " + "; ".join("%s = %s" % (g, " ".join(n)) for g, n in groups.items()))
        return "\n".join(lines) + "\n"

    def select(self, args):
        """The stages ARGS name (or the default ones), each once, in the
        declared order. Raises Usage for an unknown name."""
        wanted = set()
        for arg in args:
            named = [s.name for s in self.stages if arg == "all" or arg == s.name or arg in s.groups]
            if not named:
                raise Usage("tests/run.sh: unknown stage '%s'" % arg)
            wanted.update(named)
        if not args:
            wanted = set(s.name for s in self.stages if not s.opt_in)
        self.selected = [s for s in self.stages if s.name in wanted]
        return self.selected

    # -- running
    def emit(self, text=""):
        self.out.write(text + "\n")
        self.out.flush()

    def execute(self, stage, background=False):
        """Run one stage's body into its log; returns (rc, end time)."""
        path = os.path.join(self.logs, stage.name + ".log")
        with open(path, "w") as log:
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            log.write("# %s stage %s%s\n" % (now, stage.name, " (background)" if background else ""))
            log.flush()
            ctx = Context(self, stage, log)
            try:
                rc = stage.body(ctx)
            except Missing as exc:
                ctx.say("MISSING: %s" % exc)
                rc = ("missing", str(exc))
            except Failed as exc:
                ctx.say("FAIL: %s" % exc)
                rc = 1
            except Exception as exc:  # pylint: disable=broad-except
                # a bug in a stage body fails that stage, not the run
                ctx.say("FAIL: the stage body raised %r" % exc)
                rc = 125
            self.cpu[stage.name] = ctx.cpu
        return rc, time.time()

    def finish(self, stage, rc, start, end):
        path = os.path.join(self.logs, stage.name + ".log")
        with open(path, errors="replace") as f:
            text = f.read()
        missing = isinstance(rc, tuple)
        if rc == 0:
            result = "PASS"
        else:
            result = "MISSING" if missing else "FAIL"
            self.emit("---- %s failed (rc=%s); last %d lines of %s:"
                      % (stage.name, 3 if missing else rc, self.tail_lines, path))
            for line in text.splitlines()[-self.tail_lines:]:
                self.emit("    " + line)
            self.emit("----")
        seconds = "%.1f" % (end - start)
        cpu = "%.1f" % self.cpu.get(stage.name, 0.0)
        self.results[stage.name] = (result, seconds, cpu, rc[1] if missing else detail_of(text))
        self.emit("    %s in %ss" % (result, seconds))
        return rc == 0

    def run_stage(self, stage):
        self.emit("==> %-12s %s" % (stage.name, stage.describe))
        start = time.time()
        rc, end = self.execute(stage)
        return self.finish(stage, rc, start, end)

    def environment(self):
        venv = os.path.join(self.repo, ".venv")
        os.environ["PATH"] = os.path.join(venv, "bin") + os.pathsep + os.environ.get("PATH", "")
        os.environ.update({
            "VIRTUAL_ENV": venv,
            # Playbooks, molecule and the VM suites find the collection here.
            "ANSIBLE_COLLECTIONS_PATH": self.coll_link_root,
            "PITCOPY_REPO": self.repo, "PITCOPY_COLLECTION_ROOT": self.coll_link_root,
            # Plain logs: no colour escapes from ansible, pytest or ansible-lint.
            "NO_COLOR": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0",
        })
        self.bytecode_caches(os.environ)

    def bytecode_caches(self, env):
        """Bytecode kept between Python starts, outside the tree: the stages
        start Python thousands of times (fault-injection children, module
        tasks), and without a cache each compiles its imports again, CPU the
        guests beside them need. Module tasks import from AnsiballZ zips,
        which Python never caches; tests/bytecode-cache does (only for the
        processes of this run)."""
        cache = os.path.join(self.repo, ".cache")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.join(cache, "pycache")
        env["PITCOPY_ZIPIMPORT_CACHE"] = os.path.join(cache, "zipimport")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [
            os.path.join(self.repo, "tests", "bytecode-cache"), env.get("PYTHONPATH")]))

    def main(self, args, environment=True):
        if any(a in ("-h", "--help", "--list") for a in args):
            self.out.write(self.usage())
            return 0
        try:
            self.select(args)
        except Usage as exc:
            sys.stderr.write("%s\n%s" % (exc, self.usage()))
            return 2
        os.makedirs(self.logs, exist_ok=True)
        run_start = time.time()
        try:
            self.run_all(environment)
        finally:
            self.stop_children()
        return self.summary(run_start)

    def run_all(self, environment):
        if not self.run_stage(self.setup):
            self.emit("set-up failed; no stage can run. See %s" % os.path.join(self.logs, "setup.log"))
            for s in self.selected:
                self.results[s.name] = ("NOT RUN", "0.0", "0.0", "set-up failed")
            return
        if environment:
            self.environment()
        background = {}
        if not self.serial:
            for s in self.selected:
                if not s.background:
                    continue
                self.emit("==> %-12s started in the background: %s" % (s.name, s.describe))
                slot = {"start": time.time()}
                slot["thread"] = threading.Thread(target=self._background, args=(s, slot), daemon=True)
                slot["thread"].start()
                background[s.name] = slot
        for s in self.selected:
            slot = background.get(s.name)
            if slot is None:
                self.run_stage(s)
                continue
            self.emit("==> %-12s %s (waiting for the background run)" % (s.name, s.describe))
            slot["thread"].join()
            # its own time, not the time until it was collected
            self.finish(s, slot.get("rc", 125), slot["start"], slot.get("end", time.time()))

    def _background(self, stage, slot):
        slot["rc"], slot["end"] = self.execute(stage, background=True)

    def summary(self, run_start):
        self.emit()
        self.emit("==================== summary ====================")
        # cpu: CPU seconds of the stage's commands (user + system, children
        # included); beside the wall-clock seconds it shows which stage holds
        # the machine's cores and which one only waits for them.
        row = "%-12s %-8s %8s %8s  %s"
        self.emit(row % ("stage", "result", "seconds", "cpu", "detail"))
        for s in [self.setup] + self.selected:
            self.emit((row % ((s.name,) + self.results.get(s.name, ("", "", "", "")))).rstrip())
        for s in self.stages:
            if s not in self.selected:
                self.emit(row % (s.name, "NOT RUN", "", "", "not in this run (tests/run.sh %s)" % s.name))
        total_cpu = sum(self.cpu.values())
        self.emit("total: %.1fs, %.1f CPU seconds; logs in %s/"
                  % (time.time() - run_start, total_cpu, os.path.relpath(self.logs, self.repo)))
        passed = sum(1 for r in self.results.values() if r[0] == "PASS")
        failed = len(self.results) - passed
        self.emit("%d passed, %d failed" % (passed, failed))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(Runner().main(sys.argv[1:]))
