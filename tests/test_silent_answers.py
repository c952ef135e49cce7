"""Silent wrong answers refused or warned about (issue 22, item 7): descriptors of another size kept
on re-index, text vectors cut or reordered, queries of stop words only, float/bool/huge ids, and
validation images that are also training images."""
from __future__ import annotations

import hashlib
import json
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

from semsearch.bundle import load_bundle, save_bundle
from semsearch.errors import InputError
from semsearch.photos.folder import PhotoDatabase, index_folder, load_search
from test_one_bad_file import _small_parts
from test_photo_paths import _snapshot, fake_model_dir
from test_photos import FakeBackbone


# --------------------------------------------------------------------------- photo databases


def _other_size_model(folder):
    """A model that also says its backbone is 'fake', but takes 8-d descriptors (not 12)."""
    from semsearch.database import ImageDatabase
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder

    _, encoder, _ = _small_parts()
    model = Autoembedder(8, 5, seed=2)
    coco = Descriptors({i: np.random.default_rng(i).random((1, 8)) for i in (139, 285)})
    return save_bundle(folder, model, encoder, ImageDatabase.build(model, coco, encoder), info={"backbone": "fake"})


class SmallFake(FakeBackbone):
    """8 numbers per image (the first 8 of FakeBackbone's 12)."""

    def __init__(self):
        super().__init__(dim=8)

    def describe(self, images):
        return super().describe(images)[:, :8]


@pytest.fixture
def indexed(tmp_path):
    root = tmp_path / "pics"
    root.mkdir()
    for n in range(3):
        Image.new("RGB", (40, 30), (80 * n, 50, 50)).save(root / f"{n}.png")
    db = tmp_path / "db.npz"
    index_folder(root, db, model=fake_model_dir(tmp_path / "model12"), backbone=FakeBackbone(), progress=False)
    return root, db


def test_reindexing_with_a_model_of_another_descriptor_size_is_refused(indexed, tmp_path):
    root, db = indexed
    other = _other_size_model(tmp_path / "model8")
    (root / "new.png").write_bytes((root / "0.png").read_bytes())
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match=r"db\.npz holds 12-d descriptors but the model .*model8 takes 8-d ones: "
                                         r"index into a new database file"):
        index_folder(root, db, model=other, backbone=SmallFake(), progress=False)
    assert _snapshot(tmp_path) == before
    assert PhotoDatabase.load(db).descriptors.shape == (3, 12)


def test_searching_with_a_model_of_another_descriptor_size_is_refused(indexed, tmp_path):
    root, db = indexed
    with pytest.raises(InputError, match=r"holds 12-d descriptors but the model .*model8 takes 8-d ones"):
        load_search(db, _other_size_model(tmp_path / "model8"))


# --------------------------------------------------------------------------- text vectors


def _rewrite_vectors(folder, change) -> None:
    """Change text_vectors.npz and update bundle.json's checksum, as a hand-made folder would."""
    path = folder / "text_vectors.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["files"]["text_vectors.npz"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "bundle.json").write_text(json.dumps(manifest))


def _reorder(arrays):
    arrays["vectors"] = arrays["vectors"][::-1].copy()  # the words stay: each gets another word's vector


def _cut(arrays):
    arrays["words"], arrays["vectors"] = arrays["words"][:-1], arrays["vectors"][:-1]


@pytest.mark.parametrize("change", [_reorder, _cut], ids=["reordered", "cut"])
def test_a_model_folder_whose_text_vectors_were_changed_is_refused(tmp_path, change):
    folder = save_bundle(tmp_path / "model", *_small_parts())
    load_bundle(folder)  # intact: loads
    _rewrite_vectors(folder, change)
    before = _snapshot(tmp_path)
    with pytest.raises(InputError, match=r"text\.json: the word vectors given \(.*text_vectors\.npz\) are not the "
                                         r"ones it was fitted with .*its rankings would be wrong"):
        load_bundle(folder)
    assert _snapshot(tmp_path) == before


# --------------------------------------------------------------------------- queries


def test_a_query_of_stop_words_only_is_answered_with_a_warning(capsys):
    from semsearch.cli.commands import main

    assert main(["search", "a the of", "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert "semsearch: warning: the query 'a the of' has only stop words (a, the, of)" in captured.err
    assert "top 2 of" in captured.out
    assert main(["search", "a dog on the beach", "-k", "2"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_web_api_says_so_too():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.web.app import create_app

    from gensim.models import KeyedVectors

    from semsearch.database import ImageDatabase
    from semsearch.text import TextEmbedder

    glove = KeyedVectors(vector_size=5)
    words = ["dog", "cat", "the", "of", "a"]
    glove.add_vectors(words, np.random.default_rng(0).normal(size=(5, 5)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog", "the cat", "of a dog"], glove)
    database = ImageDatabase([1, 2, 3], np.random.default_rng(1).normal(size=(3, 5)), encoder)
    client = TestClient(create_app(database, encoder))
    body = client.get("/api/search", params={"q": "the of", "k": 2}).json()
    assert len(body["results"]) == 2  # answered ...
    assert body["warning"] == ("the query 'the of' has only stop words (the, of): they sit near every image, "
                               "so its ranking says little")  # ... with a warning
    assert client.get("/api/search", params={"q": "a dog", "k": 2}).json()["warning"] is None


def test_a_compound_query_that_cancels_out_is_refused_by_explain_as_by_search():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semsearch.web.app import create_app

    model, encoder, database = _small_parts()
    client = TestClient(create_app(database, encoder))
    for path, params in (("/api/explain", {"q": "dog - dog", "key": "139"}), ("/api/search", {"q": "dog - dog"})):
        response = client.get(path, params=params)
        assert response.status_code == 422 and "cancel out" in response.json()["error"], (path, response.text)


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("key", [139.5, True, np.float64(139), 139.0, np.uint64(2**63 + 5)])
def test_descriptor_keys_that_are_not_integer_ids_are_refused(key):
    from semsearch.descriptors import Descriptors

    with pytest.raises(InputError, match="descriptor keys must be COCO image ids"):
        Descriptors({key: np.ones((1, 4)), 285: np.ones((1, 4))})


def test_a_descriptor_pickle_with_float_keys_is_refused(tmp_path):
    from semsearch.descriptors import Descriptors

    path = tmp_path / "features.pkl"
    with open(path, "wb") as f:
        pickle.dump({139.7: np.ones((1, 4), np.float32), 285.2: np.ones((1, 4), np.float32)}, f)
    with pytest.raises(InputError, match=r"a COCO image id must be an integer, got 139\.7"):
        Descriptors.load(path)


def test_uint64_ids_beyond_int64_are_refused_not_wrapped():
    from semsearch.common.checks import check_image_id, check_image_ids

    huge = np.array([139, 2**63 + 5], dtype=np.uint64)
    with pytest.raises(InputError, match="at most 9223372036854775807 \\(int64\\), got 9223372036854775813"):
        check_image_ids(huge)
    with pytest.raises(InputError, match="at most 9223372036854775807"):
        check_image_id(2**63)
    assert check_image_ids(np.array([139, 2**63 - 1], dtype=np.uint64)).tolist() == [139, 2**63 - 1]


def test_the_benchmark_adapter_refuses_float_ids():
    from semsearch.routes.benchmark import SearchAdapter

    model, encoder, _ = _small_parts()
    adapter = SearchAdapter(model, encoder)
    with pytest.raises((InputError, TypeError), match="must be an integer, got 139.5"):
        adapter.prepare_database([139.5, 285.0], np.ones((2, 12)))
    with pytest.raises(InputError, match="at most 9223372036854775807"):
        adapter.prepare_database(np.array([1, 2**64 - 1], dtype=np.uint64), np.ones((2, 12)))


# --------------------------------------------------------------------------- validation


def test_validation_images_that_are_training_images_are_warned_about(real_data):
    from semsearch.coco import CocoCaptions
    from semsearch.dataset import join
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder
    from semsearch.training import train

    coco = CocoCaptions.load(real_data / "coco/annotations/captions_val2017.json")
    data = join(coco, Descriptors.load(real_data / "descriptors/effnet_lite0_coco_mini.pkl"), warn=False)
    ids = np.asarray(data.image_ids)
    encoder = TextEmbedder.fit(data.captions.captions(data.captions.caption_ids))
    model = Autoembedder(data.descriptors.dim, seed=0)
    with pytest.warns(UserWarning, match=r"4 of the 4 validation images are also training images \(e\.g\. \d+\)"):
        train(model, data, encoder, ids[:30], ids[:4], epochs=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        train(Autoembedder(data.descriptors.dim, seed=0), data, encoder, ids[:30], ids[30:34], epochs=1, progress=False)
