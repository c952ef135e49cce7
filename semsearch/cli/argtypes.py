"""Argument types for the command line: numbers are checked, never coerced.

``int()`` and ``float()`` accept more than a user means: ``int("٣")`` is 3 (Arabic-Indic
digits), ``int(" +5 ")`` is 5, ``float("nan")`` and ``float("1e999")`` are NaN and inf.
These types take ASCII digits (with a leading ``-`` where negatives make sense) and finite
numbers only, and otherwise give argparse a one-line message naming the text.

>>> positive_int("12"), integer("-3"), finite_float("1e-3")
(12, -3, 0.001)
>>> positive_int("٣")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected a positive integer (digits 0-9), got '٣'
>>> finite_float("nan")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: expected a finite number, got 'nan'
"""
from __future__ import annotations

import argparse
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathlib

_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def integer(text: str) -> int:
    """Any integer written with ASCII digits and an optional leading ``-``."""
    if not _INTEGER.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected an integer (digits 0-9), got {text!r}")
    return int(text)


def port(text: str) -> int:
    """A TCP port number, 1-65535."""
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= 65535:  # no sign, no other scripts' digits
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (digits 0-9), got {text!r}")
    return int(text)


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (digits 0-9), got {text!r}")
    return int(text)


def finite_float(text: str) -> float:
    """A finite number in decimal or scientific notation (``0.05``, ``1e-3``); no nan, no inf."""
    if not _NUMBER.fullmatch(text) or not math.isfinite(float(text)):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return float(text)


def output_path(text: str) -> "pathlib.Path":
    """A path to write to; an empty one is refused (``Path("")`` would be the current folder).

    >>> output_path("")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: the output path is empty: give a file or folder name
    """
    from pathlib import Path

    if not text.strip():
        raise argparse.ArgumentTypeError("the output path is empty: give a file or folder name")
    return Path(text)
