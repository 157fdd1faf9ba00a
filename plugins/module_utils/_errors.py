# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain exceptions of the record engine and the backends.

Plain Python: no Ansible import. The module wrapper (``_module.py``) is the one
place that turns these into ``fail_json``. Every message names the offending
value and says what would be accepted, because operators read it in AWX logs
without the source at hand.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PitcopyError(Exception):
    """Base of every error the engine or a backend raises on purpose."""

    def __init__(self, msg, **details):
        super(PitcopyError, self).__init__(msg)
        self.msg = msg
        # Extra keys for the module result (e.g. unpaired, findings).
        self.details = details

    def result(self):
        """Keys to merge into the failed module result."""
        out = dict(self.details)
        out["msg"] = self.msg
        return out


class InvalidInput(PitcopyError):
    """A parameter value is not acceptable; nothing was changed."""


class PoolNotFound(PitcopyError):
    """The named copy pool has no state file under state_dir."""


class PoolBusy(PitcopyError):
    """Another run holds the copy pool's lock beyond the bounded wait."""


class StateFileError(PitcopyError):
    """The state file is corrupt, from a newer schema, or unreadable.

    The file is left untouched."""


class NoEligibleTarget(PitcopyError):
    """Target selection found no eligible target for one or more sources.

    ``details['unpaired']`` lists ``{source, target_pool, reasons}`` (the
    notification of step 518 of the method)."""


class CapacityError(PitcopyError):
    """The next version cannot fit; raised before any copy starts."""


class CommandError(PitcopyError):
    """An external command failed. Carries argv, rc, stdout and stderr."""

    def __init__(self, msg, argv=None, rc=None, stdout="", stderr="", **details):
        super(CommandError, self).__init__(msg, **details)
        self.argv = list(argv or [])
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def result(self):
        out = super(CommandError, self).result()
        out.update(cmd=self.argv, rc=self.rc, stdout=self.stdout, stderr=self.stderr)
        return out


class CopyFailed(PitcopyError):
    """A copy version could not be taken. The copies already made for that
    version were removed and the records stay at the previous valid versions.

    ``details`` names the pair (``source``, ``target``); ``cause`` is the
    underlying error (often a CommandError)."""

    def __init__(self, msg, cause=None, **details):
        super(CopyFailed, self).__init__(msg, **details)
        self.cause = cause

    def result(self):
        out = super(CopyFailed, self).result()
        if isinstance(self.cause, CommandError):
            cause = self.cause.result()
            cause.pop("msg", None)
            out.update(cause)
        return out


class HookFailed(PitcopyError):
    """A pre- or post-copy hook failed and is configured to abort the copy."""


class HostError(PitcopyError):
    """A system call on the host failed while acting (an OSError from a
    backend or the store). The message names the path and the error and,
    when the operation left a journal, says to run verify_records with
    repair; ``details`` carry ``errno`` and ``path``."""
