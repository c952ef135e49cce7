"""Tests of semsearch.routes.baselines: text -> image retrieval by reading the images' captions.

The tiny corpus below has three images; every expected score was worked out by hand
(``r = 1/sqrt(2)``). Image 30 has a single caption: when that caption is the query, the
image has nothing left to read and scores -inf.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from gensim.models import KeyedVectors

from semsearch.routes.baselines import (
    caption_baseline_scores,
    caption_image_scores,
    caption_to_image_retrieval,
    caption_vectors,
    word_counts,
)
from semsearch.coco import CocoCaptions, ImageInfo, UnknownIdError
from semsearch.dataset import join
from semsearch.descriptors import Descriptors
from semsearch.text import TextEmbedder, inverse_document_frequency, tokenize

R = 1 / math.sqrt(2)
INF = -np.inf
TEXTS = ["cat dog", "cat", "dog", "bird", "cat bird"]
IMAGES = np.array([0, 0, 1, 1, 2])  # image 10 has captions 0, 1; image 20 has 2, 3; image 30 has 4


def tiny_coco() -> CocoCaptions:
    images = {i: ImageInfo(i, f"{i:012d}.jpg", "") for i in (10, 20, 30)}
    captions = {c + 1: (int(10 * (IMAGES[c] + 1)), TEXTS[c]) for c in range(len(TEXTS))}
    return CocoCaptions(images, captions)


def tiny_glove() -> KeyedVectors:
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(["cat", "dog", "bird"], np.array([[1, 0], [0, 1], [0, -1]], dtype=np.float32))
    return kv


def all_scores(vectors, images=IMAGES, n_images=None, reduce="mean", chunk_size=512) -> np.ndarray:
    chunks = list(caption_image_scores(vectors, images, n_images, reduce=reduce, chunk_size=chunk_size))
    assert [rows.start for rows, _ in chunks] == list(range(0, len(images), chunk_size))
    return np.vstack([scores for _, scores in chunks])


# Rows: queries (captions 0..4); columns: images 10, 20, 30.
# one-hot: cos(cat dog, cat) = cos(cat dog, dog) = cos(cat, cat bird) = cos(bird, cat bird) = r,
#          cos(cat dog, cat bird) = 1/2, every other pair 0.
ONEHOT = {
    "mean": [[R, R / 2, 0.5], [R, 0, R], [R / 2, 0, 0], [0, 0, R], [(0.5 + R) / 2, R / 2, INF]],
    "max": [[R, R, 0.5], [R, 0, R], [R, 0, 0], [0, 0, R], [R, R, INF]],
}
# TF-IDF with idf cat 3, dog 4, bird 4: "cat dog" = (0, .6, .8), "cat bird" = (.8, .6, 0).
TFIDF_IDF = {"cat": 3.0, "dog": 4.0, "bird": 4.0}
TFIDF = {
    "mean": [[0.6, 0.4, 0.36], [0.6, 0, 0.6], [0.4, 0, 0], [0, 0, 0.8], [0.48, 0.4, INF]],
    "max": [[0.6, 0.8, 0.36], [0.6, 0, 0.6], [0.8, 0, 0], [0, 0, 0.8], [0.6, 0.8, INF]],
}
# GloVe, every weight 1, cat (1, 0), dog (0, 1), bird (0, -1):
# "cat dog" = (r, r), "cat" = (1, 0), "dog" = (0, 1), "bird" = (0, -1), "cat bird" = (r, -r).
GLOVE = {
    "mean": [[R, 0, 0], [R, 0, R], [R / 2, -1, -R], [-R / 2, -1, R], [R / 2, 0, INF]],
    "max": [[R, R, 0], [R, 0, R], [R, -1, -R], [0, -1, R], [R, R, INF]],
}


def hand_vectors(method):
    if method == "glove":
        return caption_vectors(TEXTS, "glove", text_encoder=TextEmbedder({w: 1.0 for w in TFIDF_IDF}, tiny_glove()))
    return caption_vectors(TEXTS, method, idf=TFIDF_IDF)


@pytest.mark.parametrize("method, expected", [("onehot", ONEHOT), ("tfidf", TFIDF), ("glove", GLOVE)])
@pytest.mark.parametrize("reduce", ["mean", "max"])
@pytest.mark.parametrize("chunk_size", [1, 2, 512])
def test_scores_by_hand(method, expected, reduce, chunk_size):
    scores = all_scores(hand_vectors(method), reduce=reduce, chunk_size=chunk_size)
    assert scores.dtype == np.float32 and scores.shape == (5, 3)
    np.testing.assert_allclose(scores, np.array(expected[reduce]), atol=1e-6)


@pytest.mark.parametrize(
    "method, reduce, ranks",
    [
        # rank = number of images scored at least as high as the target (ties count against)
        ("onehot", "mean", [1, 2, 3, 3, 3]),
        ("onehot", "max", [2, 2, 3, 3, 3]),
        ("glove", "mean", [1, 2, 3, 3, 3]),
        ("glove", "max", [2, 2, 3, 3, 3]),
    ],
)
def test_retrieval_scores_by_hand(method, reduce, ranks):
    glove = TextEmbedder({w: 1.0 for w in TFIDF_IDF}, tiny_glove()) if method == "glove" else None
    image_ids = [30, 10, 20, 10]  # unsorted, repeated: the split is the set {10, 20, 30}
    result = caption_baseline_scores(tiny_coco(), image_ids, method=method, reduce=reduce, text_encoder=glove, ks=(1, 2))
    ranks = np.array(ranks)
    assert result.recall == {1: np.mean(ranks <= 1), 2: np.mean(ranks <= 2)}
    assert result.median_rank == np.median(ranks)
    assert result.mean_reciprocal_rank == pytest.approx(np.mean(1 / ranks))
    assert (result.n_queries, result.n_images) == (5, 3)


def test_idf_is_fitted_on_the_whole_corpus_given():
    # Query "x y" of image 10 reads "x" there and "y", "y w" at image 20. Over the searched
    # captions alone "x" is the rarer word and image 10 wins; image 30, not searched, makes
    # "x" common in the corpus, so "y" weighs more and image 20 wins.
    texts = {10: ["x y", "x"], 20: ["y", "y w"], 30: ["x", "x", "x", "x"]}
    images = {i: ImageInfo(i, "", "") for i in texts}
    coco = CocoCaptions(images, dict(enumerate(((i, t) for i in texts for t in texts[i]), start=1)))
    searched, targets = texts[10] + texts[20], np.array([0, 0, 1, 1])
    corpus_idf = inverse_document_frequency(coco.captions(coco.caption_ids))

    result = caption_baseline_scores(coco, [10, 20], method="tfidf")
    assert result == caption_to_image_retrieval(searched, targets, method="tfidf", idf=corpus_idf)
    assert result.recall[1] == 0.5
    assert caption_to_image_retrieval(searched, targets, method="tfidf").recall[1] == 1.0  # IDF of the 4 alone


def test_own_caption_is_never_read():
    # Every caption has words no other caption has: once the query is excluded, no image
    # shares a word with it, all scores tie at 0, and the target ranks last.
    texts = ["zebra", "yak", "walrus", "vole", "tapir", "seal"]
    images = np.array([0, 0, 1, 1, 2, 2])
    for reduce in ("mean", "max"):
        scores = all_scores(caption_vectors(texts, "onehot"), images, reduce=reduce)
        np.testing.assert_array_equal(scores, np.zeros((6, 3)))
        assert caption_to_image_retrieval(texts, images, reduce=reduce).median_rank == 3


def test_mean_over_the_other_captions_divides_by_their_number():
    # Image 0: the query "a" and two others, "a" (cos 1) and "b" (cos 0): mean 1/2, not 1/3.
    scores = all_scores(caption_vectors(["a", "a", "b", "a"], "onehot"), np.array([0, 0, 0, 1]), reduce="mean")
    assert scores[0].tolist() == [0.5, 1.0]


def test_image_without_captions_ranks_last():
    # Image 1 of 3 has no caption: it cannot be read, scores -inf, and is never found.
    scores = all_scores(caption_vectors(["a b", "a", "b"], "onehot"), np.array([0, 0, 2]), n_images=3)
    assert np.isneginf(scores[:, 1]).all()


def test_word_counts_and_vectors():
    counts = word_counts(["Cat, cat dog!", "bird"], {"cat": 0, "dog": 1})
    assert counts.toarray().tolist() == [[2, 1], [0, 0]]
    tfidf = caption_vectors(["cat cat dog", "zebra"], "tfidf", idf={"cat": 1.0, "dog": 3.0})
    np.testing.assert_allclose(tfidf.toarray(), [[2 / math.sqrt(13), 3 / math.sqrt(13)], [0, 0]], rtol=1e-6)
    onehot = caption_vectors(["cat cat dog"], "onehot")
    np.testing.assert_allclose(onehot.toarray(), [[R, R]], rtol=1e-6)


def test_errors():
    vectors = caption_vectors(TEXTS, "onehot")
    with pytest.raises(ValueError, match="method must be one of"):
        caption_vectors(TEXTS, "bm25")
    with pytest.raises(ValueError, match="reduce must be one of"):
        list(caption_image_scores(vectors, IMAGES, reduce="median"))
    with pytest.raises(ValueError, match="one image per caption"):
        list(caption_image_scores(vectors, IMAGES[:3]))
    with pytest.raises(ValueError, match="must lie in"):
        list(caption_image_scores(vectors, IMAGES, n_images=2))
    with pytest.raises(ValueError, match="chunk_size"):
        list(caption_image_scores(vectors, IMAGES, chunk_size=0))
    with pytest.raises(ValueError, match="no captions"):
        caption_to_image_retrieval([], np.array([], dtype=int))
    with pytest.raises(ValueError, match="a split needs at least one image"):
        caption_baseline_scores(tiny_coco(), [])
    with pytest.raises(UnknownIdError):
        caption_baseline_scores(tiny_coco(), [10, 99])


# --------------------------------------------------------------------------- real data
def reference_scores(texts, images, n_images, method, reduce, idf=None) -> np.ndarray:
    """Brute force in float64: dense vectors, a Python loop over queries and images."""
    vocabulary = sorted({t for text in texts for t in tokenize(text)})
    vectors = np.zeros((len(texts), len(vocabulary)))
    for row, text in enumerate(texts):
        for token in tokenize(text):
            column = vocabulary.index(token)
            if method == "onehot":
                vectors[row, column] = 1.0
            else:
                vectors[row, column] += idf.get(token, 0.0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    scores = np.full((len(texts), n_images), -np.inf)
    for q in range(len(texts)):
        for k in range(n_images):
            sims = [vectors[q] @ vectors[c] for c in range(len(texts)) if images[c] == k and c != q]
            if sims:
                scores[q, k] = np.mean(sims) if reduce == "mean" else np.max(sims)
    return scores


@pytest.fixture(scope="module")
def real(real_data):
    annotations = real_data / "coco" / "annotations"
    coco = CocoCaptions.load(annotations / "captions_val2017.json", annotations / "captions_train2017_mini.json")
    data = join(coco, Descriptors.load(real_data / "descriptors" / "effnet_lite0_coco_mini.pkl"), warn=False)
    return coco, data


@pytest.mark.parametrize("method", ["onehot", "tfidf"])
@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_real_scores_equal_a_brute_force_reference(real, method, reduce):
    coco, data = real
    image_ids = data.image_ids[::8]  # 30 images, about 150 captions
    caption_ids = coco.caption_ids_of_images(image_ids)
    texts = coco.captions(caption_ids)
    images = np.searchsorted(image_ids, coco.images_of(caption_ids))
    idf = inverse_document_frequency(coco.captions(coco.caption_ids))
    vectors = caption_vectors(texts, method, idf=idf)
    scores = all_scores(vectors, images, len(image_ids), reduce=reduce, chunk_size=64)
    np.testing.assert_allclose(scores, reference_scores(texts, images, len(image_ids), method, reduce, idf), atol=1e-5)


@pytest.mark.parametrize("method", ["onehot", "tfidf", "glove"])
@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_real_baselines_beat_chance_clearly(real, method, reduce):
    coco, data = real
    result = caption_baseline_scores(coco, data.image_ids, method=method, reduce=reduce)
    assert (result.n_queries, result.n_images) == (len(coco.caption_ids_of_images(data.image_ids)), 239)
    assert result.recall[1] > 20 * result.chance["recall@1"]  # chance 0.004
    assert result.recall[10] > 8 * result.chance["recall@10"]  # chance 0.042
    assert result.median_rank < result.chance["median_rank"] / 10
