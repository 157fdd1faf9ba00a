# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""zfs_send of encrypted datasets and the copy pool's transfer options
against real zpools (inside the qemu guest; every zfs command costs a
second or two there, so this is one test).

Run with ``tests/vm/run-suite.sh zfs --parts real -- -k zfs_send_encrypted``.

An encrypted source (keyformat=raw, its key in a file the test writes) is
sent raw by default, version 2 incrementally: the copy is encrypted on the
target with its key not loaded there; loading the source's key makes it
readable; a restore in place gives back an encrypted source with the same
key, loaded and mounted; restored elsewhere, a new dataset, encrypted,
unmounted, readable after ``zfs load-key``. The pool also asks for ``compressed``,
``large_block`` and a ``filter`` (cat): both sources get ``-c -L`` with the
filter in the pipe, and a plain source beside the encrypted one is sent
as before (not raw), its copy unencrypted and holding the data. (``raw:
false`` refusing an encrypted source is test_transfer_options' unit test.)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    PoolDefinition,
    TargetPool,
    TransferSettings,
)
from ansible_collections.pitcopy.versions.tests.real.test_zfs import (
    SBIN,
    MiB,
    make_engine,
    read_fs_or_vol,
    sh,
    write_data,
    zpools_workdir,
)
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define
from ansible_collections.pitcopy.versions.tests.utils.tools_env import PipeRecorder

pytestmark = pytest.mark.zfs


def props(name, *names):
    out = sh("zfs", "get", "-H", "-o", "property,value", ",".join(names), name)
    return dict(line.split("\t", 1) for line in out.strip().splitlines())


def test_zfs_send_encrypted_raw_and_transfer_options(tmp_path):
    with zpools_workdir() as zpools:
        spool = zpools.create("s", 128 * MiB)
        tpool = zpools.create("t", 128 * MiB)
        key = str(tmp_path / "key")
        with open(key, "wb") as fh:
            fh.write(os.urandom(32))
        enc, plain = "%s/enc" % spool, "%s/plain" % spool
        sh("zfs", "create", "-o", "encryption=on", "-o", "keyformat=raw", "-o", "keylocation=file://%s" % key, enc)
        sh("zfs", "create", "-o", "recordsize=1M", plain)
        sh("zfs", "create", "%s/A" % tpool)
        runner = PipeRecorder(env={"PATH": SBIN})
        eng = make_engine(tmp_path / "state", runner)
        target, ptarget = "%s/A/enc" % tpool, "%s/A/plain" % tpool
        # one pool (every zfs command is seconds here): raw auto (the
        # default) with compressed, large blocks and a filter
        crypt = PoolDefinition(name="crypt", technology="zfs_send", sources=(enc, plain), versions=1,
                               target_pools=(TargetPool("A", (target, ptarget)),),
                               transfer=TransferSettings(compressed=True, large_block=True, filter=("cat",)))
        define(eng, crypt)

        # two versions, the second incremental: the encrypted source raw
        for n in (1, 2):
            write_data(enc, "filesystem", "secret v%d" % n)
            write_data(plain, "filesystem", "plain v%d" % n)
            res = copy(eng, "crypt")
            assert res["version"]["number"] == n
            for pair in res["version"]["pairs"]:
                assert pair["base_version"] == (None if n == 1 else 1) and pair["bytes_sent"] > 0, pair
        cat = shutil.which("cat")
        assert [p[0] for p in runner.pipes] == [
            ["zfs", "send", "-w", "-c", "-L", "%s@pitcopy-crypt-v1" % enc],
            ["zfs", "send", "-c", "-L", "%s@pitcopy-crypt-v1" % plain],
            ["zfs", "send", "-w", "-c", "-L", "-i", "%s#pitcopy-crypt-v1" % enc, "%s@pitcopy-crypt-v2" % enc],
            ["zfs", "send", "-c", "-L", "-i", "%s#pitcopy-crypt-v1" % plain, "%s@pitcopy-crypt-v2" % plain],
        ], runner.pipes
        assert all(len(p) == 3 and p[1] == [cat] and p[2][:2] == ["zfs", "receive"] for p in runner.pipes)
        # the copy is encrypted on the target, its key not loaded there
        got = props(target, "encryption", "keystatus", "encryptionroot")
        assert got == {"encryption": "aes-256-gcm", "keystatus": "unavailable", "encryptionroot": target}, got
        assert props(ptarget, "encryption")["encryption"] == "off"
        assert read_fs_or_vol(ptarget, "filesystem") == "plain v2"
        # readable with the source's key
        sh("zfs", "load-key", "-L", "file://%s" % key, target)
        sh("zfs", "mount", target)
        assert read_fs_or_vol(target, "filesystem") == "secret v2"
        sh("zfs", "unmount", target)
        sh("zfs", "unload-key", target)

        # restore in place: the source comes back encrypted, same key, loaded
        write_data(enc, "filesystem", "overwritten")
        with eng.session("crypt") as s:
            assert s.plan_restore(2, volumes=[enc]).apply()["restored"] == [enc]
        got = props(enc, "encryption", "keystatus", "encryptionroot", "keylocation", "mounted")
        assert got == {"encryption": "aes-256-gcm", "keystatus": "available", "encryptionroot": enc,
                       "keylocation": "file://%s" % key, "mounted": "yes"}, got
        assert read_fs_or_vol(enc, "filesystem") == "secret v2"

        # restored elsewhere: a new dataset, encrypted, waiting for its key
        sh("zfs", "create", "%s/cmp" % spool)
        with eng.session("crypt") as s:
            s.plan_restore_elsewhere(2, "%s/cmp" % spool, volumes=[enc]).apply()
        new = "%s/cmp/enc" % spool
        got = props(new, "encryption", "keystatus", "mounted")
        assert got == {"encryption": "aes-256-gcm", "keystatus": "unavailable", "mounted": "no"}, got
        sh("zfs", "load-key", "-L", "file://%s" % key, new)
        sh("zfs", "mount", new)
        assert read_fs_or_vol(new, "filesystem") == "secret v2"
