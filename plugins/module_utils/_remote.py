# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the storage tools on another host, over ssh (issue 14).

The groundwork of off-host copies: nothing in the modules uses it yet. It
follows _runner.py's conventions (argv lists, C locale, programs resolved
once per runner, CommandError with the tool's own words) and adds the ssh
side:

    SshRunner(destination, port=None, identity_file=None, options=(), local=None)
        .run(argv, data=None, check=True) -> (rc, stdout, stderr)   on the host
        .pipe([argv1, argv2], check=True) -> (rc, stdout, stderr)    all on the host
        .resolve(name) -> absolute path of a program on the host, or None
    pipe_across([(runner, argv), ...], check=True)  e.g. local send | ssh host receive

``destination`` is the contract's ssh destination ``[user@]host``; ``port``,
``identity_file`` and ``options`` are the pool-level ``ssh`` settings
(``options``: extra ``-o`` settings, ``Key=value``). ssh runs on the managed
host through ``local`` (a SubprocessRunner, or the module's runner), so the
local runner resolves ``ssh`` as it resolves every program.

Why the remote command is a string at all: ssh hands the remote sshd one
string, which the remote user's shell parses. So each argv element is quoted
with shlex.quote (a user's volume name with spaces, quotes, ``;``, ``$()``
or a newline arrives as one word, intact) and ``env LC_ALL=C ...`` goes in
front so the remote tools speak the C locale too. Nothing else is ever put
into that string.

ssh's own failures (exit status 255 with ssh's messages on stderr) become a
HostError naming the host and the cause: unreachable, host key mismatch or
unknown, permission denied, or a session lost while the command ran. A remote command that itself exits with 255
without any of ssh's messages stays a CommandError of that command.

Check mode: wrap the SshRunner in _runner.ReadOnlyRunner (it judges the
remote argv); its ``local`` runner must stay the plain one, because the
local command is ``ssh``, which the read-only list does not know.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import re
import shlex
import stat
import tempfile

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, HostError, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import (
    C_LOCALE,
    SBIN_DIRS,
    SubprocessRunner,
    command_error,
)

#: what an ssh destination may hold: ``[user@]host``; host a name, an IPv4
#: address or an IPv6 literal (with or without brackets)
_USER_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%A-Za-z]*\]?)$")
_OPTION_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SSH_KEYS = ("port", "identity_file", "options")

#: the ssh settings we always set: BatchMode (nobody can answer a password
#: or host key prompt in a module run) first, so the user's options cannot
#: turn it off (ssh keeps the first value it is given for each setting)
_FORCED_OPTIONS = ("BatchMode=yes",)
#: defaults the user's ``options`` may override (they come before these)
_DEFAULT_OPTIONS = ("StrictHostKeyChecking=yes", "ConnectTimeout=15", "ServerAliveInterval=15",
                    "ServerAliveCountMax=4")

#: the exit status ssh uses for its own errors
SSH_FAILED = 255

#: how long an idle shared connection stays up after its last command: a
#: module run makes dozens of round trips to a target host (discovery,
#: marks, receive, promotion), and a playbook several module runs; a new
#: connection costs a key exchange each (~0.85 s measured between the test
#: hosts), a shared one a few milliseconds
CONTROL_PERSIST = 60


def control_dir():
    """The private directory (0700, ours, no symlink) of the shared ssh
    connections' sockets: ``$XDG_RUNTIME_DIR/pitcopy-ssh`` or
    ``<tmp>/pitcopy-ssh-<uid>``. Whoever can reach a socket can run
    commands on the target host as us, so a directory another user owns
    or can enter is refused (then ssh connects without sharing)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(base, "pitcopy-ssh") if base and os.path.isabs(base) else \
        os.path.join(tempfile.gettempdir(), "pitcopy-ssh-%d" % os.geteuid())
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return None
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def _bad(what, value, accepted):
    return InvalidInput("%s %r is not accepted: %s" % (what, value, accepted))


def check_destination(destination):
    """``destination`` when it is an ssh destination ``[user@]host`` that
    cannot be read as an ssh option or split by a shell; else InvalidInput
    naming it and what is accepted."""
    accepted = ("expected an ssh destination [user@]host: a user name of letters, digits, '.', '_', '-' "
                "and a host name, IPv4 address or IPv6 literal; no leading '-', no whitespace or "
                "control characters")
    if not isinstance(destination, str) or not destination:
        raise _bad("ssh destination", destination, accepted)
    if destination.startswith("-"):
        raise _bad("ssh destination", destination, "a leading '-' would be read as an ssh option; " + accepted)
    if _CONTROL_RE.search(destination) or any(c.isspace() for c in destination):
        raise _bad("ssh destination", destination, accepted)
    user, sep, host = destination.rpartition("@")
    if sep and not _USER_RE.match(user):
        raise _bad("ssh destination", destination, "the user part %r is not a user name; %s" % (user, accepted))
    if not host or host.startswith("-") or not _HOST_RE.match(host):
        raise _bad("ssh destination", destination, "the host part %r is not a host; %s" % (host, accepted))
    return destination


def check_ssh_options(ssh):
    """The pool-level ``ssh`` settings ``{port, identity_file, options}``
    checked; returns a dict with the three keys (None / () when not given)."""
    ssh = dict(ssh or {})
    unknown = sorted(set(ssh) - set(_SSH_KEYS))
    if unknown:
        raise InvalidInput("ssh setting(s) %s not known: accepted are %s" % (", ".join(unknown), ", ".join(_SSH_KEYS)))
    port = ssh.get("port")
    if port is not None:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _bad("ssh port", port, "expected an integer from 1 to 65535")
    identity = ssh.get("identity_file")
    if identity is not None:
        if not isinstance(identity, str) or not identity.startswith("/") or _CONTROL_RE.search(identity):
            raise _bad("ssh identity_file", identity, "expected an absolute path without control characters")
    options = ssh.get("options") or ()
    if isinstance(options, str):
        raise _bad("ssh options", options, "expected a list of Key=value settings, e.g. ['Compression=yes']")
    for opt in options:
        key = opt.split("=", 1)[0] if isinstance(opt, str) else None
        if not isinstance(opt, str) or "=" not in opt or not _OPTION_KEY_RE.match(key or "") \
                or _CONTROL_RE.search(opt):
            raise _bad("ssh option", opt, "expected Key=value with a letters-and-digits key (an ssh_config "
                       "setting, e.g. UserKnownHostsFile=/etc/pitcopy/known_hosts), no control characters")
        if key.lower() == "batchmode":
            raise _bad("ssh option", opt, "BatchMode is always yes: a module run cannot answer a prompt")
    return {"port": port, "identity_file": identity, "options": tuple(options)}


def remote_command(argv, env=None):
    """The one string ssh sends for ``argv``: ``env LC_ALL=C ... argv...``,
    every element quoted for a POSIX shell, so the remote shell splits it
    back into exactly ``argv``."""
    if isinstance(argv, (str, bytes)) or not argv:
        raise TypeError("argv must be a non-empty list, got %r" % (argv,))
    argv = [str(a) for a in argv]
    if any("\x00" in a for a in argv):
        raise _bad("argument", next(a for a in argv if "\x00" in a), "a command argument cannot hold a NUL byte")
    # env would read a program name with '=' as a variable, one with a
    # leading '-' as its own option: the program is ours, never a user string
    if "=" in argv[0] or argv[0].startswith("-"):
        raise _bad("program", argv[0], "a program name or absolute path without '=' and no leading '-'")
    settings = dict(C_LOCALE)
    settings.update(env or {})
    words = ["env"] + ["%s=%s" % (k, settings[k]) for k in sorted(settings)] + argv
    return " ".join(shlex.quote(w) for w in words)


# --- ssh's own failures ---------------------------------------------------------------

_UNREACHABLE = re.compile(
    r"^ssh: (?:connect to host \S+ port \d+: (?P<why>.+)|Could not resolve hostname (?P<name>.+))$"
    r"|^(?P<closed>Connection (?:closed|reset|timed out) (?:by|during)? ?.*)$"
    r"|^(?P<kex>kex_exchange_identification: .+)$", re.M)

#: what ssh says when an established session goes away: the command ran, maybe in part
_LOST = re.compile(r"^(?:Connection to \S+ closed by remote host\.?|client_loop: send disconnect: .+"
                   r"|Timeout, server \S+ not responding\.?|packet_write_wait: .+|Broken pipe)$", re.M)


def ssh_failure(destination, port, stderr, identity_file=None):
    """The HostError for ssh's own failure given its stderr (exit status
    255), or None when stderr holds none of ssh's messages (the remote
    command exited 255 by itself)."""
    # ssh ends some messages with CRLF (written as if to a terminal)
    err = (stderr or "").replace("\r", "")
    where = destination + ("" if port in (None, 22) else " (port %s)" % port)
    last = [ln for ln in err.strip().splitlines() if ln.strip()]
    said = last[-1].strip() if last else ""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in err or "Host key for" in err and "has changed" in err:
        offending = re.search(r"Offending \S+ key in (\S+?:\d+)", err)
        return HostError(
            "the ssh host key of %s does not match the key known_hosts holds for it%s, so ssh refused to "
            "connect (a man in the middle, or the host was reinstalled): if the new key is right, "
            "replace the old one in known_hosts; nothing was run there"
            % (where, " (%s)" % offending.group(1) if offending else ""),
            host=destination, cause="host_key_mismatch", stderr=err)
    if re.search(r"No \S+ host key is known for|Host key verification failed", err):
        return HostError(
            "the ssh host key of %s is not in known_hosts and host keys are checked strictly: add the "
            "host's key to known_hosts (or set ssh options StrictHostKeyChecking=accept-new to trust it "
            "on first use); nothing was run there" % where,
            host=destination, cause="host_key_unknown", stderr=err)
    if re.search(r"^\S+: Permission denied \(", err, re.M) or "Too many authentication failures" in err:
        key = " with identity_file %s" % identity_file if identity_file else ""
        missing = re.search(r"(?:Warning: Identity file|Load key) (\S+?):? (?:not accessible|No such file)", err)
        note = "; the identity file %s cannot be read" % missing.group(1) if missing else ""
        return HostError(
            "permission denied by %s: ssh key authentication%s failed (BatchMode, no passwords)%s; "
            "authorize the managed host's public key for that user there: %s" % (where, key, note, said),
            host=destination, cause="permission_denied", stderr=err)
    lost = _LOST.search(err)
    if lost:
        return HostError(
            "the ssh connection to %s was lost while the command ran (%s): it may have run in part there"
            % (where, lost.group(0).strip().rstrip(".")),
            host=destination, cause="connection_lost", stderr=err)
    m = _UNREACHABLE.search(err)
    if m:
        why = m.group("why") or (m.group("name") and "cannot resolve host name %s" % m.group("name")) \
            or m.group("closed") or m.group("kex")
        return HostError(
            "cannot reach %s over ssh: %s; check the host name, the port and that sshd runs there; "
            "nothing was run there" % (where, why.strip()),
            host=destination, cause="unreachable", stderr=err)
    m = re.search(r"^(?:command-line line \d+|command-line): (.+)$", err, re.M)
    if m:
        return InvalidInput("ssh refused the ssh options for %s: %s; options are ssh_config settings "
                            "Key=value (man ssh_config)" % (where, m.group(1).strip()), host=destination)
    return None


# --- the runner -------------------------------------------------------------------------

class SshRunner:
    """Runs commands on ``destination`` over ssh: same interface as
    _runner.SubprocessRunner, the commands on the other host."""

    def __init__(self, destination, port=None, identity_file=None, options=(), local=None, timeout=None,
                 share=True):
        self.destination = check_destination(destination)
        ssh = check_ssh_options({"port": port, "identity_file": identity_file, "options": list(options or ())})
        self.port, self.identity_file, self.options = ssh["port"], ssh["identity_file"], ssh["options"]
        self.local = local if local is not None else SubprocessRunner()
        self.timeout = timeout
        self._programs = {}
        # one shared connection per destination (ControlMaster), unless
        # the user's options decide about sharing themselves
        keys = set(o.split("=", 1)[0].lower() for o in self.options)
        self._control = control_dir() if share and not keys & {"controlmaster", "controlpath"} else None

    @classmethod
    def from_pool(cls, destination, ssh=None, local=None, timeout=None):
        """The runner of a pool's ``host`` (or ``source_host``) with its
        pool-level ``ssh`` settings as the contract names them."""
        ssh = check_ssh_options(ssh)
        return cls(destination, local=local, timeout=timeout, **ssh)

    def __repr__(self):
        return "SshRunner(%r)" % self.destination

    def ssh_argv(self, argv):
        """The local argv that runs ``argv`` (already resolved) on the host."""
        out = ["ssh", "-T"]
        # ssh keeps the first value of a setting: forced ones, the user's, then our defaults
        user_keys = set(o.split("=", 1)[0].lower() for o in self.options)
        for opt in list(_FORCED_OPTIONS) + list(self.options) + \
                [o for o in _DEFAULT_OPTIONS if o.split("=", 1)[0].lower() not in user_keys]:
            out += ["-o", opt]
        if self._control is not None:
            out += ["-o", "ControlMaster=auto", "-o", self._control_path(), "-o", "ControlPersist=%d" % CONTROL_PERSIST]
        if self.port is not None:
            out += ["-p", str(self.port)]
        if self.identity_file:
            out += ["-i", self.identity_file, "-o", "IdentitiesOnly=yes"]
        return out + ["--", self.destination, remote_command(argv)]

    def _control_path(self):
        # %C: a hash of host, port, user; ours in front of it a hash of the
        # pool's ssh settings, so that a pool with another identity or
        # known_hosts never rides on a connection another one opened
        settings = json.dumps([self.destination, self.port, self.identity_file, list(self.options)])
        tag = hashlib.sha256(settings.encode("utf-8")).hexdigest()[:12]
        return "ControlPath=%s/%s-%%C" % (self._control, tag)

    def shared_connection_lost(self):
        """After an exit status 255 without any of ssh's messages: whether
        it was the shared connection that went away (its master gone: a
        client of a shared connection says nothing when the session dies)
        rather than the command's own 255."""
        if self._control is None:
            return False
        argv = ["ssh", "-o", self._control_path()]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        rc, dummy, dummy = self.local.run(argv + ["-O", "check", "--", self.destination], check=False)
        return rc != 0

    def lost(self):
        where = self.destination + ("" if self.port in (None, 22) else " (port %s)" % self.port)
        return HostError("the ssh connection to %s was lost while the command ran (the shared connection closed): "
                         "it may have run in part there" % where, host=self.destination, cause="connection_lost")

    # --- programs -------------------------------------------------------------------

    def resolve(self, name):
        """The path of program ``name`` on the host (its PATH, then the sbin
        directories), asked once per runner; None when it is not there."""
        if "/" in name:
            return name
        if name not in self._programs:
            script = 'PATH="$PATH:%s"; command -v -- "$1"' % ":".join(SBIN_DIRS)
            rc, out, err = self._ssh(["sh", "-c", script, "sh", name], None, None, "resolve " + name)
            found = out.strip().splitlines()
            if rc != 0 or not found or not found[-1].startswith("/"):
                return None  # not cached: it may be installed later in the run
            self._programs[name] = found[-1]
        return self._programs[name]

    def _exe(self, argv):
        argv = [str(a) for a in argv]
        return [self.resolve(argv[0]) or argv[0]] + argv[1:]

    # --- running --------------------------------------------------------------------

    def _ssh(self, argv, data, timeout, what):
        """Run resolved ``argv`` on the host; ssh's own failures become a
        HostError whatever the caller's ``check`` (a lost connection is no
        answer of the command's); the command's own exit status is returned."""
        ssh = self.ssh_argv(argv)
        try:
            rc, out, err = self.local.run(ssh, data=data, check=False, timeout=timeout or self.timeout)
        except CommandError as exc:  # ssh could not start, or the timeout
            raise CommandError("%s on %s: %s" % (what, self.destination, exc.msg), argv=ssh, rc=exc.rc,
                               stdout=exc.stdout, stderr=exc.stderr, host=self.destination)
        if rc == SSH_FAILED:
            failure = ssh_failure(self.destination, self.port, err, self.identity_file)
            if failure is not None:
                raise failure
            if self.shared_connection_lost():
                raise self.lost()
        return rc, out, err

    def run(self, argv, data=None, check=True, timeout=None):
        argv = _check_argv(argv)
        rc, out, err = self._ssh(self._exe(argv), data, timeout, argv[0])
        if check and rc != 0:
            raise remote_error(self, argv, rc, out, err)
        return rc, out, err

    def pipe(self, argvs, check=True, timeout=None):
        """``argv1 | argv2 | ...`` on the host, each command its own ssh
        connection (so the failing one is known, as in the local pipe):
        the data crosses the network once per ``|``; a command whose
        stream should stay on the host needs no pipe through us."""
        return pipe_across([(self, a) for a in argvs], check=check, timeout=timeout)

    def run_hook(self, argv, timeout):
        # a hook on another host needs its process group killed there on a
        # timeout; that comes with pull (issue 14), not before
        raise NotImplementedError("hooks on another host (%s) are not supported yet" % self.destination)


def remote_error(runner, argv, rc, out, err):
    """The CommandError of ``argv`` that failed on ``runner``'s host: the
    tool's own words (as _runner.command_error quotes them), the host named."""
    exc = command_error(argv, rc, out, err)
    reason = exc.msg.split(": ", 1)[1] if ": " in exc.msg else exc.msg
    return CommandError("%s failed on %s with exit status %s: %s" % (argv[0], runner.destination, rc, reason),
                        argv=exc.argv, rc=rc, stdout=exc.stdout, stderr=exc.stderr, host=runner.destination)


def pipe_across(stages, check=True, timeout=None, meter=None):
    """``argv1 | argv2 | ...`` where each command runs on its own runner's
    host: a stage is ``(runner, argv)`` with a local runner or an SshRunner
    (send here | ssh host receive, ssh host send | receive here, or two
    hosts through this one). Every process runs here, through the one
    local runner the SshRunners share: its pipe decides which side failed
    (a writer's SIGPIPE gives way to its reader's own failure), and that
    side is reported with its host. Returns (rc, stdout, stderr) as the
    local pipe does; with ``check`` False a failure's stdout is lost."""
    if len(stages) < 2:
        raise ValueError("a pipe needs at least two commands, got %d" % len(stages))
    local = None
    for runner, dummy in stages:
        here = runner.local if isinstance(runner, SshRunner) else runner
        if local is None:
            local = here
        elif here is not local:
            raise ValueError("every SshRunner of a pipe must use the same local runner")
    built, names = [], []
    for runner, argv in stages:
        argv = _check_argv(argv)
        names.append(argv)
        built.append(runner.ssh_argv(runner._exe(argv)) if isinstance(runner, SshRunner) else argv)
    try:
        if meter is not None:
            # the stream between the first two stages is counted here
            return local.pipe(built, check=True, timeout=timeout, meter=meter)
        return local.pipe(built, check=True, timeout=timeout)
    except CommandError as exc:
        failed = _which_stage(built, exc.argv)
        if failed is None:
            raise
        runner, argv = stages[failed][0], names[failed]
        if isinstance(runner, SshRunner):
            if exc.rc == SSH_FAILED:
                # the pipe's stderr starts with a SIGPIPE note when a writer fell with it
                failure = ssh_failure(runner.destination, runner.port, exc.stderr, runner.identity_file)
                if failure is not None:
                    raise failure
                if runner.shared_connection_lost():
                    raise runner.lost()
            error = remote_error(runner, argv, exc.rc, "", exc.stderr)
        else:
            error = command_error(argv, exc.rc, "", exc.stderr)
        error.argv = [w for a in built for w in (a + ["|"])][:-1]
        error.details["failed_command"] = list(argv)
        if not check:
            return exc.rc, exc.stdout, exc.stderr
        raise error


def _check_argv(argv):
    if isinstance(argv, (str, bytes)) or not argv:
        raise TypeError("argv must be a non-empty list, got %r" % (argv,))
    return [str(a) for a in argv]


def _which_stage(built, argv):
    argv = [str(a) for a in (argv or ())]
    for i, b in enumerate(built):
        if [str(a) for a in b] == argv:
            return i
    return None
