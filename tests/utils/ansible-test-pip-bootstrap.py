# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for ansible-test's pip bootstrap script (get_pip_<ver>.py).

ansible-test downloads that script from a host that closed networks cannot
reach. tests/setup.sh copies this file into ansible-test's cache only when the
download fails. It gets pip from the interpreter's bundled wheel, then lets
that pip install the exact packages ansible-test asked for (e.g. pip==24.2).
The CA bundle is passed explicitly because ansible-test hides the machine's
pip configuration from the pip it runs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def main():
    ensurepip.bootstrap(upgrade=True)
    # The real script understands these; plain "pip install" does not.
    wanted = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    cert = ["--cert", CA_BUNDLE] if os.path.exists(CA_BUNDLE) else []
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + cert + wanted)


if __name__ == "__main__":
    main()
