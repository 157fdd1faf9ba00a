# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A broken pipe is reported by the command that broke it (issue 12)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

READER_FAILS = ["sh", "-c", "head -c 10 >/dev/null; echo 'ERROR: the stream was refused' >&2; exit 3"]


def test_the_reader_that_died_is_reported_not_the_writer_s_sigpipe():
    with pytest.raises(CommandError) as err:
        SubprocessRunner().pipe([["yes"], READER_FAILS])
    exc = err.value
    assert exc.argv == READER_FAILS and exc.rc == 3
    assert exc.msg == "sh failed with exit status 3: ERROR: the stream was refused"
    assert exc.stderr.startswith("(yes was stopped by SIGPIPE when sh -c exited)\n")
    rc, _out, err_text = SubprocessRunner().pipe([["yes"], READER_FAILS], check=False)
    assert rc == 3 and "the stream was refused" in err_text


def test_a_writer_that_fails_on_its_own_is_reported():
    with pytest.raises(CommandError) as err:
        SubprocessRunner().pipe([["sh", "-c", "echo 'ERROR: cannot read' >&2; exit 2"], ["cat"]])
    assert err.value.rc == 2 and err.value.msg.endswith("ERROR: cannot read")


def test_a_metered_pipe_counts_the_stream_and_fails_as_an_unmetered_one():
    """``meter``: the stream between the first two commands passes through
    this process and is counted exactly; exit statuses and errors are those
    of the same pipe without it."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner

    r = SubprocessRunner()
    meter = {}
    assert r.pipe([["head", "-c", "3000001", "/dev/zero"], ["wc", "-c"]], meter=meter)[1].strip() == "3000001"
    assert meter == {"bytes": 3000001}
    for argvs in ([["sh", "-c", "echo x; exit 3"], ["cat"]],
                  [["head", "-c", "9000000", "/dev/zero"], ["head", "-c", "1"]],
                  [["echo", "y"], ["sh", "-c", "cat >/dev/null; exit 4"]]):
        meter = {}
        plain = r.pipe(argvs, check=False)
        assert r.pipe(argvs, check=False, meter=meter)[0] == plain[0], argvs
        assert meter["bytes"] >= 0
