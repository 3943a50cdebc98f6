"""Settings for the whole test suite.

Clusters the tests bring up run podnet's built-in images unless a test asks for others (`--images auto`
with a registry it started on 127.0.0.1): the tests never contact a registry outside this machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("PODNET_IMAGES", "builtin")
