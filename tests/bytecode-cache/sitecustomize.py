# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytecode cache for code imported from zip files, for the test runs.

Why: every Ansible module task runs from an AnsiballZ zip, and Python keeps
no bytecode for a zip import, so each task compiles ansible's module_utils
and ours from source again (twice: zipimport compiles in get_filename and
again in get_code): about 0.2 s of CPU per task here, seconds under
software emulation (the ZFS qemu guest). This caches each compiled module by
a hash of its source, so the next task with the same code only unmarshals it.

Only the test harness puts this directory on PYTHONPATH (tests/stages.py for
the stages on this host, tests/vm/guest.sh and tests/uml/guest.py in the
guests); nothing installed uses it. The code run is exactly what was
compiled from that source, with its file names set to this import's paths.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import marshal
import os
import zipimport
from importlib._bootstrap_external import MAGIC_NUMBER

# set by whoever put this directory on PYTHONPATH; without it nothing is hooked
# (no default: a shared world-writable directory would let others plant code)
_DIR = os.environ.get("PITCOPY_ZIPIMPORT_CACHE")
_compile_source = getattr(zipimport, "_compile_source", None)


def _renamed(code, filename):
    """``code`` and the code objects in its constants with ``filename``."""
    consts = tuple(_renamed(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile(pathname, source):
    # the member's path inside the zip (the zip itself is a new temp file
    # per task), the interpreter's bytecode version and the source
    import hashlib  # here, not at every interpreter start (most never import from a zip)

    inner = pathname.replace(os.sep, "/").rsplit(".zip/", 1)[-1]
    key = hashlib.sha256(MAGIC_NUMBER + inner.encode("utf-8", "surrogateescape") + b"\0" + source).hexdigest()
    path = os.path.join(_DIR, key)
    try:
        with open(path, "rb") as fh:
            return _renamed(marshal.loads(fh.read()), pathname)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    code = _compile_source(pathname, source)
    try:
        os.makedirs(_DIR, exist_ok=True)
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "wb") as fh:
            fh.write(marshal.dumps(code))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only costs the compile
    return code


if _compile_source is not None and _DIR:
    zipimport._compile_source = _cached_compile
