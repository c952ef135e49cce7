"""The ``semsearch`` command line: parsing arguments and printing; the work is the library's.

:mod:`~semsearch.cli.commands` holds ``main`` and the COCO commands (train, eval, demo),
:mod:`~semsearch.cli.photos` the photo commands (index, search), :mod:`~semsearch.cli.classify`
the ImageNet tags, :mod:`~semsearch.cli.argtypes` the argument types they share.
"""
from semsearch.cli.commands import main

__all__ = ["main"]
