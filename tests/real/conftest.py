# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures for tests on real storage (loop devices, real tools).

Nothing here skips: a test that needs a tool or root and does not have it
FAILS with a message saying what is missing, so that CI cannot count a
missing btrfs-progs as a pass.

Helpers other suites may import (``from conftest import ...`` inside
tests/real, or via the fixtures):

    require_tools("btrfs", "mkfs.btrfs")     # pytest.fail if one is missing
    LoopFs.create(workdir, fstype, size)      # sparse file -> loop -> mkfs -> mount
    fs.destroy()                              # thaw, unmount, detach, unlink
    LoopDevice.create(workdir, size)          # a bare loop device (e.g. for pvcreate)

Markers: ``btrfs`` (native here), ``lvm`` and ``zfs`` (run inside the VM
harness of tests/vm/), ``quiesce`` (fsfreeze on ext4/xfs, native).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest


def _ensure_collection_importable():
    """Make ``ansible_collections.pitcopy.versions`` importable when pytest
    runs straight from a checkout (ansible-test sets this up itself)."""
    try:
        import ansible_collections.pitcopy.versions.plugins.module_utils._model  # noqa: F401
        return
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    coll = os.path.dirname(os.path.dirname(here))
    parts = coll.split(os.sep)
    if len(parts) >= 3 and parts[-3] == "ansible_collections":
        root = os.sep.join(parts[:-3])
    else:
        root = os.path.join(tempfile.gettempdir(), "pitcopy-coll-%d" % os.getuid())
        link_dir = os.path.join(root, "ansible_collections", "pitcopy")
        os.makedirs(link_dir, exist_ok=True)
        link = os.path.join(link_dir, "versions")
        if os.path.realpath(link) != coll:
            tmp = link + ".%d" % os.getpid()
            os.symlink(coll, tmp)
            os.replace(tmp, link)
    if root not in sys.path:
        sys.path.insert(0, root)
    # a stale namespace package from a failed import would shadow the path
    for name in list(sys.modules):
        if name == "ansible_collections" or name.startswith("ansible_collections."):
            del sys.modules[name]


_ensure_collection_importable()


def pytest_configure(config):
    config.addinivalue_line("markers", "btrfs: needs btrfs-progs and loop devices (runs natively)")
    config.addinivalue_line("markers", "lvm: needs LVM with device-mapper (runs inside the VM harness)")
    config.addinivalue_line("markers", "zfs: needs OpenZFS (runs inside the VM harness)")
    config.addinivalue_line("markers", "quiesce: fsfreeze on a loop-backed ext4/xfs filesystem (runs natively)")
    config.addinivalue_line("markers", "faults_all: a fault-injection case run only with --pitcopy-faults=all "
                                       "(stages vm-lvm-faults, vm-zfs-faults); deselected by default")


TOOL_PACKAGES = {
    "btrfs": "btrfs-progs",
    "mkfs.btrfs": "btrfs-progs",
    "mkfs.ext4": "e2fsprogs",
    "mkfs.xfs": "xfsprogs",
    "losetup": "util-linux",
    "fsfreeze": "util-linux",
    "findmnt": "util-linux",
    "mount": "mount",
    "umount": "mount",
}

from ansible_collections.pitcopy.versions.tests.utils.tools_env import SBIN_PATH, tool_env  # noqa: E402


def which(tool):
    return shutil.which(tool, path=SBIN_PATH)


def require_tools(*tools):
    """Fail (never skip) when a tool, root or loop devices are missing."""
    missing = [t for t in tools if not which(t)]
    if missing:
        pkgs = sorted(set(TOOL_PACKAGES.get(t, t) for t in missing))
        pytest.fail(
            "real-storage test needs %s on PATH; install the Debian package(s) %s (tests/setup.sh does)"
            % (", ".join(missing), ", ".join(pkgs)),
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail("real-storage tests need root (loop devices, mount); run them as root", pytrace=False)
    if not os.path.exists("/dev/loop-control"):
        pytest.fail("real-storage tests need loop devices: /dev/loop-control is missing", pytrace=False)


def run(argv, check=True, timeout=120, **kw):
    """Run a command for a fixture; on failure fail the test with its stderr."""
    proc = subprocess.run(
        [str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, timeout=timeout, check=False, env=tool_env(), **kw
    )
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(map(str, argv)), proc.returncode,
                                                   proc.stderr.decode("utf-8", "replace").strip()))
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def _is_mounted(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split(" ")
            if len(f) > 4 and f[4].replace("\\040", " ") == real:
                return True
    return False


class LoopDevice:
    """A loop device backed by a sparse file under ``workdir``."""

    def __init__(self, image, device):
        self.image = image
        self.device = device

    @classmethod
    def create(cls, workdir, size, name="disk"):
        image = os.path.join(workdir, "%s.img" % name)
        with open(image, "wb") as fh:
            fh.truncate(int(size))
        try:
            out = run(["losetup", "--find", "--show", image])[1]
        except Exception:
            os.unlink(image)
            raise
        return cls(image, out.strip())

    def destroy(self):
        errors = []
        if self.device:
            for dummy in range(20):
                rc, dummy, err = run(["losetup", "-d", self.device], check=False)
                if rc == 0 or "No such device" in err:
                    break
                time.sleep(0.1)
            else:
                errors.append("losetup -d %s: %s" % (self.device, err.strip()))
            self.device = None
        if self.image and os.path.exists(self.image):
            os.unlink(self.image)
        self.image = None
        return errors


class LoopFs:
    """A filesystem of ``fstype`` on a fresh loop device, mounted at ``mountpoint``."""

    def __init__(self, loop, fstype, mountpoint):
        self.loop = loop
        self.fstype = fstype
        self.mountpoint = mountpoint

    @property
    def device(self):
        return self.loop.device

    @classmethod
    def create(cls, workdir, fstype="btrfs", size=512 * 1024 * 1024, name="fs", mkfs_args=()):
        loop = LoopDevice.create(workdir, size, name=name)
        mountpoint = os.path.join(workdir, name)
        try:
            mkfs = {"btrfs": ["mkfs.btrfs", "-q", "-f"], "ext4": ["mkfs.ext4", "-q", "-F"],
                    "xfs": ["mkfs.xfs", "-q", "-f"]}[fstype]
            run(mkfs + list(mkfs_args) + [loop.device])
            os.makedirs(mountpoint, exist_ok=True)
            run(["mount", "-t", fstype, loop.device, mountpoint])
        except Exception:
            loop.destroy()
            raise
        return cls(loop, fstype, mountpoint)

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def destroy(self):
        """Thaw (a test may have left it frozen), unmount, detach, unlink.
        Runs in teardown also after a failure; raises only at the end."""
        errors = []
        if self.mountpoint and _is_mounted(self.mountpoint):
            run(["fsfreeze", "--unfreeze", self.mountpoint], check=False)
            for dummy in range(50):
                rc, dummy, err = run(["umount", self.mountpoint], check=False)
                if rc == 0 or not _is_mounted(self.mountpoint):
                    break
                time.sleep(0.1)
            else:
                # busy for 5 s: detach lazily so the loop device goes away anyway
                run(["umount", "-l", self.mountpoint], check=False)
                errors.append("umount %s was busy (%s); detached lazily" % (self.mountpoint, err.strip()))
        errors.extend(self.loop.destroy())
        if self.mountpoint and os.path.isdir(self.mountpoint) and not _is_mounted(self.mountpoint):
            try:
                os.rmdir(self.mountpoint)
            except OSError:
                pass
        return errors


# --- one run's own names, and what killed runs left behind ---------------------
#
# The btrfs backend lists copies by reading the marks of every btrfs subvolume
# mounted on the host, by pool name. A loop mount that a killed run left under
# /tmp/pitcopy-real-* therefore made every copy of the next run's pool p001
# look untracked, and two runs in different worktrees at once saw each other's
# copies. So: (1) pool names of the native btrfs tests carry this run's token
# (unique_pool_name), and (2) each work directory records its owner (boot id,
# pid and the pid's start time, so a reused pid is not taken for the owner);
# before the first one is made, the directories of owners that are gone are
# unmounted, their loop devices detached and removed (sweep_stale_workdirs).

WORKDIR_PREFIX = "pitcopy-real-"
OWNER_FILE = "owner"
# a directory from before owner files (or one whose owner file is not
# written yet) is only swept when nothing has changed in it for this long
LEGACY_AGE = 3600


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (IOError, OSError):
        return None


def _start_time(pid):
    """Start time of process ``pid`` (clock ticks after boot, field 22 of
    /proc/<pid>/stat), or None when there is no such process."""
    stat = _read("/proc/%d/stat" % pid)
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


BOOT_ID = _read("/proc/sys/kernel/random/boot_id") or "unknown"
OWNER = "%s %d %s" % (BOOT_ID, os.getpid(), _start_time(os.getpid()))
RUN_TOKEN = "%x-%x" % (os.getpid(), int(_start_time(os.getpid()) or 0))


def unique_pool_name(name):
    """``name`` with this run's token: no other run on the host (a live one
    in another worktree, or the mounts of a killed one) has copies of it."""
    return "%s-%s" % (name, RUN_TOKEN)


def _owner_alive(owner):
    """True/False for an owner line of this kernel; None when it is another
    kernel's (a UML guest sees the host's /tmp through an overlay) or not
    readable: not ours to judge."""
    parts = (owner or "").split()
    if len(parts) != 3 or parts[0] != BOOT_ID or not parts[1].isdigit():
        return None
    return _start_time(int(parts[1])) == parts[2]


def _mounts_under(path):
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split(" ")
            if len(f) > 4:
                mp = f[4].replace("\\040", " ")
                if mp == path or mp.startswith(path + os.sep):
                    found.append(mp)
    return found


def _loops_under(path):
    """(device, backing file) of the loop devices backed by files under ``path``."""
    found = []
    base = "/sys/block"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else ():
        backing = _read(os.path.join(base, name, "loop", "backing_file")) if name.startswith("loop") else None
        if backing and backing.startswith(path + os.sep):
            found.append(("/dev/" + name, backing))
    return found


def release_workdir(path):
    """Unmount everything under ``path`` (deepest first, lazily if busy),
    detach the loop devices backed there and remove it; returns what it did."""
    done = []
    for mp in sorted(_mounts_under(path), key=len, reverse=True):
        run(["fsfreeze", "--unfreeze", mp], check=False)
        if run(["umount", mp], check=False)[0] != 0:
            run(["umount", "-l", mp], check=False)
        done.append("umount " + mp)
    for dev, backing in _loops_under(path):
        run(["losetup", "-d", dev], check=False)
        done.append("losetup -d %s (%s)" % (dev, backing))
    if not _mounts_under(path):
        shutil.rmtree(path, ignore_errors=True)
        done.append("rm -r " + path)
    return done


def sweep_stale_workdirs(tmpdir=None):
    """Release the work directories of runs that are gone (see above); a live
    owner's, another kernel's and a young one without owner are left alone."""
    tmpdir = tmpdir or tempfile.gettempdir()
    done = []
    for entry in sorted(os.listdir(tmpdir)):
        path = os.path.join(tmpdir, entry)
        if not entry.startswith(WORKDIR_PREFIX) or not os.path.isdir(path) or os.path.islink(path):
            continue
        owner = _read(os.path.join(path, OWNER_FILE))
        if owner is None:
            try:
                stale = time.time() - os.stat(path).st_mtime > LEGACY_AGE
            except OSError:
                continue
        else:
            stale = _owner_alive(owner) is False
        if stale:
            done.extend(release_workdir(path))
    return done


@pytest.fixture(scope="session")
def _stale_workdirs_swept():
    """Once per run, before the first work directory: what killed runs left."""
    if os.geteuid() == 0:
        done = sweep_stale_workdirs()
        if done:
            sys.stderr.write("\n[conftest] released what runs that are gone left: %s\n" % "; ".join(done))
    yield


@pytest.fixture
def real_workdir(_stale_workdirs_swept):
    """A private directory for images and mountpoints, removed afterwards;
    its owner file lets a later run release it if this one is killed."""
    d = tempfile.mkdtemp(prefix=WORKDIR_PREFIX)
    with open(os.path.join(d, OWNER_FILE), "w") as fh:
        fh.write(OWNER + "\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def loopfs_factory(real_workdir):
    """``make(fstype, size=..., name=...) -> LoopFs``; everything made is
    destroyed at teardown, in reverse order, even when the test failed."""
    made = []

    def make(fstype="btrfs", size=512 * 1024 * 1024, name=None, mkfs_args=()):
        require_tools("losetup", "mount", "umount", "fsfreeze", "mkfs.%s" % fstype)
        if fstype == "btrfs":
            require_tools("btrfs")
        fs = LoopFs.create(real_workdir, fstype, size, name or "fs%d" % len(made), mkfs_args)
        made.append(fs)
        return fs

    yield make
    errors = []
    for fs in reversed(made):
        errors.extend(fs.destroy())
    if errors:
        raise RuntimeError("teardown of loop filesystems: %s" % "; ".join(errors))


@pytest.fixture
def btrfs_fs(loopfs_factory):
    return loopfs_factory("btrfs", name="btrfs0")


@pytest.fixture
def fs_pair(loopfs_factory):
    """Two btrfs filesystems: sources on ``src``, btrfs_send targets on ``dst``."""
    return loopfs_factory("btrfs", size=512 * 1024 * 1024, name="src"), \
        loopfs_factory("btrfs", size=512 * 1024 * 1024, name="dst")


@pytest.fixture
def ext4_fs(loopfs_factory):
    return loopfs_factory("ext4", size=128 * 1024 * 1024, name="ext40")


@pytest.fixture
def two_hosts(real_workdir, loopfs_factory):
    """Two hosts (network namespaces with their own sshd, tests/real/hosts.py):
    ``pair.a`` is the managed host (``with pair.a.entered():``), ``pair.b``
    the other; ``host.attach_btrfs(loopfs_factory)`` gives one its storage.
    Fails (never skips) without root, ip netns or openssh-server. sshd is
    killed and the namespaces deleted at teardown, after a failure too."""
    from ansible_collections.pitcopy.versions.tests.real import hosts

    missing = hosts.missing_requirements()
    if missing:
        pytest.fail("the two-host tests need %s" % "; ".join(missing), pytrace=False)
    pair = hosts.HostPair.create(os.path.join(real_workdir, "hosts"))
    yield pair
    errors = pair.destroy()
    if errors:
        raise RuntimeError("teardown of the test hosts: %s" % "; ".join(errors))


@pytest.fixture
def runner():
    from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

    return SubprocessRunner(env={"PATH": SBIN_PATH})


@pytest.fixture
def zpools():
    """Zpools on image files of the test's own (test_zfs.zpools_workdir),
    destroyed at the end: for every ZFS test file."""
    from ansible_collections.pitcopy.versions.tests.real.test_zfs import zpools_workdir

    with zpools_workdir() as zp:
        yield zp


def _write_sequence(paths, stop, pause, paused, counter, fsync=False):
    """Writes round n (n = 1, 2, ...) to the file at every path in order, as
    an application writing related files would, until ``stop`` is set;
    between rounds it honours ``pause`` (the application's quiesce: set
    ``paused`` and wait). ``counter[0]`` is the last round written in full;
    ``paths`` may grow while it runs.

    Each round writes a new file and renames it over the old one, so a
    snapshot taken at any instant holds either the old number or the new one,
    never an empty or half-written file: rewriting the file in place would
    leave it empty between the truncate and the write, a state any kernel can
    snapshot (it made the LVM consistency test read 0 now and then)."""
    n = 0
    while not stop.is_set():
        if pause.is_set():
            paused.set()
            while pause.is_set() and not stop.is_set():
                time.sleep(0.002)
            paused.clear()
            continue
        n += 1
        for path in list(paths):
            tmp = path + ".tmp"
            with open(tmp, "w") as fh:
                fh.write("%d\n" % n)
                if fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        counter[0] = n


@pytest.fixture
def sequence_writer():
    """The writer of the consistency tests, shared by every technology:
    ``sequence_writer(paths, stop, pause, paused, counter, fsync=False)``,
    meant as a thread's target (see _write_sequence)."""
    return _write_sequence


def _bridge(flag, ack, stop, pause, paused, ack_wait):
    """The application's side of the quiesce hooks: while the pre-copy hook's
    ``flag`` file exists the writer is paused, and ``ack`` says it is."""
    while not stop.is_set():
        if os.path.exists(flag):
            pause.set()
            if paused.wait(ack_wait):
                open(ack, "w").close()
            while os.path.exists(flag) and not stop.is_set():
                time.sleep(0.005)
            pause.clear()
            if os.path.exists(ack):
                os.unlink(ack)
        time.sleep(0.005)


@pytest.fixture
def quiesce_hooks(tmp_path):
    """``pre, post = quiesce_hooks(stop, pause, paused, ack_wait, hook_wait,
    timeout)``: a pre-copy hook that pauses the sequence writer (it creates a
    flag file and waits up to ``hook_wait`` s for the writer's ack) and a
    post-copy hook that resumes it, with the thread between them started. The
    thread ends at teardown (``stop`` set)."""
    import threading

    from ansible_collections.pitcopy.versions.plugins.module_utils._model import Hook

    started = []

    def start(stop, pause, paused, ack_wait, hook_wait, timeout):
        flag, ack = str(tmp_path / "pause"), str(tmp_path / "paused")
        br = threading.Thread(target=_bridge, args=(flag, ack, stop, pause, paused, ack_wait))
        br.start()
        started.append((br, stop))
        pre = Hook(argv=(sys.executable, "-c", "import os,sys,time\nopen(sys.argv[1],'w').close()\n"
                         "t=time.time()\nwhile not os.path.exists(sys.argv[2]):\n"
                         "    time.sleep(0.005)\n    assert time.time()-t<%d\n" % hook_wait, flag, ack),
                   timeout=timeout)
        return pre, Hook(argv=("rm", "-f", flag), timeout=30)

    yield start
    for br, stop in started:
        stop.set()
        br.join(30)


# --- recording the tools' real output for the fast replay tests -----------------
#
# ``pytest tests/real --pitcopy-record DIR`` writes, per test, every command the
# backends ran through a SubprocessRunner (argv, stdin, exit status, stdout,
# stderr) to DIR/<test>.yml. tests/unit/plugins/module_utils/test_replay_*.py
# replay selected calls from those files (tests/unit/.../recorded/) through a
# runner that asserts the exact argv: the fast tests see what the real tools
# said, not what someone typed.


def pytest_addoption(parser):
    parser.addoption("--pitcopy-record", metavar="DIR", default=None,
                     help="record the storage tools' output per test into DIR (see tests/utils/recording.py)")
    parser.addoption("--pitcopy-faults", choices=("sample", "all"), default="sample",
                     help="the LVM and ZFS fault suites (tests/real/test_lvm_faults.py, test_zfs_faults.py): a "
                          "fixed sample of kill points, where the storage is mid-sequence (default; stages vm-lvm, "
                          "vm-zfs), or every kill point (stages vm-lvm-faults, vm-zfs-faults); the cases marked "
                          "faults_all run only with 'all'")
    parser.addoption("--pitcopy-grid", choices=("events", "full"), default="events",
                     help="grid retention in the guests (tests/real/test_grid.py): lvm_thin and zfs_snapshot "
                          "through the 7 copies of the grid's events (default; stages vm-lvm, vm-zfs), or every "
                          "LVM and ZFS technology through 72 hourly copies (stages vm-lvm-grid, vm-zfs-grid)")


def pytest_collection_modifyitems(config, items):
    """The cases marked ``faults_all`` (a second technology over the same
    engine code, where a world costs minutes in the qemu guest) are
    deselected unless ``--pitcopy-faults=all``: pytest reports them as
    deselected, never as passed or skipped."""
    if config.getoption("--pitcopy-faults") == "all":
        return
    left = [i for i in items if i.get_closest_marker("faults_all") is not None]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [i for i in items if i.get_closest_marker("faults_all") is None]


@pytest.fixture
def sweep(request):
    """The LVM and ZFS fault suites' kill points (tests/real/faults.py
    ``sweeper``): every one with ``--pitcopy-faults=all`` (stages
    vm-lvm-faults, vm-zfs-faults), the sampled ones by default (vm-lvm,
    vm-zfs). What counts as left over after a repair is the test module's
    own ``leftovers(world, k)``."""
    from ansible_collections.pitcopy.versions.tests.real import faults
    return faults.sweeper(request, request.module.leftovers)


@pytest.fixture(autouse=True)
def _pitcopy_record(request):
    out_dir = request.config.getoption("--pitcopy-record")
    if out_dir:
        # '$PITCOPY_VM_RESULTS/recorded': the guest's results directory, which
        # the host reads after the run
        out_dir = os.path.expandvars(out_dir)
    if not out_dir:
        yield
        return
    from ansible_collections.pitcopy.versions.tests.utils.recording import recording

    root = None
    if request.node.get_closest_marker("btrfs") and "real_workdir" in request.fixturenames:
        # native btrfs: the kernel calls too, and paths relative to the
        # test's own directory (see recording())
        root = request.getfixturevalue("real_workdir")
    # pool names carry this run's token (unique_pool_name); the recording
    # leaves it out, so that the replay's fixed names match any run's
    with recording(out_dir, request.node.nodeid, root=root, run_token="-" + RUN_TOKEN):
        yield
