# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring of copy pools: what a Prometheus textfile and a Nagios plugin say.

Plain Python: no Ansible import. The monitoring role installs the
module_utils on the managed host and a small script (``check_pitcopy``) that
calls :func:`main`, so a Nagios/Icinga agent or a cron job can run it
without Ansible.

It only reads. Every pool is read under the reader's (shared) lock, with a
bounded wait: readers never wait for each other, and a pool whose writer
(a long copy) holds the lock past ``lock_timeout`` is reported as busy
(UNKNOWN), never waited for without end. ``verify_records``' checks run as
``repair=False`` and the plan is never applied; the runner refuses any
command that could change the host (_runner.ReadOnlyRunner). A pool whose
state file is damaged or unreadable is reported as such; the other pools
are still checked.

API::

    health = collect(engine, pools=None, copy_windows=None)   # [PoolHealth]
    text = prometheus_text(health, last_run_success=None, now=None)
    write_textfile(path, text)           # atomic, as node_exporter requires
    code, output = nagios(health)        # (0..3, status line + perfdata)
    main(argv) -> exit code              # the check_pitcopy command
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    PitcopyError,
    PoolBusy,
    StateFileError,
)

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# which pool's status names the plugin's: a pool whose records do not match
# the host first, then one that could not be checked (its records may be
# anything), then a stale one
_SEVERITY = {OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3}

DEFAULT_LOCK_TIMEOUT = 10.0
# the verify_records finding that says "too old", not "does not match"
PROBLEM_STALE = "stale"


class PoolHealth:
    """What monitoring knows of one copy pool.

    ``error`` (str) when it could not be checked; ``readable`` False when
    that is because its state file is damaged or unreadable, ``busy`` True
    when a writer held its lock past the bounded wait. The other values are
    None when unknown."""

    def __init__(self, name):
        self.name = name
        self.readable = True
        self.busy = False
        self.error = None
        self.newest_valid_age = None  # seconds; None: no valid version (or unknown)
        self.newest_valid_version = None
        self.max_age = None  # the definition's text, e.g. "26h"
        self.max_age_seconds = None
        self.stale = None
        self.versions_kept = None
        self.versions_valid = None
        self.versions_held = None
        self.last_copy_window_seconds = None
        self.consistent = None
        self.problems = []  # verify findings other than stale: "v3 copy_missing"

    @property
    def checked(self):
        return self.error is None

    def status(self):
        if not self.checked:
            return UNKNOWN
        if not self.consistent:
            return CRITICAL
        if self.stale:
            return WARNING
        return OK

    def as_dict(self):
        return dict((k, v) for k, v in vars(self).items())


def _finding_text(f):
    where = []
    if f.get("version") is not None:
        where.append("v%s" % f["version"])
    if f.get("target"):
        where.append(str(f["target"]))
    return "%s%s" % (f["problem"], " (%s)" % " ".join(where) if where else "")


def _window_seconds(rec):
    """The copy window a record carries, in seconds, if a state file of
    some version records it (today's do not: the caller may pass it)."""
    for attr, scale in (("copy_window_ms", 1000.0), ("window_ms", 1000.0), ("copy_window_seconds", 1.0)):
        value = getattr(rec, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) / scale
    return None


def check_pool(engine, name, copy_window_ms=None):
    """One pool's PoolHealth (never raises a PitcopyError: it becomes the
    pool's ``error``)."""
    # imported here: the engine's helpers need PyYAML through the store,
    # and main() reports a missing PyYAML as UNKNOWN instead of a traceback
    from ansible_collections.pitcopy.versions.plugins.module_utils._definition import age_seconds
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
        newest_valid,
        newest_valid_age,
    )
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import STATUS_VALID

    h = PoolHealth(name)
    try:
        with engine.session(name, shared=True) as session:
            session.info()  # PoolNotFound when the pool has no state file
            state = session.state
            records = state.replication_records
            h.versions_kept = len(records)
            h.versions_valid = len([r for r in records if r.status == STATUS_VALID])
            # ``held`` comes with holds (issue 16 item 3); a record without it is not held
            h.versions_held = len([r for r in records if getattr(r, "held", None)])
            newest = newest_valid(state)
            if newest is not None:
                h.newest_valid_version = newest.version
                h.newest_valid_age = newest_valid_age(state, engine.clock())
            if records:
                h.last_copy_window_seconds = _window_seconds(max(records, key=lambda r: r.version))
            h.max_age = state.definition.max_age
            if h.max_age is not None:
                h.max_age_seconds = age_seconds(h.max_age)
                h.stale = h.newest_valid_age is None or h.newest_valid_age > h.max_age_seconds
            result = session.plan_verify(repair=False).result
            h.consistent = bool(result["consistent"])
            h.problems = [_finding_text(f) for f in result["findings"] if f["problem"] != PROBLEM_STALE]
    except PoolBusy as exc:
        h.busy = True
        h.error = exc.msg
    except StateFileError as exc:
        h.readable = False
        h.error = exc.msg
    except PitcopyError as exc:
        # a tool missing or failing while reading the storage: cannot tell
        h.error = exc.msg
    if copy_window_ms is not None:
        h.last_copy_window_seconds = float(copy_window_ms) / 1000.0
    return h


def collect(engine, pools=None, copy_windows=None):
    """PoolHealth of each pool named (default: every pool of the state
    directory), in that order. ``copy_windows``: {pool: ms} of copies this
    run took (copy_version's ``copy_window_ms``)."""
    copy_windows = copy_windows or {}
    names = list(pools) if pools else engine.pool_names()
    return [check_pool(engine, name, copy_windows.get(name)) for name in names]


# --- Prometheus ---------------------------------------------------------------

# (name, help, value of a PoolHealth or None to leave the sample out)
_POOL_METRICS = (
    ("pitcopy_state_readable",
     "Whether the copy pool's state file could be read and decoded (0: damaged or unreadable).",
     lambda h: 0 if not h.readable else (None if h.busy else 1)),
    ("pitcopy_pool_busy",
     "Whether a writer held the copy pool's lock past the bounded wait, so it was not checked.",
     lambda h: 1 if h.busy else 0),
    ("pitcopy_newest_valid_version_age_seconds",
     "Seconds since the newest valid copy version was taken (+Inf: no valid version).",
     lambda h: None if not h.checked else (float("inf") if h.newest_valid_age is None else h.newest_valid_age)),
    ("pitcopy_max_age_seconds",
     "The copy pool's max_age in seconds (absent: no max_age set).",
     lambda h: h.max_age_seconds),
    ("pitcopy_stale",
     "Whether the newest valid copy version is older than max_age (absent: no max_age set).",
     lambda h: None if h.stale is None or not h.checked else int(h.stale)),
    ("pitcopy_versions_kept",
     "Copy versions the records keep (replication records).",
     lambda h: h.versions_kept if h.checked else None),
    ("pitcopy_versions_valid",
     "Copy versions the records keep whose status is valid.",
     lambda h: h.versions_valid if h.checked else None),
    ("pitcopy_versions_held",
     "Copy versions held (pinned) against rotation.",
     lambda h: h.versions_held if h.checked else None),
    ("pitcopy_records_consistent",
     "Whether the records match the host (verify_records finds nothing but staleness).",
     lambda h: None if h.consistent is None else int(h.consistent)),
    ("pitcopy_verify_problems",
     "verify_records findings other than stale.",
     lambda h: len(h.problems) if h.consistent is not None else None),
    ("pitcopy_last_copy_window_seconds",
     "Duration of the copy window (sources frozen or quiesced) of the last copy, when known.",
     lambda h: h.last_copy_window_seconds),
)


def escape_label(value):
    """A label value as the text exposition format needs it."""
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value):
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if math.isnan(value):
            return "NaN"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def prometheus_text(health, last_run_success=None, now=None):
    """The metrics in the Prometheus text exposition format (0.0.4), one
    family at a time with its HELP and TYPE, every sample labelled with its
    pool; families without samples are left out."""
    lines = []

    def family(name, help_text, samples):
        if not samples:
            return
        lines.append("# HELP %s %s" % (name, _escape_help(help_text)))
        lines.append("# TYPE %s gauge" % name)
        for labels, value in samples:
            label_text = ",".join('%s="%s"' % (k, escape_label(v)) for k, v in labels)
            lines.append("%s%s %s" % (name, "{%s}" % label_text if label_text else "", _number(value)))

    for name, help_text, get in _POOL_METRICS:
        samples = []
        for h in health:
            value = get(h)
            if value is not None:
                samples.append(((("pool", h.name),), value))
        family(name, help_text, samples)
    if last_run_success is not None:
        family("pitcopy_last_run_success", "Whether the last rotation run that wrote this file succeeded.",
               [((), int(bool(last_run_success)))])
    family("pitcopy_monitor_timestamp_seconds", "When these metrics were collected (Unix time).",
           [((), round(time.time() if now is None else now, 3))])
    return "\n".join(lines) + "\n"


def write_textfile(path, text):
    """Replace ``path`` atomically: a temporary file in the same directory
    (not ending in .prom, so node_exporter never reads it half written),
    fsync, rename, fsync of the directory. OSError when it cannot."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # node_exporter often runs as its own user: the metrics are no secret
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# --- Nagios / Icinga ----------------------------------------------------------

def _perf_label(text):
    # the plugin guidelines: a label may hold anything but = and '
    return "'%s'" % text.replace("'", "_").replace("=", "_")


def _perfdata(health):
    out = []
    for h in health:
        if not h.checked:
            continue
        if h.newest_valid_age is not None:
            out.append("%s=%ds;%s;;0" % (_perf_label(h.name + "_age"), h.newest_valid_age,
                                         h.max_age_seconds if h.max_age_seconds is not None else ""))
        out.append("%s=%d;;;0" % (_perf_label(h.name + "_kept"), h.versions_kept))
        out.append("%s=%d;;;0" % (_perf_label(h.name + "_held"), h.versions_held))
        if h.last_copy_window_seconds is not None:
            out.append("%s=%gs;;;0" % (_perf_label(h.name + "_window"), round(h.last_copy_window_seconds, 3)))
    return out


def _spoken_age(seconds):
    if seconds is None:
        return "no valid version"
    for unit, size, sub_unit, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if seconds >= size:
            rest = (seconds % size) // sub_size
            return "newest valid version %d%s%s old" % (seconds // size, unit, " %d%s" % (rest, sub_unit) if rest else "")
    return "newest valid version %ds old" % seconds


def _pool_line(h):
    status = STATUS_NAMES[h.status()]
    if h.busy:
        return "%s: %s: busy, not checked: %s" % (status, h.name, h.error)
    if not h.readable:
        return "%s: %s: state file damaged or unreadable: %s" % (status, h.name, h.error)
    if h.error:
        return "%s: %s: could not be checked: %s" % (status, h.name, h.error)
    parts = [_spoken_age(h.newest_valid_age)]
    if h.max_age is not None:
        parts.append("max_age %s%s" % (h.max_age, ", STALE" if h.stale else ""))
    parts.append("%d kept, %d held" % (h.versions_kept, h.versions_held))
    if not h.consistent:
        parts.append("records do not match the host: %s" % ", ".join(h.problems))
    return "%s: %s: %s" % (status, h.name, "; ".join(parts))


def nagios(health):
    """(exit code, output) per the Nagios plugin guidelines: one status line
    with the perfdata after ``|``, then one line per pool."""
    if not health:
        return UNKNOWN, "PITCOPY UNKNOWN - no copy pools to check"
    code = max((h.status() for h in health), key=lambda c: _SEVERITY[c])
    bad = [h for h in health if h.status() == code]
    if code == OK:
        summary = "%d copy pool%s OK" % (len(health), "" if len(health) == 1 else "s")
    else:
        what = {CRITICAL: "records do not match the host", UNKNOWN: "not checked",
                WARNING: "stale (newest valid version older than max_age)"}[code]
        summary = "%s: %s" % (", ".join(h.name for h in bad), what)
        others = [h for h in health if h.status() not in (OK, code)]
        if others:
            summary += "; also %s" % ", ".join("%s %s" % (h.name, STATUS_NAMES[h.status()]) for h in others)
    first = "PITCOPY %s - %s" % (STATUS_NAMES[code], summary)
    perf = _perfdata(health)
    if perf:
        first += " | " + " ".join(perf)
    return code, "\n".join([first] + [_pool_line(h) for h in health])


# --- the command --------------------------------------------------------------

class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # a plugin's bad arguments are UNKNOWN (3), not argparse's 2 (CRITICAL)
    def error(self, message):
        raise _Usage(message)


def _parser():
    p = _Parser(prog="check_pitcopy", description=(
        "Check pitcopy.versions copy pools: the newest valid version's age against max_age, whether the "
        "records match the host, and write the Prometheus textfile. Only reads, under shared locks."))
    p.add_argument("--state-dir", default=None, help="the state directory (default /var/lib/pitcopy)")
    p.add_argument("--pool", action="append", default=[], metavar="NAME",
                   help="check this copy pool (repeatable; default: every pool of the state directory)")
    p.add_argument("--textfile", metavar="PATH",
                   help="also write the metrics to PATH (must end in .prom) for node_exporter's textfile "
                        "collector; then the exit code says whether the file was written (0) or not (1)")
    p.add_argument("--last-run-success", choices=("0", "1"),
                   help="the result of the rotation run that calls this (exported as pitcopy_last_run_success)")
    p.add_argument("--copy-window", action="append", default=[], metavar="POOL=MS",
                   help="the copy window of the copy this run took of POOL, in milliseconds (repeatable)")
    p.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT, metavar="SECONDS",
                   help="how long to wait for a pool's shared lock while a writer holds it (default %g)"
                        % DEFAULT_LOCK_TIMEOUT)
    return p


def _copy_windows(values):
    out = {}
    for value in values:
        pool, sep, ms = value.partition("=")
        try:
            number = float(ms)
        except ValueError:
            number = None
        if not sep or not pool or number is None or not math.isfinite(number) or number < 0:
            raise _Usage("--copy-window %r is not accepted: expected POOL=MS, MS a number of milliseconds >= 0"
                         % value)
        out[pool] = number
    return out


def _engine(state_dir, lock_timeout):
    from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_factory
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
    from ansible_collections.pitcopy.versions.plugins.module_utils._runner import ReadOnlyRunner, SubprocessRunner
    from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore

    class ReaderStore(StateStore):
        """Every lock a reader's: monitoring never writes, and a reader's
        lock creates nothing and works on a read-only state_dir."""

        @contextlib.contextmanager
        def locked(self, name, shared=True):
            with super(ReaderStore, self).locked(name, shared=True):
                yield

    kwargs = {"lock_timeout": lock_timeout}
    if state_dir is not None:
        kwargs["state_dir"] = state_dir
    store = ReaderStore(**kwargs)
    runner = ReadOnlyRunner(SubprocessRunner(), "check_pitcopy (monitoring)")
    return RecordEngine(store, backend_factory(runner))


def run(argv, engine_factory=_engine, out=None):
    """check_pitcopy: (exit code) after printing the plugin output."""
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
        if args.lock_timeout < 0 or not math.isfinite(args.lock_timeout):
            raise _Usage("--lock-timeout %r is not accepted: expected a number of seconds >= 0" % args.lock_timeout)
        if args.textfile is not None and not args.textfile.endswith(".prom"):
            raise _Usage("--textfile %r is not accepted: node_exporter's textfile collector reads only files "
                         "ending in .prom" % args.textfile)
        windows = _copy_windows(args.copy_window)
    except _Usage as exc:
        out.write("PITCOPY UNKNOWN - %s\n%s" % (exc, _parser().format_usage()))
        return UNKNOWN
    try:
        engine = engine_factory(args.state_dir, args.lock_timeout)
        health = collect(engine, args.pool, windows)
    except ImportError as exc:
        out.write("PITCOPY UNKNOWN - cannot load pitcopy's libraries (PyYAML installed?): %s\n" % exc)
        return UNKNOWN
    except PitcopyError as exc:  # the state directory itself: missing, unsafe, unlistable
        out.write("PITCOPY UNKNOWN - %s\n" % exc.msg)
        return UNKNOWN
    code, text = nagios(health)
    if args.textfile is not None:
        last = None if args.last_run_success is None else args.last_run_success == "1"
        try:
            write_textfile(args.textfile, prometheus_text(health, last_run_success=last))
        except OSError as exc:
            out.write("PITCOPY UNKNOWN - cannot write the textfile %s: %s\n%s\n"
                      % (args.textfile, exc.strerror or exc, text))
            return 1
        out.write(text + "\n")
        return 0
    out.write(text + "\n")
    return code


def main(argv=None):
    return run(sys.argv[1:] if argv is None else argv)
