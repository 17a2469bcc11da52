"""``python -m carbonkit``: the same as the ``carbonkit`` command."""

import sys

from .cli import main

sys.exit(main())
