"""Check a team's Recall@K / median rank / MRR against :mod:`semsearch.evaluation`.

- ``target_ranks(scores (Q, N), targets (Q,)) -> (Q,)``: the rank (1 = best) of each query's
  target column; an image scored the same as the target counts against it (rank = 1 + the
  number of *other* images scored at least as high).
- ``retrieval_scores(ranks, n_images, ks=(1, 5, 10))``: Recall@K (the fraction of ranks <= K),
  the median rank and the mean reciprocal rank ``mean(1 / rank)``, as a
  :class:`~semsearch.evaluation.RetrievalScores` or a dict
  ``{"recall@1": ..., "median_rank": ..., "mrr": ...}``.

Example
-------
>>> from semsearch.evaluation import retrieval_scores, target_ranks
>>> check_target_ranks(target_ranks, verbose=False).passed, check_retrieval_scores(retrieval_scores, verbose=False).passed
(True, True)
"""
from __future__ import annotations

from typing import Callable, Dict

import numpy as np

from semsearch.evaluation import retrieval_scores as library_scores
from semsearch.evaluation import target_ranks as library_ranks
from semsearch.exercises.checking import Checker, as_float_array, close, rounded, run_check
from semsearch.exercises.report import CheckReport


def _rank_cases():
    yield "the target scored best", np.array([[0.2, 0.9, 0.5]]), np.array([1])
    yield "the target scored second", np.array([[0.2, 0.9, 0.5]]), np.array([2])
    yield "a tie with the target", np.array([[0.5, 0.9, 0.5]]), np.array([0])
    yield "two queries", np.array([[0.1, 0.4, 0.3], [0.8, 0.2, 0.6]]), np.array([2, 1])
    rng = np.random.default_rng(0)
    for q, n in ((1, 4), (3, 6), (5, 10), (20, 50)):
        yield f"generated, {q} queries among {n} images", rounded(rng, (q, n), decimals=1), rng.integers(0, n, q)


def _diagnose_ranks(scores, targets, got) -> str:
    expected = library_ranks(scores, targets)
    target = scores[np.arange(len(scores)), targets][:, None]
    if close(got, (scores > target).sum(axis=1) + 1):
        return "an image scored the same as the target counts against it: count the images scored >= the target's score"
    if close(got, expected - 1):
        return "ranks start at 1 (the best image has rank 1), not 0"
    if close(got, len(scores[0]) + 1 - expected):
        return "rank 1 is the *highest* score: count the images scored at least as high as the target"
    return "rank = the number of images scored at least as high as the target (itself included)"


def _ranks_battery(target_ranks: Callable, c: Checker) -> None:
    for name, scores, targets in _rank_cases():
        c.case(f"{name}: target_ranks(scores={scores.tolist() if scores.size <= 24 else f'array {scores.shape}'}, targets={targets.tolist()})")
        out = c.call(target_ranks, scores.copy(), targets.copy())
        got = c.read(as_float_array, out, "an array of ranks", "return one rank per query")
        expected = library_ranks(scores, targets)
        c.expect(got.shape == expected.shape, expected, got, f"one rank per query: shape ({len(scores)},)")
        c.expect(close(got, expected), expected, got, lambda: _diagnose_ranks(scores, targets, got))
    c.passed("4 fixed and 4 generated cases: rank 1 = best, ties count against the target")


def check_target_ranks(target_ranks: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``target_ranks(scores (Q, N), targets (Q,)) -> ranks (Q,)``."""
    return run_check("target_ranks", lambda c: _ranks_battery(target_ranks, c), verbose)


def scores_as_dict(result) -> Dict[str, float]:
    """A team's scores (RetrievalScores-like or a dict) as ``{"recall@K": .., "median_rank": .., "mrr": ..}``."""
    if hasattr(result, "as_dict"):
        result = result.as_dict()
    return {str(key): float(value) for key, value in dict(result).items()}


def _diagnose_scores(ranks, key: str, got: float) -> str:
    if key == "mrr" and np.isclose(got, 1 / np.mean(ranks)):
        return "MRR is the mean of the reciprocal ranks, mean(1 / rank), not 1 / mean(rank)"
    if key == "median_rank" and np.isclose(got, np.mean(ranks)):
        return "the median rank is the middle rank (np.median), not the mean"
    if key.startswith("recall@"):
        k = int(key.split("@")[1])
        if np.isclose(got, np.mean(ranks < k)):
            return f"Recall@{k} counts the ranks <= {k} (rank {k} is in the top {k}), not < {k}"
        if np.isclose(got, np.sum(ranks <= k)):
            return "Recall@K is a fraction of the queries (between 0 and 1), not a count"
        return f"Recall@{k} = the fraction of queries whose target has rank <= {k}"
    return {"mrr": "MRR = mean(1 / rank)", "median_rank": "the median of the ranks"}[key]


def _scores_battery(retrieval_scores: Callable, c: Checker) -> None:
    rng = np.random.default_rng(0)
    cases = [("one query at rank 1", np.array([1]), 3), ("three queries", np.array([1, 2, 4]), 4),
             ("ranks around K", np.array([1, 5, 6, 10, 11]), 12)]
    cases += [(f"generated, {q} queries among {n} images", rng.integers(1, n + 1, q), n) for q, n in ((4, 8), (9, 30), (50, 100))]
    for name, ranks, n_images in cases:
        c.case(f"{name}: retrieval_scores(ranks={ranks.tolist()}, n_images={n_images}, ks=(1, 5, 10))")
        out = c.call(retrieval_scores, ranks.copy(), n_images, (1, 5, 10))
        expected = library_scores(ranks, n_images, (1, 5, 10)).as_dict()
        got = c.read(scores_as_dict, out, expected, "return a RetrievalScores or a dict with keys 'recall@1', "
                     "'recall@5', 'recall@10', 'median_rank' and 'mrr'")
        for key, value in expected.items():
            c.expect(key in got, f"{key}: {value:.6g}", got, f"the result has no {key!r}")
            c.expect(np.isclose(got[key], value), f"{key} = {value:.6g}", f"{key} = {got[key]:.6g}", lambda: _diagnose_scores(ranks, key, got[key]))
    c.passed("3 fixed and 3 generated cases: Recall@1/5/10, median rank, MRR")


def check_retrieval_scores(retrieval_scores: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``retrieval_scores(ranks, n_images, ks) -> Recall@K, median rank, MRR``."""
    return run_check("retrieval_scores", lambda c: _scores_battery(retrieval_scores, c), verbose)
