"""``python -m semsearch``: the same as the ``semsearch`` command (see :mod:`semsearch.cli.commands`)."""
import sys

from semsearch.cli.commands import main

sys.exit(main())
