"""``python -m semsearch``: the same as the ``semsearch`` command (see :mod:`semsearch.cli`)."""
import sys

from .cli import main

sys.exit(main())
