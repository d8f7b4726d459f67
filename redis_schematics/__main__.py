"""``python -m redis_schematics``: the ``redis-schematics`` command line (see ``cli.py``)."""

from __future__ import annotations

import sys

from redis_schematics.cli import main

sys.exit(main())
