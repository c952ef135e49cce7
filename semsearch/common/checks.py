"""Small argument checks used everywhere: ``k``, image ids, lists of texts.

Each refuses what would otherwise be coerced silently (``k=2.5``, ``True`` as an id, one
string where a list of captions is expected) with an :class:`~semsearch.errors.InputError`
or :class:`~semsearch.errors.InputTypeError` that names the value.

>>> check_k(5)
5
>>> check_k(2.5)
Traceback (most recent call last):
...
semsearch.errors.InputTypeError: k must be an integer >= 1, got 2.5
>>> check_image_id("139"), check_image_id(np.int64(285))
(139, 285)
>>> check_texts("a dog")
Traceback (most recent call last):
...
semsearch.errors.InputTypeError: texts must be a list of strings, not one str ('a dog'): wrap it in a list
"""
from __future__ import annotations

import numbers
import re
from typing import Iterable, List

import numpy as np

from semsearch.errors import InputError, InputTypeError

_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: no sign, no spaces, no other scripts


def is_integer(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_k(k, name: str = "k") -> int:
    """``k`` as an int, or raise: it must be an integer (not a bool or a float) and >= 1."""
    if not is_integer(k):
        raise InputTypeError(f"{name} must be an integer >= 1, got {k!r}")
    if k < 1:
        raise InputError(f"{name} must be an integer >= 1, got {k!r}")
    return int(k)


_INT64_MAX = int(np.iinfo(np.int64).max)

def check_image_id(value, what: str = "COCO image id") -> int:
    """A COCO image id as an int: an integer >= 0, or a string of ASCII digits.

    Floats, bools, signs, spaces and non-ASCII digits are refused rather than coerced.
    ``what`` names the kind of id in the message (``"COCO caption id"``).
    """
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise InputError(f"a {what} is written with the digits 0-9 only, got {value!r}")
        return int(value)
    if not is_integer(value):
        raise InputTypeError(f"a {what} must be an integer, got {value!r} ({type(value).__name__})")
    if value < 0:
        raise InputError(f"a {what} is >= 0, got {value!r}")
    if value > _INT64_MAX:  # ids are kept as int64: a larger one would wrap round to a negative
        raise InputError(f"a {what} is at most {_INT64_MAX} (int64), got {value!r}")
    return int(value)


def check_caption_id(value) -> int:
    """A COCO caption id as an int, by the rules of :func:`check_image_id`."""
    return check_image_id(value, "COCO caption id")


def check_image_ids(values: Iterable) -> np.ndarray:
    """Many ids through :func:`check_image_id`, shape (N,) int64."""
    if isinstance(values, (str, bytes)):
        raise InputTypeError(f"image ids must be a list of ids, not one str ({values!r})")
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        if (values < 0).any():
            raise InputError(f"a COCO image id is >= 0, got {int(values[values < 0][0])}")
        if values.dtype.kind == "u" and values.size and values.max() > _INT64_MAX:  # astype would wrap it
            raise InputError(f"a COCO image id is at most {_INT64_MAX} (int64), got {int(values.max())}")
        return values.astype(np.int64, copy=False).reshape(-1)
    return np.array([check_image_id(v) for v in values], dtype=np.int64)


def check_ks(ks, name: str = "ks") -> List[int]:
    """A non-empty list of ``k`` values, each through :func:`check_k`.

    >>> check_ks((1, 5, 10))
    [1, 5, 10]
    """
    if is_integer(ks):
        raise InputTypeError(f"{name} must be a list of integers >= 1, not one number ({ks!r}): wrap it in a list")
    try:
        ks = list(ks)
    except TypeError:
        raise InputTypeError(f"{name} must be a list of integers >= 1, got {ks!r}") from None
    if not ks:
        raise InputError(f"{name} is empty: give at least one k")
    return [check_k(k, f"every k in {name}") for k in ks]


def check_finite(array: np.ndarray, what: str) -> np.ndarray:
    """Refuse an array holding NaN or inf; ``what`` names it in the message.

    >>> check_finite(np.array([1.0, np.nan]), "model.npz weight")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: model.npz weight holds 1 NaN or infinite value (first at index 1): it cannot be used
    """
    array = np.asarray(array)
    if array.dtype.kind in "fc":
        bad = ~np.isfinite(array)
        if bad.any():
            n = int(bad.sum())
            first = np.unravel_index(int(np.argmax(bad.ravel())), array.shape) if array.ndim else ()
            where = tuple(int(i) for i in first)
            where = where[0] if len(where) == 1 else where
            raise InputError(
                f"{what} holds {n} NaN or infinite value{'s' if n > 1 else ''} (first at index {where}): it cannot be used"
            )
    return array


def check_texts(texts, name: str = "texts") -> List[str]:
    """A list of strings, or raise: one str, or an item that is not a str, is refused."""
    if isinstance(texts, (str, bytes)):
        shown = texts if len(texts) <= 40 else texts[:37] + "..."
        raise InputTypeError(f"{name} must be a list of strings, not one str ({shown!r}): wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise InputTypeError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputTypeError(f"{name}[{i}] is {text!r} ({type(text).__name__}), not a str")
    return texts
