# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stands in for pitcopy.versions.copy_pool in test_rotation_copy_pool_args.py
(copied there as plugins/modules/copy_pool.py of a collection tree whose
other files are the real ones): it changes nothing and returns what the role
passed, ``given`` (the arguments as they arrived, ``omit`` leaving a key
out) and ``validated`` (after copy_pool's own argument spec, which it also
enforces, with the shared options: a value copy_pool would refuse for its
type or choice fails here too)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import _load_params

from ansible_collections.pitcopy.versions.plugins.module_utils._module import PitcopyModule
from ansible_collections.pitcopy.versions.plugins.module_utils._pool_options import ARGUMENT_SPEC, REQUIRED_IF


def main():
    given = dict((k, v) for k, v in _load_params().items() if not k.startswith("_ansible"))
    # copy_pool's construction: its argument spec and the shared options
    module = PitcopyModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF)
    module.module.exit_json(changed=False, given=given, validated=module.params)


if __name__ == "__main__":
    main()
