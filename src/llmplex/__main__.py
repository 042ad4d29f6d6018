"""``python -m llmplex``: the proxy CLI (same as the ``llmplex`` command)."""

import sys

from llmplex.proxy.cli import main

sys.exit(main())
