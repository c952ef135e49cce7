"""Tests for semsearch.bundle: saving and loading model + text embedder + database together."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gensim.models import KeyedVectors

from semsearch.bundle import DATABASE_FILE, MANIFEST_FILE, MODEL_FILE, TEXT_FILE, load_bundle, read_info, save_bundle
from semsearch.database import ImageDatabase
from semsearch.descriptors import Descriptors
from semsearch.model import Autoembedder
from semsearch.text import TextEmbedder, UnknownQueryError

WORDS = ["dog", "cat", "frisbee", "beach", "kitchen", "a", "on", "the"]


@pytest.fixture(scope="module")
def glove():
    """A tiny stand-in for GloVe: 8 words, 5-d, so no 400k-word load."""
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(WORDS, np.random.default_rng(0).normal(size=(len(WORDS), 5)).astype(np.float32))
    return kv


@pytest.fixture
def parts(glove):
    embedder = TextEmbedder.fit(["a dog on the beach", "a cat in the kitchen", "a dog with a frisbee"], glove)
    model = Autoembedder(8, 5, seed=1)
    descriptors = Descriptors({i: np.random.default_rng(i).normal(size=(1, 8)) for i in (139, 285, 632, 724)})
    database = ImageDatabase.build(model, descriptors, embedder)
    return model, embedder, database


def test_round_trip(tmp_path, parts, glove):
    model, embedder, database = parts
    folder = save_bundle(tmp_path / "m", model, embedder, database, info={"epochs": 3, "validation_image_ids": [139]})
    assert sorted(p.name for p in folder.iterdir()) == sorted([MODEL_FILE, TEXT_FILE, DATABASE_FILE, MANIFEST_FILE, "text_vectors.npz"])

    model2, embedder2, database2 = load_bundle(folder, glove)
    np.testing.assert_array_equal(model2.dense.weight.data, model.dense.weight.data)
    np.testing.assert_array_equal(model2.dense.bias.data, model.dense.bias.data)
    texts = ["a dog on the beach", "the cat", "frisbee"]
    np.testing.assert_allclose(embedder2(texts), embedder(texts), rtol=1e-6)
    np.testing.assert_array_equal(database2.keys, database.keys)
    np.testing.assert_allclose(database2.vectors, database.vectors)
    ids, scores = database2.query("a dog on the beach", k=4)
    ids0, scores0 = database.query("a dog on the beach", k=4)
    np.testing.assert_array_equal(ids, ids0)
    np.testing.assert_allclose(scores, scores0)
    with pytest.raises(UnknownQueryError):
        database2.query("zebra", k=2)

    manifest = read_info(folder)
    assert manifest["info"] == {"epochs": 3, "validation_image_ids": [139]}
    assert (manifest["input_dim"], manifest["dim"], manifest["n_images"]) == (8, 5, 4)


def test_saving_again_replaces_the_bundle(tmp_path, parts, glove):
    model, embedder, database = parts
    save_bundle(tmp_path / "m", model, embedder, database)
    other = Autoembedder(8, 5, seed=2)
    save_bundle(tmp_path / "m", other, embedder, ImageDatabase(database.keys, database.vectors[::-1], embedder))
    model2, _, _ = load_bundle(tmp_path / "m", glove)
    np.testing.assert_array_equal(model2.dense.weight.data, other.dense.weight.data)


def test_mixed_files_are_refused(tmp_path, parts, glove):
    model, embedder, database = parts
    folder = save_bundle(tmp_path / "m", model, embedder, database)
    Autoembedder(8, 5, seed=3).save(folder / MODEL_FILE)  # a file from another save
    with pytest.raises(ValueError, match="mixes files"):
        load_bundle(folder, glove)


def test_unfinished_or_missing_bundles_are_file_not_found(tmp_path, parts, glove):
    model, embedder, database = parts
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_bundle(tmp_path / "nowhere", glove)
    folder = save_bundle(tmp_path / "m", model, embedder, database)
    (folder / DATABASE_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"missing {DATABASE_FILE}"):
        load_bundle(folder, glove)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="no bundle.json"):
        load_bundle(folder, glove)


def test_a_manifest_of_another_kind_is_a_value_error(tmp_path, parts, glove):
    model, embedder, database = parts
    folder = save_bundle(tmp_path / "m", model, embedder, database)
    (folder / MANIFEST_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a semsearch-bundle-1 manifest"):
        load_bundle(folder, glove)
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_bundle(folder, glove)


def test_parts_that_do_not_fit_are_refused(tmp_path, parts):
    _, embedder, database = parts
    with pytest.raises(ValueError, match="do not fit together"):
        save_bundle(tmp_path / "m", Autoembedder(8, 7), embedder, database)
    assert not (tmp_path / "m").exists()


def test_a_file_in_the_way_is_refused(tmp_path, parts):
    (tmp_path / "m").write_text("not a folder")
    with pytest.raises(FileExistsError):
        save_bundle(tmp_path / "m", *parts)


def test_a_folder_keeps_its_vocabulary_vectors_and_needs_no_glove(tmp_path, parts, glove, monkeypatch):
    import semsearch.glove as glove_module

    model, text_encoder, database = parts
    folder = save_bundle(tmp_path / "m", model, text_encoder, database)
    assert "text_vectors.npz" in read_info(folder)["files"]

    def no_glove(*args, **kwargs):
        raise AssertionError("loading a model folder must not load GloVe")

    monkeypatch.setattr(glove_module, "load_glove", no_glove)
    _, loaded, database2 = load_bundle(folder)
    queries = ["a dog on the beach", "a cat with a frisbee"]
    np.testing.assert_array_equal(loaded(queries), text_encoder(queries))
    np.testing.assert_array_equal(database2.query("a dog", k=2)[0], database.query("a dog", k=2)[0])


def test_an_older_folder_without_vectors_still_loads(tmp_path, parts, glove):
    import json

    model, text_encoder, database = parts
    folder = save_bundle(tmp_path / "m", model, text_encoder, database)
    (folder / "text_vectors.npz").unlink()
    manifest = json.loads((folder / "bundle.json").read_text())
    del manifest["files"]["text_vectors.npz"]
    (folder / "bundle.json").write_text(json.dumps(manifest))
    _, loaded, _ = load_bundle(folder, glove)
    np.testing.assert_array_equal(loaded(["a dog"]), text_encoder(["a dog"]))


def test_an_unlisted_vectors_file_is_refused(tmp_path, parts):
    import json

    model, text_encoder, database = parts
    folder = save_bundle(tmp_path / "m", model, text_encoder, database)
    manifest = json.loads((folder / "bundle.json").read_text())
    del manifest["files"]["text_vectors.npz"]
    (folder / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="text_vectors.npz is not listed"):
        load_bundle(folder)
