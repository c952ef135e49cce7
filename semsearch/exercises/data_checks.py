"""Check a team's train/validation split and triples against :mod:`semsearch.dataset` and
:mod:`semsearch.triples`.

- ``split_images(image_ids, validation_fraction=0.2, seed=0) -> (train_ids, validation_ids)``:
  the *images* are split (so all captions of an image land on one side), at random, seeded;
  together the two parts are the given ids, with no id in both.
- ``make_triples(split, *, negatives="random", n_candidates=10, caption_vectors=None, seed=0)``:
  one triple per caption of the split: its own image as the good image and another image *of
  the same split* as the bad one, drawn at random (seeded). Return a
  :class:`~semsearch.triples.Triples` (rows of ``split.image_ids``) or an ``(N, 3)`` array of
  COCO ids ``[caption id, good image id, bad image id]``, as the course does.

Example
-------
>>> from semsearch.dataset import split_images
>>> from semsearch.triples import make_triples
>>> check_split_images(split_images, verbose=False).passed, check_make_triples(make_triples, verbose=False).passed
(True, True)
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from semsearch.dataset import Split
from semsearch.exercises.checking import Checker, run_check
from semsearch.exercises.report import CheckReport


def _as_ids(value) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        raise ValueError("not a 1-d array of ids")
    return array.astype(np.int64)


def _split_battery(split_images: Callable, c: Checker) -> None:
    rng = np.random.default_rng(0)
    cases = [(np.array([305, 17, 942, 88, 5120]), 0.2), (np.array([305, 17, 942, 88, 5120]), 0.4)]
    cases += [(rng.choice(np.arange(1, 10**6), size=n, replace=False), f) for n, f in ((10, 0.2), (10, 0.5), (37, 0.3), (200, 0.2))]
    for ids, fraction in cases:
        shown = f"split_images({ids.tolist() if len(ids) <= 10 else f'{len(ids)} ids'}, validation_fraction={fraction}, seed=0)"
        c.case(shown)
        out = c.call(split_images, ids.copy(), fraction, 0)
        train, val = c.read(lambda o: (_as_ids(o[0]), _as_ids(o[1])), out, "(train_ids, validation_ids)",
                            "return two arrays (or lists) of image ids: (train_ids, validation_ids)")
        both = sorted(set(train.tolist()) & set(val.tolist()))
        c.expect(not both, "no image in both parts", f"images {both[:5]} in both",
                 "an image in both parts leaks validation images into training: split the images, each one goes to one side")
        c.expect(sorted(train.tolist() + val.tolist()) == sorted(ids.tolist()), sorted(ids.tolist()),
                 sorted(train.tolist() + val.tolist()), "together the two parts must be exactly the given image ids")
        n_val = round(fraction * len(ids))
        c.expect(abs(len(val) - n_val) <= 1, f"about {n_val} validation images", f"{len(val)}",
                 "validation_fraction is the share of the images that go to validation")
        again = c.call(split_images, ids.copy(), fraction, 0)
        c.expect(sorted(_as_ids(again[1]).tolist()) == sorted(val.tolist()), "the same split for the same seed",
                 "another split", "the same seed must give the same split: use np.random.default_rng(seed)")
    ids = np.arange(100, 140)
    c.case(f"split_images({len(ids)} ids, 0.25, seed=0 to 4): at random")
    parts = [frozenset(_as_ids(c.call(split_images, ids.copy(), 0.25, s)[1]).tolist()) for s in range(5)]
    c.expect(len(set(parts)) > 1, "other validation images for other seeds", "the same validation images for every seed",
             "the split must be random, drawn with the seed")
    c.expect(not all(p == frozenset(ids[-len(p):].tolist()) or p == frozenset(ids[: len(p)].tolist()) for p in parts),
             "a random choice of images", "the first or last images", "shuffle the images before cutting")
    c.passed("6 cases: disjoint by image, nothing lost, the fraction, seeded and random")


def check_split_images(split_images: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``split_images(image_ids, validation_fraction, seed) -> (train_ids, validation_ids)``."""
    return run_check("split_images", lambda c: _split_battery(split_images, c), verbose)


# ----------------------------------------------------------------------------- triples


def small_split(captions_per_image, first_id: int = 1000, seed: int = 0) -> Split:
    """A :class:`~semsearch.dataset.Split` of ``len(captions_per_image)`` images with made-up captions."""
    rng = np.random.default_rng(seed)
    image_ids = np.sort(rng.choice(np.arange(first_id, first_id + 50 * len(captions_per_image)), len(captions_per_image), replace=False))
    rows = np.repeat(np.arange(len(image_ids)), captions_per_image)
    caption_ids = np.arange(len(rows), dtype=np.int64) * 7 + 3
    descriptors = np.round(rng.normal(size=(len(image_ids), 4)), 2).astype(np.float32)
    return Split(image_ids=image_ids.astype(np.int64), caption_ids=caption_ids,
                 caption_texts=[f"caption {i} of image {image_ids[r]}" for i, r in enumerate(rows)],
                 image_rows=rows.astype(np.int64), descriptor_vectors=descriptors)


def triples_as_ids(result, split: Split) -> np.ndarray:
    """A team's triples (a ``Triples``, or ``(N, 3)`` ids) as an (N, 3) int64 array of COCO ids."""
    if hasattr(result, "good_rows") and hasattr(result, "bad_rows"):
        good, bad = np.asarray(result.good_rows), np.asarray(result.bad_rows)
        if good.shape != (len(split),) or bad.shape != (len(split),):
            raise ValueError("one good and one bad row per caption")
        n = len(split.image_ids)
        ids = np.full(len(split), -1, dtype=np.int64)  # a row outside the split has no id: -1
        bad_ids = np.where((bad >= 0) & (bad < n), split.image_ids[np.clip(bad, 0, n - 1)], ids)
        good_ids = np.where((good >= 0) & (good < n), split.image_ids[np.clip(good, 0, n - 1)], ids)
        return np.stack([split.caption_ids, good_ids, bad_ids], axis=1)
    array = np.asarray(result)
    if array.ndim != 2 or array.shape[1] != 3 or array.dtype.kind not in "iu":
        raise ValueError("not (N, 3) ids")
    return array.astype(np.int64)


def _triples_battery(make_triples: Callable, c: Checker) -> None:
    splits = [("2 images, 1 caption each", small_split([1, 1])), ("3 images, 2 captions each", small_split([2, 2, 2], seed=1)),
              ("5 images, 1 to 5 captions", small_split([1, 5, 2, 3, 4], seed=2)),
              ("40 images, 5 captions each", small_split([5] * 40, seed=3))]
    for name, split in splits:
        c.case(f"make_triples(a split of {name}: image ids {split.image_ids.tolist()[:6]}, seed=0)")
        out = c.call(make_triples, split, seed=0)
        triples = c.read(lambda o: triples_as_ids(o, split), out, "a Triples, or (N, 3) ids [caption, good image, bad image]",
                         "return Triples(split, good_rows, bad_rows) or an (N, 3) integer array of "
                         "[caption id, good image id, bad image id]")
        c.expect(sorted(triples[:, 0].tolist()) == sorted(split.caption_ids.tolist()), f"one triple per caption: {len(split)}",
                 f"{len(triples)} triples", "make one triple for each caption of the split")
        triples = triples[np.argsort(triples[:, 0], kind="stable")]
        own = split.image_ids[split.image_rows]
        wrong = np.flatnonzero(triples[:, 1] != own)
        c.expect(not len(wrong), f"good image {own[wrong[:1]].tolist()} for caption {triples[wrong[:1], 0].tolist()}",
                 f"{triples[wrong[:1], 1].tolist()}", "the good image of a triple is its caption's own image (split.image_rows)")
        outside = np.flatnonzero(~np.isin(triples[:, 2], split.image_ids))
        c.expect(not len(outside), f"bad images among the split's {split.image_ids.tolist()[:8]}",
                 f"bad image {triples[outside[:1], 2].tolist()}",
                 "a bad image must come from the same split: one from outside it (e.g. all of the data) "
                 "puts validation images into training")
        same = np.flatnonzero(triples[:, 2] == triples[:, 1])
        c.expect(not len(same), "a bad image other than the good one",
                 f"caption {triples[same[:1], 0].tolist()}: good {triples[same[:1], 1].tolist()}, bad {triples[same[:1], 2].tolist()}",
                 "a caption's own image can't be its bad image: draw among the *other* images")
        again = triples_as_ids(c.call(make_triples, split, seed=0), split)
        c.expect(np.array_equal(again[np.argsort(again[:, 0], kind="stable")], triples), "the same triples for seed=0",
                 "other triples", "the same seed must give the same triples: draw with np.random.default_rng(seed)")
    split = small_split([2] * 4, seed=4)
    c.case("make_triples(a split of 4 images, 2 captions each) with seeds 0 to 49: bad images at random")
    counts = np.zeros((len(split), len(split.image_ids)))
    for seed in range(50):
        ids = triples_as_ids(c.call(make_triples, split, seed=seed), split)
        ids = ids[np.argsort(ids[:, 0], kind="stable")]
        counts[np.arange(len(split)), np.searchsorted(split.image_ids, ids[:, 2])] += 1
    others = counts[np.arange(len(split))[:, None], np.array([[r for r in range(4) if r != g] for g in split.image_rows])]
    c.expect(bool((others >= 5).all()), "each other image drawn about 50/3 times per caption", others.astype(int),
             "draw the bad image uniformly among all the other images of the split, with a new draw for each seed")
    c.passed("5 splits: one triple per caption, its own good image, a bad image of the same split and never the good one, "
             "seeded, uniform over the others")


def check_make_triples(make_triples: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``make_triples(split, *, seed=0, ...) -> Triples or (N, 3) ids``."""
    return run_check("make_triples", lambda c: _triples_battery(make_triples, c), verbose)

