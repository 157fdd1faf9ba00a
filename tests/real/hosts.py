# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two test hosts on this machine, for the off-host tests (issue 14).

Each "host" is a network namespace the test creates (``ip netns add``),
joined to the other by a veth pair on a private /30 that exists only inside
the two namespaces (nothing on the real network, nothing in the root
namespace), with its own sshd: started by the test from a config, host keys
and authorized_keys in the test's directory, no host service. The
namespaces share the filesystem and the mounts; ``attach_btrfs`` gives a
host its own loop-backed btrfs at a path of its own.

    pair = HostPair.create(workdir)           # hosts pair.a (10.x.y.1), pair.b (.2)
    with pair.a.entered():                    # this process on host a: its ssh reaches b
        SshRunner(pair.b.destination, options=pair.ssh_options())
    pair.b.attach_btrfs(make_fs)              # pair.b.storage: its mountpoint
    pair.destroy()                            # sshd killed, namespaces deleted

Names are unique per run (``pitcopy-<pid>-<random>-a``) so concurrent runs
do not clash; the addresses may repeat, as each pair is its own network. A
run killed before its teardown leaves namespaces whose pid is gone: the
next ``create`` removes them (``remove_stale``).

The managed host of a test is host a: ``entered()`` moves the calling
thread (pytest's, so every command it starts) into a's network namespace
and back, with setns(2); the mount namespace is not touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import ctypes
import os
import re
import secrets
import signal
import subprocess
import time

SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))
CLONE_NEWNET = 0x40000000
PREFIX = "pitcopy-"
_NAME_RE = re.compile(r"^pitcopy-(\d+)-[0-9a-f]+-[ab]$")
SSHD = "/usr/sbin/sshd"


def run(argv, check=True, timeout=60, **kw):
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                          env=dict(os.environ, LC_ALL="C", PATH=SBIN_PATH), **kw)
    out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(map(str, argv)), proc.returncode, err.strip()))
    return proc.returncode, out, err


def missing_requirements():
    """What this machine lacks for the two-host tests (empty when nothing)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (ip netns, sshd)")
    for path, pkg in ((SSHD, "openssh-server"), ("/usr/bin/ssh", "openssh-client"),
                      ("/usr/bin/ssh-keygen", "openssh-client")):
        if not os.access(path, os.X_OK):
            missing.append("%s (Debian package %s; tests/setup.sh installs it)" % (path, pkg))
    if run(["ip", "netns", "list"], check=False)[0] != 0:
        missing.append("ip netns (iproute2)")
    return missing


def _setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def keygen(path, comment):
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    with open(path + ".pub") as fh:
        return fh.read().strip()


class Host:
    """One namespaced host: its namespace, address, sshd and storage."""

    def __init__(self, pair, label, netns, address, workdir):
        self.pair, self.label, self.netns, self.address = pair, label, netns, address
        self.workdir = workdir
        self.host_key = None  # the public host key line ("ssh-ed25519 AAAA...")
        self.sshd = None
        self.storage = None  # the mountpoint of attach_btrfs
        self.fs = None

    @property
    def destination(self):
        return "root@%s" % self.address

    @property
    def netns_path(self):
        return "/run/netns/%s" % self.netns

    def in_netns(self, argv):
        """argv run in this host's network namespace (mounts shared)."""
        return ["nsenter", "--net=%s" % self.netns_path] + [str(a) for a in argv]

    def run(self, argv, check=True, timeout=60):
        """Run a command on this host (its network namespace), for checks."""
        return run(self.in_netns(argv), check=check, timeout=timeout)

    @contextlib.contextmanager
    def entered(self):
        """This thread (and what it starts) in the host's network namespace."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(self.netns_path)
            try:
                yield self
            finally:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "cannot return to the test's network namespace")
        finally:
            os.close(own)

    def start_sshd(self, authorized):
        d = self.workdir
        os.makedirs(d, mode=0o700, exist_ok=True)
        key = os.path.join(d, "ssh_host_ed25519_key")
        self.host_key = " ".join(keygen(key, "pitcopy-test-%s" % self.label).split()[:2])
        with open(os.path.join(d, "authorized_keys"), "w") as fh:
            fh.write("".join(k + "\n" for k in authorized))
        config = os.path.join(d, "sshd_config")
        with open(config, "w") as fh:
            fh.write("\n".join([
                "ListenAddress %s" % self.address,
                "Port 22",
                "HostKey %s" % key,
                "PidFile none",
                "AuthorizedKeysFile %s" % os.path.join(d, "authorized_keys"),
                # the test's files live under /tmp (world-writable): StrictModes would refuse them
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "",
            ]))
        # sshd's privilege separation directory (Debian builds it into sshd)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.log_path = os.path.join(d, "sshd.log")
        log = open(self.log_path, "wb")
        try:
            self.sshd = subprocess.Popen(self.in_netns([SSHD, "-D", "-e", "-f", config]), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=dict(os.environ, LC_ALL="C", PATH=SBIN_PATH))
        finally:
            log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.sshd.poll() is not None:
                raise RuntimeError("sshd of host %s exited (%s): %s" % (self.label, self.sshd.returncode, self.log()))
            if "Server listening on" in self.log():
                return
            time.sleep(0.05)
        raise RuntimeError("sshd of host %s did not listen within 20 s: %s" % (self.label, self.log()))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as fh:
                return fh.read()
        except (OSError, AttributeError):
            return ""

    def attach_btrfs(self, make_fs, size=512 * 1024 * 1024):
        """A loop-backed btrfs of this host's own, mounted at ``self.storage``
        (``make_fs``: conftest's loopfs_factory, which removes it at teardown)."""
        self.fs = make_fs("btrfs", size=size, name="%s-storage" % self.netns)
        self.storage = self.fs.mountpoint
        return self.storage

    def stop(self):
        errors = []
        if self.sshd is not None and self.sshd.poll() is None:
            try:
                os.killpg(self.sshd.pid, signal.SIGTERM)
                self.sshd.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.sshd.pid, signal.SIGKILL)
                    self.sshd.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    errors.append("sshd of %s: %s" % (self.label, exc))
        errors.extend(remove_netns(self.netns))
        return errors


def remove_netns(name):
    """Kill what still runs in namespace ``name`` (a session's sshd child),
    then delete it; returns the errors."""
    rc, out, dummy = run(["ip", "netns", "pids", name], check=False)
    for pid in out.split() if rc == 0 else ():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    for dummy in range(50):
        rc, dummy, err = run(["ip", "netns", "delete", name], check=False)
        if rc == 0 or not os.path.exists("/run/netns/%s" % name):
            return []
        time.sleep(0.1)
    return ["ip netns delete %s: %s" % (name, err.strip())]


def remove_stale():
    """Delete the namespaces of earlier runs whose process is gone."""
    rc, out, dummy = run(["ip", "netns", "list"], check=False)
    for line in out.splitlines() if rc == 0 else ():
        name = line.split()[0] if line.split() else ""
        m = _NAME_RE.match(name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            remove_netns(name)
        except OSError:
            pass


class HostPair:
    """Hosts ``a`` and ``b``, a client key both authorize, and known_hosts
    files (right and wrong) for the ssh options."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.a = self.b = None
        self.client_key = os.path.join(workdir, "client_key")
        self.stranger_key = os.path.join(workdir, "stranger_key")  # authorized nowhere
        self.known_hosts = os.path.join(workdir, "known_hosts")
        self.wrong_known_hosts = os.path.join(workdir, "wrong_known_hosts")

    @classmethod
    def create(cls, workdir, subnet="10.231.7"):
        remove_stale()
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        pair = cls(workdir)
        tag = "%s%d-%s" % (PREFIX, os.getpid(), secrets.token_hex(3))
        pair.a = Host(pair, "a", tag + "-a", subnet + ".1", os.path.join(workdir, "host-a"))
        pair.b = Host(pair, "b", tag + "-b", subnet + ".2", os.path.join(workdir, "host-b"))
        try:
            for h in (pair.a, pair.b):
                run(["ip", "netns", "add", h.netns])
            # created inside the namespaces: the names never exist in the root one
            run(["ip", "link", "add", "pcv0", "netns", pair.a.netns, "type", "veth",
                 "peer", "name", "pcv0", "netns", pair.b.netns])
            for h in (pair.a, pair.b):
                run(["ip", "-n", h.netns, "addr", "add", h.address + "/30", "dev", "pcv0"])
                run(["ip", "-n", h.netns, "link", "set", "lo", "up"])
                run(["ip", "-n", h.netns, "link", "set", "pcv0", "up"])
            client = keygen(pair.client_key, "pitcopy-test-client")
            keygen(pair.stranger_key, "pitcopy-test-stranger")
            for h in (pair.a, pair.b):
                h.start_sshd([client])
            with open(pair.known_hosts, "w") as fh:
                fh.write("".join("%s %s\n" % (h.address, h.host_key) for h in (pair.a, pair.b)))
            # b's address with a's key: what a reinstalled (or impersonated) host looks like
            with open(pair.wrong_known_hosts, "w") as fh:
                fh.write("%s %s\n" % (pair.b.address, pair.a.host_key))
        except BaseException:
            pair.destroy()
            raise
        return pair

    @property
    def hosts(self):
        return [h for h in (self.a, self.b) if h is not None]

    def ssh_options(self, known_hosts=None):
        """The pool-level ``ssh`` settings a test's runner uses: the client
        key, our known_hosts only (no user's or system's file)."""
        return {"identity_file": self.client_key,
                "options": ["UserKnownHostsFile=%s" % (known_hosts or self.known_hosts),
                            "GlobalKnownHostsFile=/dev/null"]}

    def destroy(self):
        errors = []
        for h in self.hosts:
            errors.extend(h.stop())
        return errors
