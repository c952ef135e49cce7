"""The exercise checks catch the known traps, each with its own hint, and pass right answers
however they are written.

WRONG holds planted wrong solutions (task, the mistake, the function, a phrase its hint must
contain); RIGHT holds correct but differently written ones (Python loops, float64, another
order of equal scores, lists instead of arrays). Both sets run through the same public
``check_<task>`` functions a student calls.
"""
from __future__ import annotations

import importlib.util

import math
import random
from collections import Counter
from pathlib import Path

import mygrad as mg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from mygrad.nnet.activations import relu
from mygrad.nnet.losses import margin_ranking_loss
from PIL import Image

from semsearch.database import ImageDatabase, top_k as library_top_k
from semsearch.exercises import CHECKS, check_loss_accuracy, check_model, check_se_text, check_all
from semsearch.exercises.loss_checks import finite_difference_gradients, reference_loss
from semsearch.exercises.reference import solutions, train_step as reference_step
from semsearch.loss import loss_accuracy as library_loss
from semsearch.model import embed_images
from semsearch.text import tokenize
from semsearch.triples import Triples


# ----------------------------------------------------------------------------- pieces of solutions


def unit_rows(x):
    return x / mg.sqrt(mg.sum(x**2, axis=1, keepdims=True))


class DenseModel:
    """A right model written without MyNN: its own tensors, float64, mg.matmul."""

    def __init__(self, input_dim, output_dim, seed=0):
        rng = np.random.default_rng(seed)
        self.w = mg.tensor(rng.normal(size=(input_dim, output_dim)) / np.sqrt(input_dim))
        self.b = mg.tensor(np.zeros(output_dim) + 0.01 * rng.normal(size=output_dim))

    def __call__(self, x):
        return unit_rows(mg.matmul(np.asarray(x, dtype=np.float64), self.w) + self.b)

    @property
    def parameters(self):
        return (self.w, self.b)


class BatchNormModel(DenseModel):
    def __call__(self, x):
        out = mg.matmul(np.asarray(x, dtype=np.float64), self.w) + self.b
        return out / mg.sqrt(mg.sum(out**2))  # the whole batch's norm


class NoBiasModel(DenseModel):
    def __call__(self, x):
        return unit_rows(mg.matmul(np.asarray(x, dtype=np.float64), self.w))

    @property
    def parameters(self):
        return (self.w,)


class NormalisedInputModel(DenseModel):
    def __call__(self, x):
        x = np.asarray(x, dtype=np.float64)
        return mg.matmul(x / np.linalg.norm(x, axis=1, keepdims=True), self.w) + self.b


class UnnormalisedModel(DenseModel):
    def __call__(self, x):
        return mg.matmul(np.asarray(x, dtype=np.float64), self.w) + self.b


class TwoLayerModel:
    """A right model of the team's own design: dense -> relu -> dense, then unit rows."""

    def __init__(self, input_dim, output_dim, seed=0):
        rng = np.random.default_rng(seed)
        self.params = tuple(mg.tensor(a) for a in (rng.normal(size=(input_dim, 8)) * 0.3, np.zeros(8),
                                                    rng.normal(size=(8, output_dim)) * 0.3, np.full(output_dim, 0.1)))

    def __call__(self, x):
        w1, b1, w2, b2 = self.params
        return unit_rows(mg.matmul(relu(mg.matmul(np.asarray(x, float), w1) + b1), w2) + b2)

    @property
    def parameters(self):
        return self.params


def idf_of(texts, log=math.log10, per_occurrence=False):
    counts = Counter()
    for text in texts:
        words = tokenize(text)
        counts.update(words if per_occurrence else set(words))
    return {w: log(len(texts) / n) for w, n in counts.items()}


def se_text_from(idf, glove, *, normalise=True, unknown="skip"):
    """A se_text written with a Python loop (float64); lists give a list of arrays."""

    def se_text(text):
        if not isinstance(text, str):
            return [se_text(t) for t in text]
        total = np.zeros(glove.vector_size)
        for word in tokenize(text):
            if unknown == "crash":
                total += idf[word] * glove[word]
            elif word in glove.key_to_index and word in idf:
                total += idf[word] * glove[word]
            elif unknown == "vector":
                total += np.ones(glove.vector_size)
        norm = np.linalg.norm(total)
        return total / norm if normalise and norm > 0 else total

    return se_text


def make_se_text_right(captions, glove):
    return se_text_from(idf_of(captions), glove)


def make_se_text_idf_per_query(captions, glove):
    def se_text(text):
        texts = [text] if isinstance(text, str) else list(text)
        vectors = np.stack([se_text_from(idf_of([t]), glove)(t) for t in texts])
        return vectors[0] if isinstance(text, str) else vectors

    return se_text


def make_se_text_idf_over_queries(captions, glove):
    def se_text(text):
        texts = [text] if isinstance(text, str) else list(text)
        vectors = np.stack(se_text_from(idf_of(texts), glove)(texts))
        return vectors[0] if isinstance(text, str) else vectors

    return se_text


def top_k_loop_other_ties(scores, k):
    """Right: a Python loop; equal scores put the *later* column first; a list of lists."""
    return [sorted(range(len(row)), key=lambda j: (-row[j], -j))[:k] for row in np.asarray(scores).tolist()]


def triples_loop(split, *, negatives="random", n_candidates=10, caption_vectors=None, seed=0):
    """Right: (N, 3) COCO ids as a list of lists, drawn with Python's random."""
    rng = random.Random(seed)
    ids = split.image_ids.tolist()
    out = []
    for caption_id, row in zip(split.caption_ids.tolist(), split.image_rows.tolist()):
        bad = rng.choice([i for r, i in enumerate(ids) if r != row])
        out.append([caption_id, ids[row], bad])
    return out


def triples_bad_may_be_good(split, *, seed=0, **_):
    rng = np.random.default_rng(seed)
    return Triples(split, split.image_rows, rng.integers(0, len(split.image_ids), len(split)))


ALL_IMAGE_IDS = np.arange(1000, 5000)  # "all of the data": a leaking solution draws from it


def triples_leaking(split, *, seed=0, **_):
    rng = np.random.default_rng(seed)
    good = split.image_ids[split.image_rows]
    bad = rng.choice(ALL_IMAGE_IDS, len(split))
    bad = np.where(bad == good, bad + 1, bad)
    return np.stack([split.caption_ids, good, bad], axis=1)


def split_loop(image_ids, validation_fraction=0.2, seed=0):
    ids = list(image_ids)
    random.Random(seed).shuffle(ids)
    n_val = round(validation_fraction * len(ids))
    return ids[n_val:], ids[:n_val]


def split_overlapping(image_ids, validation_fraction=0.2, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(image_ids), rng.choice(image_ids, round(validation_fraction * len(image_ids)), replace=False)


def database_unnormalised(model, descriptors):
    w, b = model.parameters
    return descriptors.ids, descriptors.vectors @ w.data + b.data


def database_loop(model, descriptors):
    """Right: a list of ids and a list of rows, one image at a time."""
    ids, rows = [], []
    for i, vector in zip(descriptors.ids.tolist(), descriptors.vectors):
        ids.append(i)
        rows.append(embed_images(model, vector[None])[0].tolist())
    return ids, rows


def show_sorted(image_ids, scores=None, *, image_dir=None, **_):
    from semsearch.display import show_images

    order = np.argsort(image_ids)
    return show_images([image_ids[i] for i in order], [scores[i] for i in order], image_dir=image_dir)


def show_one_row(image_ids, scores=None, *, image_dir=None, **_):
    """Right: one row of axes, images read with PIL."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(image_ids), figsize=(2 * len(image_ids), 2), squeeze=False)
    for ax, coco_id, score in zip(axes[0], image_ids, scores):
        ax.imshow(Image.open(Path(image_dir) / f"{coco_id:012d}.jpg"))
        ax.set_title(f"{coco_id} {score:.2f}")
        ax.axis("off")
    return fig


def ranks_loop(scores, targets):
    return [sum(s >= row[t] for s in row) for row, t in zip(np.asarray(scores).tolist(), targets)]


def scores_dict(ranks, n_images, ks=(1, 5, 10)):
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {f"recall@{k}": float(np.mean(ranks <= k)) for k in ks}
    out.update(median_rank=float(np.median(ranks)), mrr=float(np.mean(1 / ranks)))
    return out


def step_einsum(model, optimizer, good, bad, captions, margin):
    sim_good = mg.einsum("nd,nd->n", model(good), captions)
    sim_bad = mg.einsum("nd,nd->n", model(bad), captions)
    loss = mg.mean(mg.maximum(0, margin - (sim_good - sim_bad)))
    loss.backward()
    optimizer.step()
    return loss.item(), float(np.mean(sim_good.data > sim_bad.data))


def step_without_update(model, optimizer, good, bad, captions, margin):
    sim_good = mg.sum(model(good) * captions, axis=1)
    sim_bad = mg.sum(model(bad) * captions, axis=1)
    loss = mg.mean(mg.maximum(0, margin - (sim_good - sim_bad)))
    loss.backward()
    return loss.item(), float(np.mean(sim_good.data > sim_bad.data))


def loss_loop(sim_good, sim_bad, margin):
    """Right: a Python loop over the triples, float64."""
    total = 0
    wins = 0
    for g, b in zip(sim_good, sim_bad):
        total = total + mg.maximum(0.0, margin - (g - b))
        wins += float(mg.asarray(g) > mg.asarray(b))
    return total / len(sim_good), wins / len(sim_good)


def preprocess_numpy(image, backbone):
    """Right: PIL and NumPy only, float64."""
    mean, std = ((0.5,) * 3, (0.5,) * 3) if backbone == "efficientnet-lite0" else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    image = image.convert("RGB")
    w, h = image.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    image = image.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - 224) / 2)), int(round((size[1] - 224) / 2))
    x = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float64) / 255
    return ((x - mean) / std).transpose(2, 0, 1)


def preprocess_with(transform_steps):
    from torchvision import transforms

    def preprocess(image, backbone):
        return transforms.Compose(transform_steps(backbone))(image.convert("RGB"))

    return preprocess


def _norm(backbone):
    from torchvision import transforms

    stats = ((0.5,) * 3, (0.5,) * 3) if backbone == "efficientnet-lite0" else ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    return transforms.Normalize(*stats)


def _resize_crop():
    from torchvision import transforms

    return [transforms.Resize(256), transforms.CenterCrop(224)]


def _to_tensor():
    from torchvision import transforms

    return transforms.ToTensor()


def acc(g, b, op=np.greater):
    return float(np.mean(op(mg.asarray(g), mg.asarray(b))))


# ----------------------------------------------------------------------------- the planted solutions

WRONG = [
    ("loss_accuracy", "margin_ranking_loss with y = 0", lambda g, b, m: (margin_ranking_loss(g, b, 0, m), acc(g, b)), "y must be +1"),
    ("loss_accuracy", "the loss summed over the batch", lambda g, b, m: (mg.sum(mg.maximum(0, m - (g - b))), acc(g, b)), "not the sum"),
    ("loss_accuracy", "ties counted as right", lambda g, b, m: (margin_ranking_loss(g, b, 1, m), acc(g, b, np.greater_equal)), "a tie"),
    ("loss_accuracy", "the loss computed in NumPy", lambda g, b, m: (np.mean(np.maximum(0, m - (mg.asarray(g) - mg.asarray(b)))), acc(g, b)),
     "MyGrad operations"),
    ("top_k", "argsort not reversed (worst first)", lambda s, k: np.argsort(s, axis=1)[:, :k], "reverse it"),
    ("top_k", "k + 1 results", lambda s, k: np.argsort(-s, axis=1)[:, : k + 1], "you returned"),
    ("top_k", "the right images in the wrong order", lambda s, k: np.sort(np.argsort(-s, axis=1)[:, :k], axis=1), "wrong order"),
    ("model", "normalised by the whole batch's norm", BatchNormModel, "whole batch"),
    ("model", "the bias left out", NoBiasModel, "bias"),
    ("model", "the descriptors normalised instead of the embeddings", NormalisedInputModel, "not the descriptors"),
    ("model", "cosine without normalising", UnnormalisedModel, "only between unit vectors"),
    ("se_text", "IDF recomputed per query", make_se_text_idf_per_query, "over the query instead of once"),
    ("se_text", "IDF computed over the queries", make_se_text_idf_over_queries, "over the query instead of once"),
    ("se_text", "unknown words given a vector", lambda c, g: se_text_from(idf_of(c), g, unknown="vector"), "don't give it a vector"),
    ("se_text", "unknown words crash", lambda c, g: se_text_from(idf_of(c), g, unknown="crash"), "must be skipped"),
    ("se_text", "not normalised", lambda c, g: se_text_from(idf_of(c), g, normalise=False), "unit length"),
    ("make_triples", "a caption's own image drawn as its bad image", triples_bad_may_be_good, "own image can't be its bad image"),
    ("make_triples", "bad images from all the data: validation leaks into training", triples_leaking, "same split"),
    ("split_images", "validation images also in training", split_overlapping, "leaks validation images"),
    ("build_database", "built from un-normalised vectors", database_unnormalised, "not unit length"),
    ("show_images", "ids shown sorted, not in the order given", show_sorted, "order given"),
    ("idf", "natural log", lambda texts: idf_of(texts, log=math.log), "log base 10"),
    ("idf", "a word counted per occurrence", lambda texts: idf_of(texts, per_occurrence=True), "not how often"),
    ("target_ranks", "ranks from 0", lambda s, t: np.array(ranks_loop(s, t)) - 1, "start at 1"),
    ("target_ranks", "ties counted for the target", lambda s, t: [sum(x > r[i] for x in r) + 1 for r, i in zip(np.asarray(s).tolist(), t)],
     "counts against it"),
    ("retrieval_scores", "MRR as 1 / mean rank", lambda r, n, ks: {**scores_dict(r, n, ks), "mrr": 1 / np.mean(r)}, "mean of the reciprocal"),
    ("retrieval_scores", "Recall@K with rank < K", lambda r, n, ks: {**scores_dict(r, n, ks), **{f"recall@{k}": float(np.mean(np.asarray(r) < k)) for k in ks}},
     "not <"),
    ("train_step", "no optimizer.step()", step_without_update, "optimizer.step()"),
    ("preprocess", "not normalised", lambda im, b: preprocess_with(lambda b: [*_resize_crop(), _to_tensor()])(im, b),
     "normalise after scaling"),
    ("preprocess", "channels last", lambda im, b: np.asarray(preprocess_numpy(im, b)).transpose(1, 2, 0), "channels first"),
    ("preprocess", "the image stretched to 224 x 224", lambda im, b: preprocess_numpy(im.resize((256, 256)), b), "don't stretch"),
    ("preprocess", "ImageNet statistics for EfficientNet-Lite0",
     lambda im, b: preprocess_numpy(im, "resnet18"), "not the other network's"),
]

RIGHT = [
    ("loss_accuracy", "a Python loop over the triples", loss_loop),
    ("loss_accuracy", "mg.mean(mg.maximum(...)) in float64", lambda g, b, m: (mg.mean(mg.maximum(0.0, m - (g - b))), np.float64(acc(g, b)))),
    ("top_k", "a Python loop, equal scores the other way round, lists", top_k_loop_other_ties),
    ("top_k", "argsort reversed (equal scores latest first)", lambda s, k: np.argsort(s, axis=1)[:, ::-1][:, :k]),
    ("model", "own tensors in float64, no MyNN", DenseModel),
    ("model", "dense -> relu -> dense", TwoLayerModel),
    ("se_text", "Python loops, float64, lists for lists", make_se_text_right),
    ("idf", "math.log10 and a Counter", idf_of),
    ("make_triples", "(N, 3) ids as lists, Python's random", triples_loop),
    ("split_images", "lists shuffled with Python's random", split_loop),
    ("build_database", "one image at a time, lists", database_loop),
    ("show_images", "one row of axes, PIL", show_one_row),
    ("target_ranks", "a Python loop, a list", ranks_loop),
    ("retrieval_scores", "a dict", scores_dict),
    ("train_step", "mg.einsum and its own loss", step_einsum),
    ("preprocess", "PIL and NumPy, float64", preprocess_numpy),
    ("preprocess", "torchvision transforms", lambda im, b: preprocess_with(lambda b: [*_resize_crop(), _to_tensor(), _norm(b)])(im, b)),
]


@pytest.mark.parametrize("task, mistake, function, hint", WRONG, ids=[f"{t}: {m}" for t, m, _, _ in WRONG])
def test_each_planted_mistake_is_caught_with_its_hint(task, mistake, function, hint):
    needs_extra(task)
    report = CHECKS[task](function, verbose=False)
    assert report.status in ("failed", "error"), f"{task} check passed a solution with {mistake}"
    assert hint in (report.hint or ""), f"{mistake}: the hint was {report.hint!r}"
    assert report.case and report.n_cases >= 1
    text = str(report)
    assert hint in text and (report.status == "error" or ("expected:" in text and "obtained:" in text))


@pytest.mark.parametrize("task, how, function", RIGHT, ids=[f"{t}: {h}" for t, h, _ in RIGHT])
def test_right_answers_written_differently_pass(task, how, function):
    needs_extra(task)
    report = CHECKS[task](function, verbose=False)
    assert report.passed, str(report)


def test_the_planted_sets_are_large_enough_and_cover_every_check():
    assert len(WRONG) >= 15 and len(RIGHT) >= 8
    assert {t for t, *_ in WRONG} == set(CHECKS) == {t for t, *_ in RIGHT}
    assert len({h for *_, h in WRONG}) >= 15  # the hints differ


def needs_extra(task: str) -> None:
    """The preprocessing check compares with torch's networks: without the features extra it skips."""
    if task == "preprocess":
        pytest.importorskip("torchvision", reason="the preprocess check needs torch and torchvision: pip install -e .[features]")


def test_the_library_passes_every_check(capsys):
    reports = check_all(solutions())
    has_torch = importlib.util.find_spec("torchvision") is not None
    skipped = {t for t, r in reports.items() if r.status == "skipped"}
    assert set(reports) == set(CHECKS) and skipped == (set() if has_torch else {"preprocess"})
    assert all(r.passed for t, r in reports.items() if t not in skipped)
    printed = capsys.readouterr().out
    assert printed.count(": passed (") == len(CHECKS) - len(skipped) and "checked:" in printed


def test_a_stub_reports_not_written_yet(capsys):
    def loss_accuracy(sim_good, sim_bad, margin):
        raise NotImplementedError

    report = check_loss_accuracy(loss_accuracy)
    assert report.status == "not written" and not report.passed
    assert capsys.readouterr().out.strip() == (
        "loss_accuracy: not written yet (it raises NotImplementedError): write it, then run this check again")


def test_a_student_exception_shows_their_traceback_and_the_case_not_the_checker():
    def make_se_text(captions, glove):
        idf = idf_of(captions)

        def se_text(text):
            total = np.sum([idf[w] * glove[w] for w in tokenize(text)], axis=0)  # KeyError on an unknown word
            return total / np.linalg.norm(total)

        return se_text

    report = check_se_text(make_se_text, verbose=False)
    assert report.status == "error"
    assert "test_exercises.py" in report.traceback and "KeyError" in report.traceback
    assert "semsearch/exercises" not in report.traceback and "checking.py" not in report.traceback
    assert "blorptastic" in report.case and "must be skipped" in report.hint
    assert str(report).startswith("se_text: your function raised an exception on case")


def test_the_first_failing_case_is_a_small_one():
    report = check_model(BatchNormModel, verbose=False)
    assert "(2, 6)" in report.case  # one row passes; two rows is the smallest failing batch
    report = check_loss_accuracy(lambda g, b, m: (mg.sum(mg.maximum(0, m - (g - b))), acc(g, b)), verbose=False)
    assert report.n_cases == 1 and report.expected == "0.2" and report.obtained == "0.6"


def test_a_wrong_return_type_is_a_failure_with_a_hint_not_a_checker_traceback():
    report = check_loss_accuracy(lambda g, b, m: None, verbose=False)
    assert report.status == "failed" and "return two things" in report.hint
    report = CHECKS["top_k"](lambda s, k: "best ones", verbose=False)
    assert report.status == "failed" and report.traceback is None


def test_the_reference_step_is_one_sgd_step_by_hand():
    """The train_step reference against SGD written out: w <- w - lr * dloss/dw."""
    from mynn.optimizers.sgd import SGD

    model, copy = DenseModel(4, 3, seed=2), DenseModel(4, 3, seed=2)
    x = np.random.default_rng(0).normal(size=(5, 4))
    captions = np.eye(3)[[0, 1, 2, 0, 1]]
    reference_step(model, SGD(model.parameters, learning_rate=0.1), x, x[::-1].copy(), captions, 0.5)
    loss = mg.mean(mg.maximum(0, 0.5 - (mg.sum(copy(x) * captions, axis=1) - mg.sum(copy(x[::-1].copy()) * captions, axis=1))))
    loss.backward()
    for mine, by_hand in zip(model.parameters, copy.parameters):
        np.testing.assert_allclose(mine.data, by_hand.data - 0.1 * by_hand.grad, rtol=1e-10)


def test_checks_take_any_database_type():
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder

    d = Descriptors({5: np.ones(3), 9: np.arange(3.0)})
    db = ImageDatabase.build(Autoembedder(3, 2), d)
    assert CHECKS["build_database"](lambda m, x: ImageDatabase.build(m, x), verbose=False).passed
    assert db.vectors.shape == (2, 2) and library_top_k(np.array([[0.0, 1.0]]), 1).tolist() == [[1]]


# ----------------------------------------------------------------------------- the checkers' own references

similarities = st.integers(1, 12).flatmap(lambda n: st.tuples(
    arrays(np.float64, n, elements=st.floats(-1, 1)), arrays(np.float64, n, elements=st.floats(-1, 1))))


@settings(max_examples=60, deadline=None)
@given(similarities, st.floats(0, 1))
def test_the_loss_checks_reference_and_finite_differences_agree_with_mygrad(pair, margin):
    good, bad = pair
    tg, tb = mg.tensor(good), mg.tensor(bad)
    loss, _ = library_loss(tg, tb, margin)
    assert np.isclose(reference_loss(good, bad, margin), loss.item(), atol=1e-12)
    loss.backward()
    fd_good, fd_bad = finite_difference_gradients(good, bad, margin)
    smooth = np.abs(margin - (good - bad)) > 1e-4
    np.testing.assert_allclose(fd_good[smooth], tg.grad[smooth], atol=1e-6)
    np.testing.assert_allclose(fd_bad[smooth], tb.grad[smooth], atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_top_k_accepts_every_order_of_equal_scores(seed, k):
    """A top-k that breaks ties at random (a different order every call) still passes."""
    rng = np.random.default_rng(seed)

    def random_ties(scores, k):
        scores = np.asarray(scores)
        noise = rng.random(scores.shape)  # only orders equal scores: lexsort by -score, then noise
        return np.stack([np.lexsort((noise[i], -scores[i]))[:k] for i in range(len(scores))])

    assert CHECKS["top_k"](random_ties, verbose=False).passed


def test_an_output_no_case_foresaw_is_a_one_line_failure_not_the_checkers_traceback():
    from semsearch.exercises.checking import run_check

    def battery(c):
        c.case("f(2)")
        return 1 / 0  # what reading an output nobody foresaw might raise

    report = run_check("odd", battery, verbose=False)
    assert report.status == "failed" and report.traceback is None and report.case == "f(2)"
    assert "ZeroDivisionError" in report.obtained and "\n" not in str(report).split("obtained:")[1].splitlines()[0]
