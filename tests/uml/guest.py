# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throw-away User-mode Linux guest for the LVM tier (tests/uml/run-suite.sh).

Debian's ``user-mode-linux`` kernel (6.1um) runs real LVM with device-mapper
as ordinary host processes, where this host's kernel has no device-mapper and
cannot load modules. The guest's root is the host's ``/`` over hostfs,
read-only, with throw-away overlays (tests/uml/init.sh), so the checkout, its
venv and the host's tools are there under the same paths; one host directory,
the results directory, is mounted read-write. Modeled on snapm's
virt_tests/testvm.py: set-up, boot, run a command, collect, stop.

    python3 tests/uml/guest.py setup            # idempotent (tests/setup.sh)
    python3 tests/uml/guest.py run [--results DIR] [--timeout S] -- CMD...

What it took to boot here, measured, is in ../shared/notes/uml.md: the
ptrace wrapper for the XSAVE size (ptrace_xsave.c), pinning to one host CPU,
SIGTERM to the process group to stop, the exit status through a file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import hashlib
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LINUX = os.environ.get("PITCOPY_UML_LINUX", "/usr/bin/linux.uml")
MODULES = os.environ.get("PITCOPY_UML_MODULES", "/usr/lib/uml/modules")
INIT = os.path.join(HERE, "init.sh")
WRAPPER_SOURCE = os.path.join(HERE, "ptrace_xsave.c")
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "pitcopy", "uml")


class UmlError(Exception):
    """The guest could not be set up, booted or stopped as asked."""


def log(msg):
    print("[uml %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class UmlGuest:
    """One boot of the UML kernel running one command.

    ``results`` is a host directory the guest writes to (created; it must
    not contain whitespace or commas: it travels on the kernel command line
    and as a hostfs mount option). ``cpu`` is the one host CPU the guest is
    pinned to: unpinned, every guest system call is a cross-CPU ptrace round
    trip, about 4 times slower (UML is single-CPU anyway)."""

    def __init__(self, results, mem="3G", cpu=None, timeout=5400):
        self.results = os.path.abspath(results)
        if any(c.isspace() or c == "," for c in self.results):
            raise UmlError("results directory %r: whitespace and commas are not accepted "
                           "(it is passed on the UML kernel command line)" % self.results)
        self.mem = mem
        self.cpu = self.pick_cpu() if cpu is None else int(cpu)
        self.timeout = timeout
        self.proc = None
        self.wrapper = None
        self._started = None

    # --- set-up ---------------------------------------------------------------

    @staticmethod
    def setup():
        """Checks the UML kernel and its modules, builds the ptrace wrapper
        (cached by the hash of its source). Idempotent, no network. Returns
        the wrapper's path."""
        if not os.access(LINUX, os.X_OK):
            raise UmlError("%s is missing: install the Debian package user-mode-linux (tests/setup.sh does)" % LINUX)
        if not os.path.isdir(MODULES) or not os.listdir(MODULES):
            raise UmlError("%s is empty: the UML modules (device-mapper, loop, overlay) come with user-mode-linux" % MODULES)
        with open(WRAPPER_SOURCE, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        so = os.path.join(CACHE, "ptrace_xsave-%s.so" % digest)
        if os.path.exists(so):
            return so
        if not shutil.which("gcc"):
            raise UmlError("gcc is missing: it builds %s (install gcc and libc6-dev)" % WRAPPER_SOURCE)
        os.makedirs(CACHE, exist_ok=True)
        tmp = "%s.%d.tmp" % (so, os.getpid())
        subprocess.check_call(["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-o", tmp, WRAPPER_SOURCE, "-ldl"])
        os.replace(tmp, so)
        log("built the ptrace wrapper %s" % so)
        return so

    @staticmethod
    def pick_cpu():
        """PITCOPY_UML_CPU, else the last CPU this process may run on that
        no other running UML guest is pinned to: two guests pinned to one
        CPU (two suites, or two checkouts, at once) share it while the
        other CPU idles (seen here: one molecule converge of rotation_lvm
        took 25 min beside another guest on the same CPU)."""
        if os.environ.get("PITCOPY_UML_CPU"):
            return int(os.environ["PITCOPY_UML_CPU"])
        allowed = sorted(os.sched_getaffinity(0), reverse=True)
        taken = UmlGuest.pinned_cpus()
        for cpu in allowed:
            if cpu not in taken:
                return cpu
        return allowed[0]

    @staticmethod
    def pinned_cpus():
        """The CPUs that running UML kernels (any user's, any checkout's)
        are pinned to, each one alone in its affinity list."""
        taken = set()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % pid) as fh:
                    if fh.read().strip() != os.path.basename(LINUX)[:15]:  # comm is cut at 15
                        continue
                with open("/proc/%s/status" % pid) as fh:
                    for line in fh:
                        if line.startswith("Cpus_allowed_list:"):
                            cpus = line.split(":", 1)[1].strip()
                            if cpus.isdigit():
                                taken.add(int(cpus))
            except OSError:
                continue  # gone meanwhile, or not ours to read
        return taken

    # --- one run --------------------------------------------------------------

    def write_command(self, argv, cwd, env):
        """command.sh, run by init.sh in the guest: the environment a test
        there needs (the collection importable, Ansible's files under /tmp,
        the venv first on PATH), then argv, each word quoted."""
        venv = os.path.join(REPO, ".venv")
        lines = [
            "# written by tests/uml/guest.py",
            "export LC_ALL=C.UTF-8 HOME=/tmp/home PYTHONUNBUFFERED=1",
            # bytecode kept for this boot under /tmp, none beside the host's
            # sources; module zips' code cached too (tests/bytecode-cache)
            "unset PYTHONDONTWRITEBYTECODE",
            "export PYTHONPYCACHEPREFIX=/tmp/pitcopy-pycache PITCOPY_ZIPIMPORT_CACHE=/tmp/pitcopy-zipimport-cache",
            "export LVM_SUPPRESS_FD_WARNINGS=1 PITCOPY_VM=1 PITCOPY_UML=1",
            "export PITCOPY_VM_RESULTS=%s" % shlex.quote(self.results),
            "mkdir -p /tmp/home /tmp/coll/ansible_collections/pitcopy",
            "ln -sfn %s /tmp/coll/ansible_collections/pitcopy/versions" % shlex.quote(REPO),
            "export PYTHONPATH=/tmp/coll:%s ANSIBLE_COLLECTIONS_PATH=/tmp/coll" % shlex.quote(
                os.path.join(REPO, "tests", "bytecode-cache")),
            "export ANSIBLE_LOCAL_TEMP=/tmp/home/.ansible/tmp ANSIBLE_REMOTE_TMP=/tmp/home/.ansible/tmp",
        ]
        if os.path.isdir(os.path.join(venv, "bin")):
            lines.append("export PATH=%s:$PATH VIRTUAL_ENV=%s" % (shlex.quote(os.path.join(venv, "bin")), shlex.quote(venv)))
        for k, v in sorted((env or {}).items()):
            lines.append("export %s=%s" % (k, shlex.quote(v)))
        lines.append("cd %s || exit 125" % shlex.quote(cwd))
        lines.append("exec %s" % " ".join(shlex.quote(a) for a in argv))
        with open(os.path.join(self.results, "command.sh"), "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def kernel_argv(self, umid, uml_dir):
        return [
            "taskset", "-c", str(self.cpu), LINUX,
            "mem=%s" % self.mem, "umid=%s" % umid, "uml_dir=%s" % uml_dir,
            "root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
            "init=%s" % INIT, "PITCOPY_RESULTS=%s" % self.results, "PITCOPY_UML_MODULES=%s" % MODULES,
            "PITCOPY_REPO=%s" % REPO,
            # the console on our stdout, no input; no other consoles or serial
            # lines; kernel messages below "critical" only in results/dmesg.log
            # (loop devices over tmpfs log every WRITE_ZEROES they refuse)
            "con0=null,fd:1", "con=null", "ssl=null", "loglevel=3",
        ]

    def run(self, argv, cwd=REPO, env=None, out=None):
        """Boots, runs argv in the guest, stops; returns its exit status
        (125: it did not run or did not finish; 124: timeout). The console
        goes to ``out`` (default stdout) and to results/console.log."""
        out = out or sys.stdout
        self.wrapper = self.setup()
        if os.path.isdir(self.results):
            shutil.rmtree(self.results)
        os.makedirs(self.results)
        self.write_command(argv, cwd, env)
        # UML maps its memory from a file in TMPDIR: on tmpfs it costs no disk
        uml_dir = tempfile.mkdtemp(prefix="pitcopy-uml-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        umid = "pitcopy-%d" % os.getpid()
        henv = dict(os.environ, LD_PRELOAD=self.wrapper, TMPDIR=uml_dir)
        t0, self._started = time.monotonic(), time.time()
        log("boot: pinned to CPU %d, mem=%s, results in %s, timeout %d s" % (self.cpu, self.mem, self.results, self.timeout))
        timed_out = False
        try:
            # its own session: stop() signals the whole process group (UML
            # leaves helper processes behind when only the main one dies)
            self.proc = subprocess.Popen(self.kernel_argv(umid, uml_dir), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         env=henv, start_new_session=True)
            timed_out = not self._pump(out, t0 + self.timeout)
        finally:
            self.stop()
            shutil.rmtree(uml_dir, ignore_errors=True)
        took = time.monotonic() - t0
        status = self._read("exit-status")
        booted = self._read("booted")
        if booted is not None:
            log("booted in %.1f s (to the command)" % (float(booted) - self._started))
        if timed_out:
            log("TIMEOUT after %d s; stopped the guest" % self.timeout)
            return 124
        if status is None:
            log("the guest wrote no exit status (see %s/console.log); UML exit status %s" % (self.results, self.proc.returncode))
            return 125
        log("command exit status %s; guest ran %.1f s" % (status, took))
        return int(status)

    def _pump(self, out, deadline):
        """Copies the console to out and console.log until UML exits;
        False when the deadline passed first."""
        fd = self.proc.stdout.fileno()
        with open(os.path.join(self.results, "console.log"), "wb") as logf:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                ready, dummy, dummy = select.select([fd], [], [], min(left, 5))
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                logf.write(chunk)
                logf.flush()
                out.write(chunk.decode("utf-8", "replace").replace("\r\n", "\n"))
                out.flush()
        try:
            self.proc.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace=30):
        """SIGTERM to the guest's process group (UML shuts down cleanly on
        it), SIGKILL after ``grace`` seconds; a no-op once all have exited."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end:
                if self.proc.poll() is not None and not self._group_alive(pgid):
                    break
                time.sleep(0.1)
        if self.proc.poll() is None:
            self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()

    @staticmethod
    def _group_alive(pgid):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def _read(self, name):
        try:
            with open(os.path.join(self.results, name)) as fh:
                return fh.read().strip() or None
        except OSError:
            return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("setup", help="check the UML kernel, build the ptrace wrapper (idempotent)")
    run = sub.add_parser("run", help="boot, run CMD in the guest, stop; exit with its status")
    run.add_argument("--results", default=os.path.join(REPO, "tests", "output", "uml", "run"))
    run.add_argument("--timeout", type=int, default=int(os.environ.get("PITCOPY_UML_TIMEOUT", "5400")))
    run.add_argument("--mem", default=os.environ.get("PITCOPY_UML_MEM", "3G"))
    run.add_argument("--cwd", default=REPO)
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.action == "setup":
            log("ready: %s, ptrace wrapper %s" % (LINUX, UmlGuest.setup()))
            return 0
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("run needs a command after --")
        guest = UmlGuest(args.results, mem=args.mem, timeout=args.timeout)
        return guest.run(command, cwd=os.path.abspath(args.cwd))
    except (UmlError, subprocess.CalledProcessError) as exc:
        log("FAIL: %s" % exc)
        return 125


if __name__ == "__main__":
    sys.exit(main())
