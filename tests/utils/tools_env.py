# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the real-storage tests run the storage tools themselves (to set up
and to check, beside the collection's runner): the sbin directories on PATH
(a non-login root shell, the UML and VM guests, may lack them) and the C
locale, whose messages the tests match."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

MiB = 1024 * 1024
SBIN_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"))


def tool_env(**extra):
    """This process's environment with the sbin PATH, LC_ALL=C and ``extra``."""
    return dict(os.environ, LC_ALL="C", PATH=SBIN_PATH, **extra)
