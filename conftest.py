"""Collection of the package's doctests (``--doctest-modules`` imports every module).

A module that subclasses a torch class can only be imported with the ``features`` extra (the
rest of the package imports its extras lazily), so without torch it is not collected.
"""
import importlib.util

collect_ignore = [] if importlib.util.find_spec("torch") else ["semsearch/cnn/pooled.py"]
