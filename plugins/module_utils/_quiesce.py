# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy window: pre/post-copy hooks, filesystem freeze, and its watchdog.

API (what backends rely on; implementers keep these names):

    window = CopyWindow(definition, runner, clock=time.monotonic)
    with window.open(freeze=[mountpoint, ...]):   # runs pre-copy hooks, then
        ...point-in-time commands...              # fsfreeze -f each mountpoint;
                                                  # on exit (finally) thaws
                                                  # and runs post-copy hooks
    window.window_ms   float: first hook/freeze/command to last thaw
    window.hooks       list of {phase, argv, rc, ms, stderr}

A watchdog process armed before the first freeze thaws every frozen
mountpoint if this process dies (SIGKILL included) before disarming it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
