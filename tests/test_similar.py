"""Image -> image search, checked against a NumPy brute-force cosine ranking.

The unseen-image path (ResNet18) runs only where torch and semsearch.features work,
with random weights (weights=None: nothing is downloaded).
"""
import shutil
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.coco import CocoCaptions, UnknownIdError
from semsearch.database import ImageDatabase
from semsearch.dataset import join
from semsearch.descriptors import Descriptors
from semsearch.model import Autoembedder
from semsearch.common.keys import coco_id_from_filename as coco_id_of_file
from semsearch.routes.similar import cosine_scores, similar_images
from semsearch.text import TextEmbedder
from semsearch.training import train

PKL = "descriptors/effnet_lite0_coco_mini.pkl"
IMAGES = "coco/images"


def brute_force(query, vectors):
    """Cosine of query (D,) to every row (N, D), in float64, by the textbook formula."""
    q = np.asarray(query, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    return v @ q / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))


def assert_is_top_k(ids, scores, all_ids, reference, k):
    """ids/scores are a best-first top k of ``reference`` (ties may come in either order)."""
    by_id = dict(zip(all_ids.tolist(), reference))
    assert len(ids) == min(k, len(all_ids)) and len(set(ids.tolist())) == len(ids)
    np.testing.assert_allclose(scores, [by_id[i] for i in ids.tolist()], atol=1e-5)
    np.testing.assert_allclose(scores, -np.sort(-reference)[: len(ids)], atol=1e-5)


def random_descriptors(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return Descriptors(dict(zip(range(100, 100 + n), rng.random((n, d)) + 0.01)))


# --------------------------------------------------------------------------- descriptor space
@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 40), d=st.integers(1, 16), k=st.integers(1, 50), seed=st.integers(0, 10**6), data=st.data())
def test_descriptor_space_matches_brute_force(n, d, k, seed, data):
    descriptors = random_descriptors(n, d, seed)
    query_id = data.draw(st.sampled_from(descriptors.ids.tolist()))
    reference = brute_force(descriptors.vectors_of([query_id])[0], descriptors.vectors)

    ids, scores = similar_images(query_id, descriptors, k=k, exclude_self=False)
    assert_is_top_k(ids, scores, descriptors.ids, reference, k)

    ids, scores = similar_images(query_id, descriptors, k=k)  # exclude_self=True
    others = descriptors.ids != query_id
    assert query_id not in ids.tolist()
    assert_is_top_k(ids, scores, descriptors.ids[others], reference[others], k)
    assert ids.dtype == np.int64 and scores.dtype == np.float32


def test_descriptor_query_array_equals_id_query():
    descriptors = random_descriptors(30, 8)
    by_id = similar_images(105, descriptors, k=5, exclude_self=False)
    by_vector = similar_images(3.0 * descriptors.vectors_of([105])[0], descriptors, k=5)
    np.testing.assert_array_equal(by_id[0], by_vector[0])
    np.testing.assert_allclose(by_id[1], by_vector[1], rtol=1e-6)
    assert by_vector[0][0] == 105  # an array names no image, so nothing is excluded


def test_cosine_scores_zero_rows_and_zero_query():
    vectors = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(cosine_scores(np.array([2.0, 0.0]), vectors), [1.0, 0.0, np.sqrt(0.5)], rtol=1e-6)
    with pytest.raises(ValueError, match="all zeros"):
        cosine_scores(np.zeros(2), vectors)


# --------------------------------------------------------------------------- learned space
@pytest.fixture(scope="module")
def learned():
    descriptors = random_descriptors(60, 12, seed=3)
    model = Autoembedder(12, output_dim=5, seed=1)
    return descriptors, model, ImageDatabase.build(model, descriptors)


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 70), row=st.integers(0, 59))
def test_learned_space_matches_brute_force(learned, k, row):
    descriptors, model, database = learned
    query_id = int(descriptors.ids[row])
    embedded = model.embed(descriptors.vectors)
    reference = brute_force(embedded[row], embedded)
    others = descriptors.ids != query_id
    for kwargs in (dict(database=database), dict(model=model), dict(database=database, model=model)):
        ids, scores = similar_images(query_id, descriptors, k=k, space="learned", **kwargs)
        assert_is_top_k(ids, scores, descriptors.ids[others], reference[others], k)


def test_learned_space_unseen_descriptor_needs_the_model(learned):
    descriptors, model, database = learned
    new = np.random.default_rng(9).random(12)
    with pytest.raises(ValueError, match="not in the database: pass model="):
        similar_images(new, descriptors, space="learned", database=database)
    ids, scores = similar_images(new, descriptors, k=4, space="learned", database=database, model=model)
    reference = brute_force(model.embed(new)[0], database.vectors)
    assert_is_top_k(ids, scores, database.keys, reference, 4)


def test_learned_space_needs_model_or_database(learned):
    descriptors, _, _ = learned
    with pytest.raises(ValueError, match='space="learned" needs database='):
        similar_images(100, descriptors, space="learned")


# --------------------------------------------------------------------------- errors and queries
def test_clear_errors(tmp_path):
    descriptors = random_descriptors(10, 6)
    with pytest.raises(UnknownIdError, match="COCO image id 5 has no descriptor"):
        similar_images(5, descriptors)
    with pytest.raises(ValueError, match="k must be"):
        similar_images(100, descriptors, k=0)
    with pytest.raises(ValueError, match="space must be one of"):
        similar_images(100, descriptors, space="pixels")
    with pytest.raises(ValueError, match="has 4 values, but the database descriptors have 6"):
        similar_images(np.ones(4), descriptors)
    with pytest.raises(ValueError, match="NaN"):
        similar_images(np.full(6, np.nan), descriptors)
    with pytest.raises(ValueError, match="all zeros"):
        similar_images(np.zeros(6), descriptors)
    with pytest.raises(FileNotFoundError, match="query image not found"):
        similar_images(tmp_path / "missing.jpg", descriptors)
    with pytest.raises(TypeError, match="query must be"):
        similar_images(1.5, descriptors)
    with pytest.raises(TypeError, match="query must be"):
        similar_images(True, descriptors)
    with pytest.raises(ValueError, match="no other image"):
        similar_images(100, descriptors.subset([100]))


def test_coco_file_names():
    assert coco_id_of_file("data/coco/images/000000000139.jpg") == 139
    assert coco_id_of_file("COCO_val2014_000000581929.jpg") == 581929
    assert coco_id_of_file("IMG_0139.jpg") is None  # a holiday photo is not COCO image 139
    assert coco_id_of_file("000000000139.txt") is None


def test_coco_named_file_uses_the_stored_descriptor(tmp_path):
    descriptors = random_descriptors(10, 6)
    path = tmp_path / "000000000104.jpg"
    path.write_bytes(b"not even an image: it is never opened")
    by_path = similar_images(path, descriptors, k=3)
    by_id = similar_images(104, descriptors, k=3)
    np.testing.assert_array_equal(by_path[0], by_id[0])
    assert 104 not in by_path[0].tolist()


def fake_features(monkeypatch, dim=6, describe=None):
    """Stand in for semsearch.features (no torch needed); None: as if it could not be imported."""
    import semsearch

    module = None if dim is None else types.SimpleNamespace(describe=describe)
    monkeypatch.setitem(sys.modules, "semsearch.features", module)
    if module is None:
        monkeypatch.delattr(semsearch, "features", raising=False)
    else:
        monkeypatch.setattr(semsearch, "features", module, raising=False)


def test_unseen_image_is_described_then_searched(tmp_path, monkeypatch):
    descriptors = random_descriptors(10, 6)
    vector = np.random.default_rng(1).random(6).astype(np.float32)
    calls = []

    def describe(image, backbone, *, pretrained, device):  # gets the image opened by semsearch.common.images.open_image
        calls.append((image.mode, image.size, backbone, pretrained, device))
        return vector

    fake_features(monkeypatch, 6, describe)
    path = tmp_path / "holiday.jpg"
    Image.new("L", (5, 4)).save(path, format="JPEG")
    descriptors.backbone_info = None
    # 6-d: no known backbone, so ResNet18 is used; pretend it gives 6 values
    monkeypatch.setattr("semsearch.routes.similar.backbone_info", lambda name: {"backbone": name, "dim": 6})
    ids, scores = similar_images(path, descriptors, k=4, weights=None, device="cpu")
    assert calls == [("RGB", (5, 4), "resnet18", False, "cpu")]
    assert_is_top_k(ids, scores, descriptors.ids, brute_force(vector, descriptors.vectors), 4)


def test_unseen_image_wrong_size_is_caught_before_describing(tmp_path, monkeypatch):
    def describe(image, **kwargs):
        raise AssertionError("the network should not run")

    fake_features(monkeypatch, 512, describe)
    path = tmp_path / "holiday.jpg"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="resnet18 descriptor of .*holiday.jpg has 512 values, but the database descriptors have 6"):
        similar_images(path, random_descriptors(10, 6))


def test_unseen_image_without_the_features_extra(tmp_path, monkeypatch):
    path = tmp_path / "holiday.jpg"
    Image.new("RGB", (5, 4)).save(path, format="JPEG")
    fake_features(monkeypatch, None)  # "from . import features" raises ImportError
    with pytest.raises(ImportError, match=r"holiday.jpg is not in the database.*semsearch\[features\]"):
        similar_images(path, random_descriptors(10, 6))

    def describe(image, *args, **kwargs):
        raise ImportError("semsearch.features needs torch and torchvision")

    fake_features(monkeypatch, 6, describe)  # the module imports, torch does not
    monkeypatch.setattr("semsearch.routes.similar.backbone_info", lambda name: {"backbone": name, "dim": 6})
    with pytest.raises(ImportError, match=r"holiday.jpg is not in the database.*semsearch\[features\]"):
        similar_images(path, random_descriptors(10, 6))


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_descriptors(real_data: Path) -> Descriptors:
    return Descriptors.load(real_data / PKL)


def test_real_every_image_is_its_own_nearest_neighbour(real_descriptors):
    for image_id in real_descriptors.ids:
        ids, scores = similar_images(int(image_id), real_descriptors, k=2, exclude_self=False)
        assert ids[0] == image_id
        assert scores[0] == pytest.approx(1.0, abs=1e-5)
        assert scores[1] < scores[0] - 1e-4  # no duplicate images in the set


def test_real_descriptor_space_matches_brute_force(real_descriptors):
    for image_id in real_descriptors.ids[::40]:
        reference = brute_force(real_descriptors.vectors_of([image_id])[0], real_descriptors.vectors)
        others = real_descriptors.ids != image_id
        ids, scores = similar_images(int(image_id), real_descriptors, k=9)
        assert_is_top_k(ids, scores, real_descriptors.ids[others], reference[others], 9)


def test_real_learned_space_after_training(real_data, real_descriptors):
    coco = CocoCaptions.load(real_data / "coco/annotations/captions_val2017.json",
                             real_data / "coco/annotations/captions_train2017_mini.json")
    data = join(coco, real_descriptors, warn=False)
    embedder = TextEmbedder.fit(data.captions.captions(data.captions.caption_ids))
    model = Autoembedder(real_descriptors.dim, seed=0)
    train(model, data, embedder, data.image_ids, epochs=5, progress=False)
    database = ImageDatabase.build(model, real_descriptors, embedder)
    embedded = model.embed(real_descriptors.vectors)
    for image_id in real_descriptors.ids[::60]:
        row = int(np.flatnonzero(real_descriptors.ids == image_id)[0])
        ids, scores = similar_images(int(image_id), real_descriptors, k=5, space="learned", database=database,
                                     exclude_self=False)
        assert ids[0] == image_id and scores[0] == pytest.approx(1.0, abs=1e-5)
        assert_is_top_k(ids, scores, real_descriptors.ids, brute_force(embedded[row], embedded), 5)


# --------------------------------------------------------------------------- unseen images, ResNet18
@pytest.fixture(scope="module")
def features():
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    try:
        from semsearch import features
    except ImportError as error:
        pytest.skip(f"semsearch.features does not import: {error}")
    return features


def test_unseen_image_is_described_with_resnet18(features, real_data, tmp_path):
    files = sorted((real_data / IMAGES).glob("*.jpg"))[:2]
    resnet = Descriptors({features.image_id_from_path(f): features.describe(f, "resnet18", pretrained=False, device="cpu")
                          for f in files})
    assert resnet.dim == 512
    holiday = tmp_path / "holiday.jpg"  # the same picture under a name that is not COCO's
    shutil.copy(files[1], holiday)
    ids, scores = similar_images(holiday, resnet, k=2, weights=None, device="cpu")
    assert ids[0] == features.image_id_from_path(files[1])  # nothing excluded: it is "unseen"
    assert scores[0] == pytest.approx(1.0, abs=1e-4)
    assert len(ids) == 2 and scores[1] < scores[0] - 1e-4

    from PIL import Image

    with Image.open(files[0]) as image:
        ids, scores = similar_images(image, resnet, k=1, weights=None, device="cpu")
    assert ids[0] == features.image_id_from_path(files[0]) and scores[0] == pytest.approx(1.0, abs=1e-4)


def test_unseen_image_is_described_with_the_databases_own_backbone(features, real_data, real_descriptors, tmp_path):
    """The shared descriptors are EfficientNet-Lite0's: an unseen copy of one image finds it."""
    original = sorted((real_data / IMAGES).glob("*.jpg"))[0]
    holiday = tmp_path / "holiday.jpg"
    shutil.copy(original, holiday)
    ids, scores = similar_images(holiday, real_descriptors, k=2, device="cpu")
    assert ids[0] == features.image_id_from_path(original)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)  # the pretrained backbone reproduces the pickle
