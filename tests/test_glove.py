"""Tests of semsearch.glove: the packaged GloVe-50 vectors and GloVe / word2vec text files."""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

import semsearch.glove as glove_module
from semsearch.glove import CACHE_FORMAT, _load_text, cache_path, load_glove

WORDS = ["the", "cat", "dog"]
VECTORS = np.array([[0.5, -1.0, 2.0], [1.25, 0.0, -0.5], [3.0, 4.0, 1e-3]], dtype=np.float32)


@pytest.fixture(autouse=True)
def fresh_text_cache():
    """Each test starts and ends with no text file cached in memory (the packaged load stays cached)."""
    _load_text.cache_clear()
    yield
    _load_text.cache_clear()


def glove_text(words=WORDS, vectors=VECTORS) -> str:
    return "".join(w + " " + " ".join(repr(float(x)) for x in v) + "\n" for w, v in zip(words, vectors))


def assert_vectors(glove, words=WORDS, vectors=VECTORS) -> None:
    assert isinstance(glove, KeyedVectors)
    assert glove.vector_size == vectors.shape[1]
    assert list(glove.index_to_key) == list(words)
    for word, vector in zip(words, vectors):
        np.testing.assert_allclose(glove[word], vector, rtol=1e-6)


# --------------------------------------------------------------------------- packaged
def test_packaged_glove():
    glove = load_glove()
    assert isinstance(glove, KeyedVectors)
    assert glove.vectors.shape == (400_000, 50)
    assert glove.vectors.dtype == np.float32
    np.testing.assert_allclose(glove["the"][:3], [0.418, 0.24968, -0.41242], rtol=1e-5)
    assert glove.index_to_key[0] == "the"
    assert "dog" in glove.key_to_index and "qwzxqwzx" not in glove.key_to_index


def test_packaged_glove_is_cached():
    assert load_glove() is load_glove()


# --------------------------------------------------------------------------- text files
def test_glove_text_file_without_header(tmp_path: Path):
    path = tmp_path / "glove.3d.txt"
    path.write_text(glove_text(), encoding="utf-8")
    assert_vectors(load_glove(path))


def test_word2vec_text_file_with_header(tmp_path: Path):
    path = tmp_path / "w2v.txt"
    path.write_text("3 3\n" + glove_text(), encoding="utf-8")
    glove = load_glove(str(path))
    assert_vectors(glove)
    assert "3" not in glove.key_to_index  # the header is not read as a word


def test_numeric_first_word_is_not_a_header(tmp_path: Path):
    path = tmp_path / "numbers.txt"
    path.write_text(glove_text(["1", "2"], np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)), encoding="utf-8")
    assert_vectors(load_glove(path), ["1", "2"], np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))


def test_same_file_twice_is_the_same_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")
    first = load_glove(path)
    monkeypatch.chdir(tmp_path)
    assert load_glove("glove.txt") is first  # relative and absolute paths name one file


def test_cache_file_is_written_and_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")
    load_glove(path)
    cache = cache_path(path)
    assert cache == tmp_path / "glove.txt.cache.npz" and cache.is_file()
    assert sorted(os.listdir(tmp_path)) == ["glove.txt", "glove.txt.cache.npz"]  # no temporary file left
    with np.load(cache, allow_pickle=False) as f:  # plain arrays only, and the source's fingerprint
        assert int(f["source_size"]) == path.stat().st_size
        assert str(f["source_sha256"]) == hashlib.sha256(path.read_bytes()).hexdigest()

    def no_parsing(*args, **kwargs):
        raise AssertionError("the text file was parsed again instead of using the cache")

    monkeypatch.setattr(KeyedVectors, "load_word2vec_format", no_parsing)
    _load_text.cache_clear()
    assert_vectors(load_glove(path))


def test_cache_keeps_unicode_words(tmp_path: Path):
    words = ["café", "naïve", "日本"]
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(words), encoding="utf-8")
    load_glove(path)
    _load_text.cache_clear()
    assert_vectors(load_glove(path), words)


@pytest.mark.parametrize("mtime_shift", [+10, -10, 0], ids=["newer", "older", "same-mtime"])
def test_replaced_text_file_is_parsed_again_whatever_its_mtime(tmp_path: Path, mtime_shift):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")
    load_glove(path)
    cache = cache_path(path)
    new_vectors = VECTORS * 2  # the content hash decides, not the mtime
    path.write_text(glove_text(vectors=new_vectors), encoding="utf-8")
    when = cache.stat().st_mtime + mtime_shift
    os.utime(path, (when, when))
    _load_text.cache_clear()
    assert_vectors(load_glove(path), vectors=new_vectors)


def test_same_size_different_content_is_parsed_again(tmp_path: Path):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")
    load_glove(path)
    swapped = glove_text(["dog", "cat", "the"])  # same bytes, other order: same size
    assert len(swapped) == len(glove_text())
    path.write_text(swapped, encoding="utf-8")
    os.utime(path, (0, 0))
    _load_text.cache_clear()
    assert list(load_glove(path).index_to_key) == ["dog", "cat", "the"]


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_gensim_kv_pickle_runs_nothing(tmp_path: Path):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")
    marker = tmp_path / "MARKER"
    kv = tmp_path / "glove.txt.kv"
    kv.write_bytes(pickle.dumps(_Payload(marker)))
    os.utime(kv, (path.stat().st_mtime + 100,) * 2)  # "fresher" than the text file
    assert_vectors(load_glove(path))
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "npz-object-array", "garbage", "wrong-format-tag"])
def test_planted_cache_runs_nothing_and_is_replaced(tmp_path: Path, kind):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")
    size, sha = path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()
    marker = tmp_path / "MARKER"
    cache = cache_path(path)
    if kind == "pickle":
        cache.write_bytes(pickle.dumps(_Payload(marker)))
    elif kind == "npz-object-array":
        payload = np.empty(1, dtype=object)
        payload[0] = _Payload(marker)
        with open(cache, "wb") as f:
            np.savez(f, format=CACHE_FORMAT, source_size=size, source_sha256=sha,
                     words=payload, vectors=payload)
    elif kind == "garbage":
        cache.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        with open(cache, "wb") as f:
            np.savez(f, format="other", source_size=size, source_sha256=sha,
                     words=np.frombuffer(b"x\ny\nz", np.uint8), vectors=np.zeros((3, 3), np.float32))
    assert_vectors(load_glove(path))
    assert not marker.exists()
    with np.load(cache, allow_pickle=False) as f:  # rewritten as a valid cache
        assert str(f["format"]) == CACHE_FORMAT


def test_read_only_folder_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "glove.txt"
    path.write_text(glove_text(), encoding="utf-8")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(glove_module, "_write_cache", refuse)
    assert_vectors(load_glove(path))


def test_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="glove.6B.50d.txt"):
        load_glove(tmp_path / "glove.6B.50d.txt")


@pytest.mark.parametrize(
    "content",
    [
        "hello world foo\nbar baz qux\n",
        "the 1 2 3\ncat 4 5\n",
        "5 3\nthe 1 2 3\n",
        "",
        bytes(range(256)) * 4,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    ],
    ids=["words", "ragged", "truncated-word2vec", "empty", "binary", "png"],
)
def test_garbage_file(tmp_path: Path, content):
    path = tmp_path / "garbage.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="garbage.txt"):
        load_glove(path)
    assert not cache_path(path).exists()
