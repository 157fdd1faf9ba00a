# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of a child process that a crash test kills: each step is
numbered on stdout (the parent reads how far it got) and the process
SIGKILLs itself at step ``kill_at``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import sys


class Steps(object):
    def __init__(self, kill_at):
        self.kill_at = kill_at
        self.count = 0

    def __call__(self, what):
        self.count += 1
        sys.stdout.write("%d %s\n" % (self.count, what))
        sys.stdout.flush()
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
