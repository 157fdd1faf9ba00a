# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wrapper over AnsibleModule shared by every pitcopy module.

This is the only module_utils file that imports ``ansible``. It

* builds the AnsibleModule with the shared options (``state_dir``,
  ``lock_timeout``, documented in the ``pitcopy.versions.common`` fragment);
* reports a missing PyYAML with ``missing_required_lib``;
* hands the backends a runner built on ``AnsibleModule.run_command`` (argv
  lists, C locale, no shell, no ``~``/``$VAR`` expansion of user strings);
* builds RecordEngine + StateStore + backends;
* is the ONE place where a PitcopyError becomes ``fail_json``.

Check mode is "compute the plan, do not apply it"; diff mode returns the
plan's records before and after; ``changed`` is the plan's, never hard-coded.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CommandError,
    HostError,
    InvalidInput,
    PitcopyError,
    StateFileError,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import (
    C_LOCALE,
    ReadOnlyRunner,
    SubprocessRunner,
    command_error,
)

try:
    import yaml  # noqa: F401  pylint: disable=unused-import
except ImportError:
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_YAML = True
    YAML_IMPORT_ERROR = None

# The store (and through it the engine) needs PyYAML; import them guarded so
# that a host without PyYAML gets missing_required_lib, not a traceback.
try:
    from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_factory
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine import PoolSession, RecordEngine, pool_dict
    from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
except ImportError:
    HAS_ENGINE = False
    ENGINE_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_ENGINE = True
    ENGINE_IMPORT_ERROR = None

DEFAULT_STATE_DIR = "/var/lib/pitcopy"
DEFAULT_LOCK_TIMEOUT = 30.0

# Must match the pitcopy.versions.common doc fragment.
SHARED_ARGUMENT_SPEC = dict(
    state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    lock_timeout=dict(type="float", default=DEFAULT_LOCK_TIMEOUT),
)

# Strings that reach a storage tool as argv words or a file name. A newline or
# NUL never belongs in a volume, pool or label name and would make the tools'
# line-oriented reports ambiguous, so refuse them before anything runs.
_FORBIDDEN_CHARS = ("\n", "\r", "\x00")


def record_changes(before, after, where="", limit=100):
    """``path: before -> after`` lines between two records dicts (at most
    ``limit``): what a hand edit changed, readable without diff mode."""
    out = []

    def walk(a, b, path):
        if len(out) >= limit or a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                walk(a.get(key), b.get(key), "%s.%s" % (path, key) if path else key)
        elif _by_version(a) is not None and _by_version(b) is not None:
            # records: matched by version, so one added or dropped record
            # does not make every later one look changed
            mine, theirs = _by_version(a), _by_version(b)
            for version in sorted(set(mine) | set(theirs)):
                walk(mine.get(version, {}), theirs.get(version, {}), "%s[version %s]" % (path, version))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, "%s[%d]" % (path, i))
        else:
            out.append("%s: %s -> %s" % (path or "records", _short(a), _short(b)))

    walk(before, after, where)
    return out


def _by_version(items):
    """{version: record} of a list of records, else None."""
    if not isinstance(items, list) or not all(isinstance(i, dict) and "version" in i for i in items):
        return None
    return dict((i["version"], i) for i in items)


def _short(value, width=200):
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


class ModuleRunner(SubprocessRunner):
    """The backends' runner, on ``AnsibleModule.run_command``.

    Same interface as _runner.SubprocessRunner: ``run(argv, data=None,
    check=True, timeout=None)`` and ``pipe([argv, ...], check=True)``.
    ``run_command`` cannot pipe one process into another, time a command out
    nor kill a hook's process group, so ``pipe()``, ``run(timeout=...)`` and
    ``run_hook()`` use the inherited subprocess implementation, also with
    argv lists and no shell.
    """

    def __init__(self, module):
        super(ModuleRunner, self).__init__()
        self.module = module

    def run(self, argv, data=None, check=True, timeout=None):
        if timeout:
            return super(ModuleRunner, self).run(argv, data=data, check=check, timeout=timeout)
        argv = self._check(argv)
        try:
            rc, out, err = self.module.run_command(
                self._exe(argv),  # the program resolved once per run (_runner.SubprocessRunner.resolve)
                data=data,
                binary_data=True,  # pass data as given; do not append a newline
                environ_update=dict(C_LOCALE),
                expand_user_and_vars=False,  # names are data, never expanded
                use_unsafe_shell=False,
                check_rc=False,
                errors="surrogate_then_replace",
                handle_exceptions=False,
            )
        except OSError as exc:
            raise CommandError("cannot run %s: %s" % (argv[0], exc), argv=argv, rc=None, stderr=str(exc))
        if check and rc != 0:
            raise command_error(argv, rc, out, err)
        return rc, out, err


def _walk_strings(value, where):
    """Yield (option path, string) for every string inside an option value."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, "%s.%s" % (where, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk_strings(item, "%s[%d]" % (where, index))


def host_error(exc, module_name, pool, state):
    """The HostError for an OSError that escaped a backend or the store while
    acting: what failed, on which path, and whether a journal was left (then
    verify_records with repair finishes or rolls it back)."""
    where = ""
    if getattr(exc, "filename", None) is not None:
        where = " on %s" % exc.filename
        if getattr(exc, "filename2", None) is not None:
            where += " -> %s" % exc.filename2
    why = exc.strerror or str(exc)
    if getattr(exc, "errno", None):
        why = "%s (%s)" % (why, errno.errorcode.get(exc.errno, exc.errno))
    journal = getattr(state, "journal", None)
    if journal is not None:
        then = "the %s of version %d of copy pool %s is journaled in phase %s; run pitcopy.versions.verify_records " \
               "with repair: true to finish or roll it back" % (journal.operation, journal.version, pool, journal.phase)
    else:
        then = "no journal was left for copy pool %s; run pitcopy.versions.verify_records to compare the records " \
               "with the host" % pool
    return HostError("%s failed for copy pool %s: a system call failed%s: %s; %s" % (
        module_name.rpartition(".")[2] or module_name, pool, where, why, then),
        errno=getattr(exc, "errno", None), path=getattr(exc, "filename", None))


def check_no_control_chars(params, names):
    """Raise InvalidInput naming the option whose string holds a newline/NUL."""
    for name in names:
        for where, text in _walk_strings(params.get(name), name):
            for char in _FORBIDDEN_CHARS:
                if char in text:
                    raise InvalidInput(
                        "%s %r contains a control character (%r); names may not contain newlines, "
                        "carriage returns or NUL bytes" % (where, text, char)
                    )


def check_positive(params, name, minimum=1):
    """Raise InvalidInput unless the integer option ``name`` is >= minimum (None passes)."""
    value = params.get(name)
    if value is not None and value < minimum:
        raise InvalidInput("%s must be an integer >= %d, got %r" % (name, minimum, value))


if HAS_ENGINE:

    class CheckModeStore(StateStore):
        """The store as check mode uses it: every lock is a reader's (shared),
        which creates nothing (no state_dir, no lock file) and works on a
        read-only state_dir; check mode writes nothing."""

        @contextlib.contextmanager
        def locked(self, name, shared=True):
            with super(CheckModeStore, self).locked(name, shared=True):
                yield


class PitcopyModule(object):
    """AnsibleModule plus the engine, with one error path.

    Modules stay thin::

        module = PitcopyModule(argument_spec=..., required_if=...)
        module.run_plan(pool_name, lambda session: session.plan_copy(label=...))
    """

    def __init__(self, argument_spec, supports_check_mode=True, validate=None, **kwargs):
        spec = dict(SHARED_ARGUMENT_SPEC)
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, supports_check_mode=supports_check_mode, **kwargs)
        self.params = self.module.params
        if not HAS_YAML:
            self.module.fail_json(msg=missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
        if not HAS_ENGINE:
            self.module.fail_json(
                msg="The pitcopy.versions module_utils could not be imported on %s" % os.uname()[1],
                exception=ENGINE_IMPORT_ERROR,
            )
        if validate is not None:
            self._guard(validate, self.params)

    @property
    def check_mode(self):
        return self.module.check_mode

    # --- construction ----------------------------------------------------

    def runner(self, read_only=False):
        """The backends' runner. Check mode and read-only runs get one that
        refuses any command that may change the host (_runner.ReadOnlyRunner):
        safe by construction, not by each backend's care."""
        runner = ModuleRunner(self.module)
        if self.check_mode:
            return ReadOnlyRunner(runner, "check mode")
        if read_only:
            return ReadOnlyRunner(runner, "a read-only run of %s" % (getattr(self.module, "_name", None) or "pitcopy"))
        return runner

    def state_dir(self):
        state_dir = self.params["state_dir"]
        if not os.path.isabs(state_dir):
            raise InvalidInput(
                "state_dir %r is a relative path; give an absolute path such as %s" % (state_dir, DEFAULT_STATE_DIR)
            )
        return state_dir

    def engine(self, read_only=False):
        lock_timeout = self.params["lock_timeout"]
        if lock_timeout < 0:
            raise InvalidInput("lock_timeout must be >= 0 seconds, got %r" % (lock_timeout,))
        store_class = CheckModeStore if self.check_mode else StateStore
        store = store_class(self.state_dir(), lock_timeout=lock_timeout)
        return RecordEngine(store, backend_factory(self.runner(read_only=read_only)))

    # --- the one error path -------------------------------------------------

    def fail(self, exc):
        """Turn a PitcopyError into fail_json (CommandError adds rc/stdout/stderr/cmd)."""
        result = exc.result()
        result.setdefault("changed", False)
        self.module.fail_json(**result)

    def _guard(self, func, *args):
        try:
            return func(*args)
        except PitcopyError as exc:
            self.fail(exc)
        except Exception as exc:  # pylint: disable=broad-except
            # A bug, not bad input: say so plainly and keep the traceback.
            self.module.fail_json(
                msg="pitcopy internal error (%s): %s" % (type(exc).__name__, exc),
                exception=traceback.format_exc(),
                changed=False,
            )

    # --- running ------------------------------------------------------------

    def _plan_and_apply(self, pool, build, read_only=False, precheck=None):
        engine = self.engine(read_only=read_only)
        if precheck is not None:
            # bad input is refused before the lock is waited for or taken
            precheck(engine)
        # the one place that decides the lock: readers share it
        with engine.session(pool, shared=read_only or self.check_mode) as session:
            try:
                plan = build(session)
                if plan.changed and not self.check_mode:
                    result = dict(plan.apply() or {})
                else:
                    result = dict(plan.result or {})
            except EnvironmentError as exc:
                # an OSError is the host's answer, not a bug: say where, and
                # what to run when the operation left a journal
                raise host_error(exc, getattr(self.module, "_name", None) or "pitcopy", pool, session.state)
            result["changed"] = bool(plan.changed)
            if self.module._diff:
                result["diff"] = {"before": plan.before, "after": plan.after}
        return result

    def run_plan(self, pool, build, read_only=False, precheck=None):
        """Plan with ``build(session)``; apply unless check mode; exit.

        ``read_only``: the plan never changes anything (verify_records
        without repair), so the run takes the shared lock as check mode does.
        ``precheck(engine)``: input checks that need no lock (copy_pool's
        definition check), run before the lock is taken."""
        result = self._guard(self._plan_and_apply, pool, build, read_only, precheck)
        self._exit(result)

    def _exit(self, result):
        # every warning of the run reaches Ansible's warnings as well
        for text in result.pop("_warnings", None) or ():
            self.module.warn(text)
        self.module.exit_json(**result)

    def _verify(self, pool, repair, reseal, verify_media=False):
        if not reseal:
            return self._plan_and_apply(pool, lambda session: session.plan_verify(repair=repair,
                                                                                  verify_media=verify_media),
                                        read_only=not repair)
        engine = self.engine(read_only=not repair)  # a reseal writes the state file, never the storage
        store = engine.store
        with store.locked(pool, shared=self.check_mode):
            edited, needs_seal = store.load_hand_edit(pool)
            session = PoolSession(engine, pool, edited)
            session._require()  # pylint: disable=protected-access
            try:
                previous, previous_error = store.load_previous(pool), None
            except StateFileError as exc:
                previous, previous_error = None, exc.msg
            before, after = pool_dict(previous), pool_dict(edited)
            if needs_seal and not self.check_mode:
                # the hand edit is sealed as is; the generation before it stays
                # the previous one (the edit itself is no generation worth keeping)
                store.save(edited, keep_previous=False)
            plan = session.plan_verify(repair=repair, verify_media=verify_media)
            if plan.changed and not self.check_mode:
                result = dict(plan.apply() or {})
            else:
                result = dict(plan.result or {})
        result["changed"] = bool(plan.changed or needs_seal)
        result["resealed"] = needs_seal
        result["reseal_changes"] = record_changes(before, after) if previous is not None else []
        if previous_error is not None:
            result["_warnings"] = ["no usable previous generation to compare the hand edit with: %s" % previous_error]
        elif previous is None:
            result["_warnings"] = ["copy pool %s has no previous generation (%s) to compare the hand edit with"
                                   % (pool, store.prev_path(pool))]
        if self.module._diff:
            result["diff"] = {"before": before, "after": after} if needs_seal else {
                "before": plan.before, "after": plan.after}
        return result

    def run_verify(self, pool, repair=False, reseal=False, verify_media=False):
        """verify_records: a reader unless it repairs or reseals."""
        result = self._guard(self._verify, pool, repair, reseal, verify_media)
        self._exit(result)

    def _info(self, pool, dataset=None):
        engine = self.engine(read_only=True)
        if pool is not None:
            with engine.session(pool, shared=True) as session:
                return dict(changed=False, pools=[session.info(dataset=dataset)])
        pools = []
        for name in engine.pool_names():
            # one damaged pool must not hide the others: it is listed as
            # {name, error} and the run says so in a warning
            try:
                with engine.session(name, shared=True) as session:
                    pools.append(session.info())
            except StateFileError as exc:
                pools.append({"name": name, "error": exc.msg})
        return dict(changed=False, pools=pools,
                    _warnings=["copy pool %s: %s" % (p["name"], p["error"]) for p in pools if "error" in p])

    def run_info(self, pool=None, dataset=None):
        """Read-only listing of one pool or all pools; never changes anything."""
        result = self._guard(self._info, pool, dataset)
        self._exit(result)
