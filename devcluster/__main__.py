"""``python -m devcluster``: see :mod:`devcluster.cli`."""

import sys

from devcluster.cli import main

sys.exit(main())
