# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_pool ``transfer`` on real btrfs (issue 14, item 5): ``btrfs send
--compressed-data`` (where btrfs-progs and the kernel have it; otherwise
its refusal) and a filter (``cat``) between send and receive, full and
incremental, the data of each copy checked; a filter that is not installed
refused before anything is made. Marker ``btrfs``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    PoolDefinition,
    TargetPool,
    TransferSettings,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.real.conftest import unique_pool_name
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import btrfs
from ansible_collections.pitcopy.versions.tests.utils.tools_env import SBIN_PATH, PipeRecorder, sha

pytestmark = pytest.mark.btrfs

MIB = 1024 * 1024


def compressed_data_supported():
    proc = subprocess.run(["btrfs", "send", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    try:
        with open(BtrfsSendBackend.SEND_STREAM_VERSION) as fh:
            kernel = int(fh.read().strip() or 0)
    except (IOError, OSError, ValueError):
        kernel = 1
    return "--compressed-data" in proc.stdout and kernel >= 2


def test_btrfs_send_compressed_data_and_a_filter(fs_pair, tmp_path):
    src, dst = fs_pair
    runner = PipeRecorder(env={"PATH": SBIN_PATH})
    engine = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: BtrfsSendBackend(runner=runner))
    source = src.path("db")
    btrfs("subvolume", "create", source)
    # stored compressed (the inode property): 8 MiB of text that zstd
    # makes small, so a stream of the compressed extents is much smaller
    btrfs("property", "set", source, "compression", "zstd")
    data = os.path.join(source, "data")
    line = b"pitcopy transfer test line, compressible\n"

    def write(version):
        with open(data, "wb") as fh:
            fh.write((b"v%d " % version + line) * (8 * MIB // len(line)))
            fh.flush()
            os.fsync(fh.fileno())
        return sha(data)

    def pool(name, transfer, target):
        os.makedirs(target, mode=0o700)
        d = PoolDefinition(name=unique_pool_name(name), technology="btrfs_send", sources=(source,), versions=1,
                           target_pools=(TargetPool("01", (target,)),), transfer=transfer)
        with engine.session(d.name) as s:
            s.plan_define(d).apply()
        return d.name

    def copy(name):
        with engine.session(name) as s:
            (p,) = s.plan_copy().apply()["version"]["pairs"]
        return p

    cat = shutil.which("cat")
    supported = compressed_data_supported()
    shaped = pool("shaped", TransferSettings(compressed=True, filter=("cat",)), dst.path("shaped"))
    plain = pool("plain", TransferSettings(), dst.path("plain"))
    if not supported:
        with pytest.raises(InvalidInput) as exc:
            copy(shaped)
        assert "btrfs-progs 6.0 or later" in exc.value.msg and "Linux 6.0" in exc.value.msg, exc.value.msg
        assert os.listdir(dst.path("shaped")) == []
        return
    for version in (1, 2):
        want = write(version)
        runner.pipes[:] = []
        got = copy(shaped)
        # send --compressed-data | cat | receive: the filter in the pipe,
        # resolved to its path; the stream counted as send wrote it
        (argvs,) = runner.pipes
        assert argvs[0][:4] == ["btrfs", "send", "-q", "--compressed-data"], argvs
        assert argvs[1] == [cat] and argvs[2][:2] == ["btrfs", "receive"], argvs
        assert got["base_version"] == (None if version == 1 else 1), got
        assert sha(os.path.join(dst.path("shaped"), "db", "data")) == want
        runner.pipes[:] = []
        ref = copy(plain)
        assert runner.pipes[0][0][:3] == ["btrfs", "send", "-q"] and len(runner.pipes[0]) == 2, runner.pipes
        assert sha(os.path.join(dst.path("plain"), "db", "data")) == want
        # the compressed extents travel as they are stored: a fraction of the plain stream
        assert got["bytes_sent"] * 4 < ref["bytes_sent"], (got, ref)

    # a filter that is not installed: refused naming it, nothing made
    missing = pool("missing", TransferSettings(filter=("pitcopy-no-such-filter", "-q")), dst.path("missing"))
    with pytest.raises(InvalidInput) as exc:
        copy(missing)
    assert "'pitcopy-no-such-filter' was not found" in exc.value.msg, exc.value.msg
    assert os.listdir(dst.path("missing")) == []
    with engine.session(missing) as s:
        assert s.info()["last_version"] == 0
