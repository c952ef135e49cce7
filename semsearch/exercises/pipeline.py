"""The capstone end to end with a team's own functions where they plug in.

The team's ``make_se_text`` embeds the captions and queries, its ``Model`` is trained by
:func:`semsearch.training.train` with its ``make_triples`` and ``loss_accuracy`` (the
``make_triples=`` / ``loss_accuracy=`` hooks of ``train``), its ``build_database`` and ``top_k``
answer the queries, and its ``target_ranks`` and ``retrieval_scores`` score the validation
images. A task the team has not written (its check said "not written yet", or the team gave no
function) uses the library's function instead, and the result says which.

Example
-------
>>> result = run_pipeline(data, corpus, {"loss_accuracy": my_loss}, train_ids, val_ids)  # doctest: +SKIP
>>> result.scores["mrr"], result.used["loss_accuracy"]                                   # doctest: +SKIP
(0.41, 'team')
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from semsearch.errors import UnknownQueryError
from semsearch.exercises.data_checks import triples_as_ids
from semsearch.exercises.metrics_checks import scores_as_dict
from semsearch.exercises.search_checks import database_ids_vectors

#: The tasks that plug into the pipeline, in the order they run.
PIPELINE_TASKS = ("se_text", "model", "make_triples", "loss_accuracy", "build_database", "top_k",
                  "target_ranks", "retrieval_scores")


class TeamTextEncoder:
    """A team's ``se_text`` as the library's text encoders are: lists -> (N, E) float32, ``dim``, ``check_known``."""

    def __init__(self, se_text: Callable, dim: int):
        self.se_text, self.dim = se_text, int(dim)

    def __call__(self, texts):
        if isinstance(texts, str):
            return np.asarray(self.se_text(texts), dtype=np.float32).reshape(self.dim)
        out = self.se_text(list(texts))
        out = [np.asarray(getattr(row, "data", row), dtype=np.float32) for row in out] if isinstance(out, list) else out
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def check_known(self, text: str) -> None:
        if not np.any(self(text)):
            raise UnknownQueryError(f"cannot embed {text!r}: the team's se_text gives the zero vector")


def team_triples(make_triples: Callable) -> Callable:
    """A team's ``make_triples`` (returning Triples or (N, 3) ids) as the library's, returning Triples."""
    from semsearch.triples import Triples

    def adapted(split, **options):
        out = make_triples(split, **options)
        if isinstance(out, Triples):
            return out
        ids = triples_as_ids(out, split)
        order = np.searchsorted(split.caption_ids, ids[:, 0])
        good = np.empty(len(split), dtype=np.int64)
        bad = np.empty(len(split), dtype=np.int64)
        good[order] = np.searchsorted(split.image_ids, ids[:, 1])
        bad[order] = np.searchsorted(split.image_ids, ids[:, 2])
        return Triples(split, good, bad)

    return adapted


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` measured.

    Attributes
    ----------
    scores : dict
        ``recall@1``, ``recall@5``, ``recall@10``, ``median_rank``, ``mrr`` on the validation images,
        computed with the team's ``target_ranks`` and ``retrieval_scores``.
    library_scores : dict
        The same scores computed by the library's functions from the same similarities: what a
        grader compares across teams.
    history : semsearch.training.History
    searches : list of (query, image ids, scores)
        The top 5 of a few queries, searched with the team's database and top-k.
    used : dict
        Task -> ``"team"`` or ``"library"``: whose function ran.
    """

    scores: Dict[str, float]
    library_scores: Dict[str, float]
    history: object
    searches: List[tuple] = field(default_factory=list)
    used: Dict[str, str] = field(default_factory=dict)
    model: object = None
    database: object = None


def library_functions() -> Dict[str, Callable]:
    """The library's function for every pipeline task."""
    from semsearch.exercises.reference import solutions

    return {task: function for task, function in solutions().items() if task in PIPELINE_TASKS}


def choose(functions: Dict[str, Callable], reports: Optional[dict] = None) -> tuple:
    """(task -> the function to run, task -> "team" or "library"): a task not written uses the library's."""
    reports = reports or {}
    library = library_functions()
    chosen, used = {}, {}
    for task in PIPELINE_TASKS:
        report = reports.get(task)
        written = functions.get(task) is not None and not (report is not None and report.status == "not written")
        chosen[task], used[task] = (functions[task], "team") if written else (library[task], "library")
    return chosen, used


def pick(task: str, function: Optional[Callable], reports: Optional[dict] = None) -> Callable:
    """The team's function for ``task``, or the library's if it is not written yet (its check said so)."""
    from semsearch.exercises.reference import solutions

    report = (reports or {}).get(task)
    if function is None or (report is not None and report.status == "not written"):
        return solutions()[task]
    return function


QUERIES = ("people skiing down a snowy hill", "a baseball player swinging a bat", "zebras and giraffes")


def run_pipeline(data, corpus: Sequence[str], functions: Dict[str, Callable], train_ids, validation_ids, *,
                 glove=None, reports: Optional[dict] = None, seed: int = 0, queries: Sequence[str] = QUERIES,
                 **train_changes) -> PipelineResult:
    """Train, index, search and evaluate with the team's functions (the library's where not written).

    Parameters
    ----------
    data : CaptionedImages
    corpus : list of str
        The captions the IDF is computed over (``make_se_text(corpus, glove)``).
    functions : dict
        Task -> the team's function (see :data:`PIPELINE_TASKS`); missing tasks use the library's.
    train_ids, validation_ids : array-like of int
        The split, by image.
    glove : gensim KeyedVectors, optional
        The word vectors (default: the packaged GloVe-50); E, the model's output size, follows them.
    reports : dict, optional
        Task -> CheckReport: a "not written" task uses the library's function.
    train_changes
        Settings of :class:`~semsearch.training.TrainConfig` (e.g. ``epochs=20``).
    """
    from semsearch.database import ImageDatabase
    from semsearch.evaluation import retrieval_scores, target_ranks
    from semsearch.glove import load_glove
    from semsearch.training import train

    chosen, used = choose(functions, reports)
    glove = load_glove() if glove is None else glove
    se_text = chosen["se_text"](list(corpus), glove)
    encoder = se_text if used["se_text"] == "library" else TeamTextEncoder(se_text, glove.vector_size)
    model = chosen["model"](data.descriptors.dim, glove.vector_size, seed=seed)
    hooks = {}
    if used["make_triples"] == "team":
        hooks["make_triples"] = team_triples(chosen["make_triples"])
    if used["loss_accuracy"] == "team":
        hooks["loss_accuracy"] = chosen["loss_accuracy"]
    history = train(model, data, encoder, train_ids, validation_ids, progress=False, **hooks, **{"seed": seed, **train_changes})

    built = chosen["build_database"](model, data.descriptors)
    ids, vectors = database_ids_vectors(built)
    database = ImageDatabase(ids, vectors, encoder)
    searches = []
    for query in queries:
        scores = database.vectors @ encoder(query)
        columns = np.asarray(chosen["top_k"](scores[None], 5)).reshape(-1)
        searches.append((query, database.keys[columns], scores[columns]))

    split = data.split(validation_ids)
    order = np.argsort(database.keys)  # a team's database may list its images in any order
    rows = order[np.searchsorted(database.keys[order], split.image_ids)]
    queries_vectors = encoder(split.caption_texts)
    similarities = queries_vectors @ database.vectors[rows].T
    ranks = np.asarray(chosen["target_ranks"](similarities, split.image_rows))
    result = scores_as_dict(chosen["retrieval_scores"](ranks, len(split.image_ids), (1, 5, 10)))
    by_library = retrieval_scores(target_ranks(similarities, split.image_rows), len(split.image_ids), (1, 5, 10)).as_dict()
    return PipelineResult(result, by_library, history, searches, used, model, database)
