"""Loading a saved text encoder of any kind: GloVe :class:`~semsearch.text.TextEmbedder` or MiniLM.

Each encoder saves a JSON file whose ``"format"`` says what it is; :func:`load_text_encoder`
reads that and hands the file to the right class. The MiniLM module (and with it torch and
sentence-transformers) is imported only when the file is a MiniLM one.

Example
-------
>>> encoder = load_text_encoder("model/text.json")   # doctest: +SKIP
>>> encoder("a dog catching a frisbee").shape        # doctest: +SKIP
(50,)
"""
from __future__ import annotations

import json
import os
from typing import Union

from .paths import require_file
from .text import TextEmbedder
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]

GLOVE_FORMAT = "semsearch-text-2"
MINILM_FORMAT = "semsearch-text-minilm-1"  # semsearch.minilm.FORMAT, repeated so that no import is needed
FORMATS = (GLOVE_FORMAT, MINILM_FORMAT)


def text_encoder_format(path: PathLike) -> str:
    """The ``"format"`` of a saved text encoder file, or ValueError if it is not one."""
    path = require_file(path, "text encoder file")
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        fmt = state["format"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not a semsearch text encoder file: {type(e).__name__}: {e}") from None
    if fmt not in FORMATS:
        raise InputError(f"{path} has the unknown text encoder format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return fmt


#: The text encoders :func:`fit_text_encoder` knows; "idf" is the course's se_text.
ENCODERS = ("idf", "sif", "mean", "minilm")


def fit_text_encoder(texts, encoder: str = "idf", glove=None):
    """A text encoder fitted on ``texts`` (the caption corpus).

    ``"idf"``, ``"sif"`` and ``"mean"`` are GloVe :class:`TextEmbedder` weightings (50-d);
    ``"minilm"`` is the pretrained :class:`~semsearch.minilm.MiniLMEncoder` (384-d, needs the
    ``minilm`` extra), which has nothing to fit.
    """
    if encoder == "minilm":
        from .minilm import MiniLMEncoder

        return MiniLMEncoder()
    if encoder not in ENCODERS:
        raise InputError(f"text encoder must be one of {ENCODERS}, got {encoder!r}")
    return TextEmbedder.fit(texts, glove, weighting=encoder)


def load_text_encoder(path: PathLike, glove=None):
    """Read a text encoder saved by ``TextEmbedder.save`` or ``MiniLMEncoder.save``.

    Parameters
    ----------
    glove : gensim KeyedVectors, optional
        Passed to :meth:`TextEmbedder.load`; a MiniLM encoder does not use it.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a text encoder file, or one of an unknown format.
    ImportError
        A MiniLM file, but the ``minilm`` extra is not installed.
    """
    fmt = text_encoder_format(path)
    if fmt == MINILM_FORMAT:
        from .minilm import MiniLMEncoder

        return MiniLMEncoder.load(path)
    return TextEmbedder.load(path, glove)
