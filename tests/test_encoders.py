"""Tests of semsearch.encoders.load_text_encoder: no MiniLM (torch, sentence-transformers) needed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from semsearch.routes import minilm
from semsearch.encoders import CLASSES, load_text_encoder, text_encoder_format
from semsearch.routes.minilm import MiniLMEncoder
from semsearch.text import TextEmbedder

MINILM_FORMAT = MiniLMEncoder.FORMAT


def tiny_glove() -> KeyedVectors:
    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["cat", "dog", "a"], np.array([[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [2.0, 0.0, 0.0]], dtype=np.float32))
    return kv


@pytest.mark.parametrize("weighting", ["idf", "mean", "sif"])
def test_loads_a_glove_text_encoder(tmp_path: Path, weighting: str):
    embedder = TextEmbedder.fit(["a cat", "a dog", "a cat and a dog", "dog dog"], tiny_glove(), weighting=weighting)
    path = tmp_path / "text.json"
    embedder.save(path)
    assert text_encoder_format(path) == "semsearch-text-2"
    again = load_text_encoder(path, tiny_glove())
    assert isinstance(again, TextEmbedder) and again.weighting == weighting and again.dim == 3
    texts = ["a cat", "the DOG!", "", "zebra"]
    np.testing.assert_array_equal(again(texts), embedder(texts))


@pytest.mark.parametrize(
    "content",
    [b'{"format": "semsearch-text-99", "model": "x"}', b'{"format": "semsearch-idf-1", "idf": {}}', b'{"format": null}'],
    ids=["future", "old", "null"],
)
def test_unknown_format(tmp_path: Path, content: bytes):
    path = tmp_path / "text.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="unknown text encoder format"):
        load_text_encoder(path)


@pytest.mark.parametrize(
    "content", [b'{"format": "semsearch-te', b"[1, 2]", b'{"model": "x"}', b"\xff\xfe\x00junk"], ids=["cut", "list", "no-format", "binary"]
)
def test_not_an_encoder_file(tmp_path: Path, content: bytes):
    path = tmp_path / "text.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="text.json"):
        load_text_encoder(path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="text.json"):
        load_text_encoder(tmp_path / "text.json")


def test_corrupt_glove_file_is_a_value_error(tmp_path: Path):
    path = tmp_path / "text.json"
    path.write_text(json.dumps({"format": "semsearch-text-2", "weights": {}}))
    with pytest.raises(ValueError, match="text.json"):
        load_text_encoder(path, tiny_glove())


def test_minilm_format_constant_agrees():
    assert CLASSES[MINILM_FORMAT] is MiniLMEncoder and CLASSES[TextEmbedder.FORMAT] is TextEmbedder


def test_minilm_without_the_extra_says_what_to_install(tmp_path: Path, monkeypatch):
    path = tmp_path / "text.json"
    path.write_text(json.dumps({"format": MINILM_FORMAT, "model": minilm.MODEL_NAME}))
    monkeypatch.setattr(minilm, "_models", {})  # no cached model
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # importing it raises ImportError
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(variable, "1")
    with pytest.raises(ImportError, match=r"pip install 'semsearch\[minilm\]'"):
        load_text_encoder(path)


def test_minilm_marker_with_another_model_is_refused(tmp_path: Path):
    path = tmp_path / "text.json"
    path.write_text(json.dumps({"format": MINILM_FORMAT, "model": "some-other-model"}))
    with pytest.raises(ValueError, match="some-other-model"):
        minilm.MiniLMEncoder.load(path)


def test_core_imports_need_no_torch():
    code = (
        "import sys, semsearch, semsearch.encoders, semsearch.routes.minilm, semsearch.training, semsearch.database\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
