"""The text-encoder interface (``se_text``), and fitting or loading an encoder by name.

Every text encoder follows :class:`TextEncoder`: it turns a text into a ``(dim,)`` unit vector
(a list of N texts into ``(N, dim)``), says which words of a text it knows, and saves and
loads itself. Two kinds exist:

==========================================  =====  ==========================================
class                                       dim    ``ENCODERS`` names
==========================================  =====  ==========================================
:class:`semsearch.text.TextEmbedder`        50     ``"idf"`` (the course's), ``"sif"``, ``"mean"``
:class:`semsearch.routes.minilm.MiniLMEncoder`     384    ``"minilm"`` (extra ``[minilm]``)
==========================================  =====  ==========================================

Each class owns its file format (its ``FORMAT``); :func:`load_text_encoder` reads a file's
``"format"`` and hands the file to the class that wrote it. The parameter that takes an
encoder is called ``text_encoder`` throughout semsearch.

Example
-------
>>> text_encoder = load_text_encoder("model/text.json")   # doctest: +SKIP
>>> text_encoder("a dog catching a frisbee").shape        # doctest: +SKIP
(50,)
"""
from __future__ import annotations

import json
import os
from typing import List, Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from semsearch.errors import InputError
from semsearch.routes.minilm import MiniLMEncoder
from semsearch.paths import require_file
from semsearch.text import TextEmbedder

PathLike = Union[str, "os.PathLike[str]"]


@runtime_checkable
class TextEncoder(Protocol):
    """What semsearch needs of a text encoder."""

    dim: int  #: size of an embedding

    def __call__(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """One text -> (dim,); a list of N texts -> (N, dim); rows of unit length, or 0."""

    def known_words(self, text: str) -> List[str]:
        """The words of ``text`` that contribute to its embedding."""

    def check_known(self, text: str) -> None:
        """Raise :class:`~semsearch.errors.UnknownQueryError` if ``text`` would embed to zero."""

    def save(self, path: PathLike) -> None:
        """Write the encoder's state, atomically, as a JSON file with a ``"format"``."""

    @classmethod
    def load(cls, path: PathLike, **options) -> "TextEncoder":
        """Read a file written by :meth:`save`."""


#: Encoder classes by the format they write.
CLASSES = {cls.FORMAT: cls for cls in (TextEmbedder, MiniLMEncoder)}

#: The names :func:`fit_text_encoder` knows; "idf" is the course's se_text.
ENCODERS = ("idf", "sif", "mean", "minilm")


def text_encoder_format(path: PathLike) -> str:
    """The ``"format"`` of a saved text encoder file, or InputError if it is not one."""
    path = require_file(path, "text encoder file")
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        fmt = state["format"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not a semsearch text encoder file: {type(e).__name__}: {e}") from None
    if fmt not in CLASSES:
        raise InputError(f"{path} has the unknown text encoder format {fmt!r}; known formats: {', '.join(CLASSES)}")
    return fmt


def fit_text_encoder(texts, name: str = "idf", glove=None) -> TextEncoder:
    """A text encoder fitted on ``texts`` (the caption corpus).

    ``"idf"``, ``"sif"`` and ``"mean"`` are GloVe :class:`TextEmbedder` weightings (50-d);
    ``"minilm"`` is the pretrained :class:`~semsearch.routes.minilm.MiniLMEncoder` (384-d, needs the
    ``minilm`` extra), which has nothing to fit.
    """
    if name not in ENCODERS:
        raise InputError(f"text encoder must be one of {ENCODERS}, got {name!r}")
    if name == "minilm":
        return MiniLMEncoder()
    return TextEmbedder.fit(texts, glove, weighting=name)


def load_text_encoder(path: PathLike, glove=None, *, vectors: Optional[PathLike] = None) -> TextEncoder:
    """Read a text encoder saved by ``TextEmbedder.save`` or ``MiniLMEncoder.save``.

    Parameters
    ----------
    glove : gensim KeyedVectors, optional
        The word vectors a GloVe :class:`TextEmbedder` uses (default: the packaged ones).
    vectors : path, optional
        A GloVe text encoder's vocabulary vectors (:meth:`TextEmbedder.save_vectors`), used
        instead of loading GloVe when ``glove`` is not given.

    Raises
    ------
    FileNotFoundError
        No such file.
    InputError
        Not a text encoder file, or one of an unknown format.
    MissingExtraError
        A MiniLM file, but the ``minilm`` extra is not installed.
    """
    cls = CLASSES[text_encoder_format(path)]
    return cls.load(path, glove=glove, vectors=vectors) if cls is TextEmbedder else cls.load(path)
