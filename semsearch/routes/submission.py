"""Ranked submissions: the CSV files of an image-search competition, written and scored.

File formats (UTF-8 CSV, a header line first, fields may be quoted the usual CSV way;
blank lines are ignored; line numbers count the header as line 1):

``queries.csv``: one query per line ::

    query_id,text
    q1,a dog catching a frisbee on the beach
    q2,"two cats, asleep on a sofa"

``submission.csv``: the ranked images of each query, best first, space-separated ::

    query_id,image_ids
    q1,84241 397133 252219
    q2,139 285 632

``truth.csv``: the relevant images of each query, one (query, image) pair per line; a
query may have several relevant images ::

    query_id,image_id
    q1,84241
    q2,632
    q2,285

Query ids are any non-empty text ("q1", "17"); image ids are COCO ids (integers).

Scores (over the queries of the ground truth):

- Recall@K: the fraction of queries with at least one relevant image in the top K;
- mAP: the mean over queries of the average precision,
  ``AP = (1 / R) * sum over ranks r holding a relevant image of precision@r``, with R the
  number of relevant images of the query (a relevant image missing from the ranking
  counts as a precision of 0).

Problems are collected, not stopped at: a :class:`SubmissionError` lists every bad row of
a file, each with its line number and the reason.

Example
-------
>>> write_submission(database, "queries.csv", "submission.csv", k=100)     # doctest: +SKIP
>>> score_submission("submission.csv", "truth.csv")                         # doctest: +SKIP
{'recall@1': 0.329, 'recall@5': 0.679, 'recall@10': 0.854, 'map': 0.476, 'n_queries': 240}
"""
from __future__ import annotations

import csv
import io
import os
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np

from semsearch.evaluation import recall_at
from semsearch.common.files import atomic_write, check_writable, ensure_distinct_output
from semsearch.coco import UnknownIdError
from semsearch.database import ImageDatabase
from semsearch.paths import require_file
from semsearch.text import UnknownQueryError
from semsearch.common.checks import check_image_id, check_image_ids, check_k, check_ks
from semsearch.errors import InputError

PathLike = Union[str, "os.PathLike[str]"]
QUERIES_HEADER = ("query_id", "text")
SUBMISSION_HEADER = ("query_id", "image_ids")
TRUTH_HEADER = ("query_id", "image_id")


class SubmissionError(InputError):
    """A file with bad rows: ``problems`` lists ``(line number or None, reason)`` for each.

    Its message names the file and every problem, one per line.
    """

    def __init__(self, path: PathLike, problems: Sequence[Tuple[Optional[int], str]]):
        self.path = str(path)
        self.problems = list(problems)
        lines = [f"  line {line}: {reason}" if line is not None else f"  {reason}" for line, reason in self.problems]
        super().__init__(f"{self.path} has {len(self.problems)} problem(s):\n" + "\n".join(lines))


# --------------------------------------------------------------------------- reading CSV


def _rows(path: PathLike, header: Tuple[str, ...], what: str, problems: list) -> Iterator[Tuple[int, List[str]]]:
    """Yield ``(line number, stripped fields)`` of the data rows; check the header and field count."""
    path = require_file(path, what)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)  # "a"b is an error, not the text ab
        start = 1  # the line the row being read starts on
        try:
            first = next(reader, None)
            if first is None or tuple(field.strip().lower() for field in first) != header:
                got = ",".join(first or [])
                raise SubmissionError(path, [(1, f"the header must be {','.join(header)}, got {got!r}")])
            start = reader.line_num + 1
            for row in reader:
                line, start = start, reader.line_num + 1
                if not row or all(not field.strip() for field in row):
                    continue
                fields = [field.strip() for field in row]
                if len(fields) != len(header):
                    hint = " (quote a text that contains commas)" if len(fields) > len(header) else ""
                    problems.append((line, f"expected {len(header)} fields ({','.join(header)}), got {len(fields)}{hint}"))
                    continue
                if not fields[0]:
                    problems.append((line, "empty query_id"))
                    continue
                yield line, fields
        except UnicodeDecodeError as error:
            raise SubmissionError(path, [(reader.line_num + 1, f"not UTF-8 text: {error}")]) from None
        except csv.Error as error:
            if "end of data" in str(error):  # strict csv: a quote left open swallowed the rest of the file
                raise SubmissionError(path, [(start, _unclosed_quote(start, reader.line_num))]) from None
            raise SubmissionError(path, [(reader.line_num, f"not readable as CSV: {error}")]) from None


def _unclosed_quote(line: int, last: int) -> str:
    return (f"a quote (\") opened on this line is never closed: it would swallow lines {line}-{last} into one field "
            "(a stray quote?); close it, or write a quote inside a quoted text as \"\"")


def _read_queries(path: PathLike) -> Tuple[Dict[str, str], Dict[str, int]]:
    """Queries ``{query_id: text}`` in file order, and ``{query_id: line number}``."""
    problems: list = []
    texts: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    for line, (query_id, text) in _rows(path, QUERIES_HEADER, "queries file", problems):
        if query_id in texts:
            problems.append((line, f"query {query_id!r} already appears on line {lines[query_id]}"))
        elif not text:
            problems.append((line, f"query {query_id!r} has an empty text"))
        else:
            texts[query_id], lines[query_id] = text, line
    if problems:
        raise SubmissionError(path, problems)
    if not texts:
        raise SubmissionError(path, [(None, "no queries")])
    return texts, lines


def read_queries(path: PathLike) -> Dict[str, str]:
    """Read a queries file: ``{query_id: text}``, in file order.

    Raises
    ------
    SubmissionError
        Bad header, wrong number of fields, empty id or text, duplicate ids, no queries.
    """
    return _read_queries(path)[0]


def _parse_image_id(text: str) -> Optional[int]:
    """An image id written with the digits 0-9 only (no sign, no other scripts), else None."""
    try:
        return check_image_id(text)
    except InputError:
        return None


def read_submission(
    path: PathLike,
    valid_image_ids: Optional[Iterable[int]] = None,
    query_ids: Union[None, PathLike, Iterable[str]] = None,
) -> Dict[str, np.ndarray]:
    """Read and check a submission: ``{query_id: ranked image ids (n,) int64}``.

    Parameters
    ----------
    path : path
        The submission CSV (``query_id,image_ids``).
    valid_image_ids : iterable of int, optional
        The images that may be ranked; others are reported. None: any integer id.
    query_ids : queries file path, or iterable of str, optional
        The queries that must each have exactly one row; others are reported, and so
        are missing ones (with their line in the queries file, when it is a path).

    Raises
    ------
    SubmissionError
        Listing every bad row: wrong number of fields, empty query id, unknown or
        repeated query, empty ranking, an image id that is not an integer, unknown,
        or repeated within a ranking; and every missing query.

    Examples
    --------
    >>> rankings = read_submission("submission.csv", database.keys, "queries.csv")  # doctest: +SKIP
    >>> rankings["q1"][:3]                                                              # doctest: +SKIP
    array([229997, 442450, 544238])
    """
    valid = None if valid_image_ids is None else set(check_image_ids(valid_image_ids).tolist())
    expected, expected_lines = _expected_queries(query_ids)
    problems: list = []
    rankings: Dict[str, np.ndarray] = {}
    lines: Dict[str, int] = {}
    for line, (query_id, ranking) in _rows(path, SUBMISSION_HEADER, "submission file", problems):
        if query_id in lines:
            problems.append((line, f"query {query_id!r} already has a row on line {lines[query_id]}"))
            continue
        lines[query_id] = line
        ids, reasons = _parse_ranking(ranking, valid)
        if expected is not None and query_id not in expected:
            reasons.insert(0, "unknown query")
        if reasons:
            problems.append((line, f"query {query_id!r}: " + "; ".join(reasons)))
        else:
            rankings[query_id] = ids
    if expected is not None:
        for query_id in expected:
            if query_id not in lines:
                where = f" (queries file line {expected_lines[query_id]})" if query_id in expected_lines else ""
                problems.append((None, f"query {query_id!r}{where} has no row"))
    if problems:
        raise SubmissionError(path, problems)
    return rankings


def _expected_queries(query_ids) -> Tuple[Optional[List[str]], Dict[str, int]]:
    """The query ids a file must cover, in order, and their lines in a queries file."""
    if query_ids is None:
        return None, {}
    if isinstance(query_ids, (str, os.PathLike)):
        texts, lines = _read_queries(query_ids)
        return list(texts), lines
    return list(dict.fromkeys(str(q) for q in query_ids)), {}


def _parse_ranking(ranking: str, valid: Optional[Set[int]]) -> Tuple[np.ndarray, List[str]]:
    """Ranked ids (n,) from ``"139 285 632"``, and the reasons it is bad (empty if fine)."""
    tokens = ranking.split()
    if not tokens:
        return np.zeros(0, dtype=np.int64), ["no image ids"]
    ids = [_parse_image_id(t) for t in tokens]
    reasons = [f"image id {t!r} is not an integer" for t, i in zip(tokens, ids) if i is None]
    first_position: Dict[int, int] = {}
    for position, image_id in enumerate(ids, start=1):
        if image_id is None:
            continue
        if image_id in first_position:
            reasons.append(f"image id {image_id} is ranked twice (positions {first_position[image_id]} and {position})")
        else:
            first_position[image_id] = position
        if valid is not None and image_id not in valid:
            reasons.append(f"unknown image id {image_id}")
    return np.array([i for i in ids if i is not None], dtype=np.int64), reasons


def read_truth(path: PathLike) -> Dict[str, Set[int]]:
    """Read a ground-truth file: ``{query_id: set of relevant image ids}``, in file order.

    Raises
    ------
    SubmissionError
        Bad header or field count, empty query id, an image id that is not an integer,
        a repeated (query, image) pair, no rows.
    """
    problems: list = []
    truth: Dict[str, Set[int]] = {}
    first_line: Dict[Tuple[str, int], int] = {}
    for line, (query_id, text) in _rows(path, TRUTH_HEADER, "ground-truth file", problems):
        image_id = _parse_image_id(text)
        if image_id is None:
            problems.append((line, f"image id {text!r} is not an integer"))
        elif (query_id, image_id) in first_line:
            earlier = first_line[query_id, image_id]
            problems.append((line, f"query {query_id!r}, image {image_id} already appears on line {earlier}"))
        else:
            first_line[query_id, image_id] = line
            truth.setdefault(query_id, set()).add(image_id)
    if problems:
        raise SubmissionError(path, problems)
    if not truth:
        raise SubmissionError(path, [(None, "no rows")])
    return truth


# --------------------------------------------------------------------------- scoring


def average_precision(ranking: Sequence[int], relevant: Iterable[int]) -> float:
    """AP of one ranking: the mean, over the R relevant images, of precision at each one's rank.

    A relevant image that is not in the ranking contributes 0.

    >>> average_precision([5, 7, 9, 3], relevant={7, 3})   # hits at ranks 2 and 4
    0.5
    >>> (1 / 2 + 2 / 4) / 2
    0.5
    """
    relevant = set(check_image_ids(list(relevant)).tolist())
    if not relevant:
        raise InputError("average precision needs at least one relevant image")
    hits = np.isin(check_image_ids(ranking), list(relevant))
    ranks = np.flatnonzero(hits) + 1  # 1-based ranks of the relevant images found
    precisions = np.arange(1, len(ranks) + 1) / ranks
    return float(precisions.sum() / len(relevant))


def score_rankings(
    rankings: Mapping[str, Sequence[int]], truth: Mapping[str, Iterable[int]], ks: Sequence[int] = (1, 5, 10)
) -> Dict[str, float]:
    """Recall@K and mAP of rankings ``{query_id: ids}`` against ``{query_id: relevant ids}``.

    Every query of ``truth`` must have a ranking.

    Returns
    -------
    dict
        ``{"recall@K": ... for K in ks, "map": ..., "n_queries": Q}``
    """
    if not truth:
        raise InputError("no queries to score")
    ks = check_ks(ks)
    missing = [q for q in truth if q not in rankings]
    if missing:
        raise InputError(f"{len(missing)} queries have no ranking, e.g. {missing[:5]}")
    first_hit = []  # rank of the first relevant image per query; inf if none
    precisions = []
    for query_id, relevant in truth.items():
        relevant = set(check_image_ids(list(relevant)).tolist())
        ranking = check_image_ids(rankings[query_id])
        hits = np.flatnonzero(np.isin(ranking, list(relevant)))
        first_hit.append(hits[0] + 1 if len(hits) else np.inf)
        precisions.append(average_precision(ranking, relevant))
    first_hit = np.array(first_hit)
    scores: Dict[str, float] = {f"recall@{k}": value for k, value in recall_at(first_hit, ks).items()}
    scores["map"] = float(np.mean(precisions))
    scores["n_queries"] = len(truth)
    return scores


def score_submission(
    submission_path: PathLike,
    truth_path: PathLike,
    ks: Sequence[int] = (1, 5, 10),
    valid_image_ids: Optional[Iterable[int]] = None,
) -> Dict[str, float]:
    """Score a submission file against a ground-truth file: Recall@K and mAP.

    The submission must have exactly one row per query of the ground truth (and no
    other queries); see :func:`read_submission` for what else is checked.

    Returns
    -------
    dict
        ``{"recall@1": ..., "recall@5": ..., "recall@10": ..., "map": ..., "n_queries": Q}``

    Raises
    ------
    SubmissionError
        Bad rows in either file (all of them, by line number).
    """
    truth = read_truth(truth_path)
    rankings = read_submission(submission_path, valid_image_ids, query_ids=list(truth))
    return score_rankings(rankings, truth, ks)


# --------------------------------------------------------------------------- writing


def write_submission(
    database: ImageDatabase,
    queries: Union[PathLike, Mapping[str, str]],
    path: PathLike,
    k: int = 100,
    image_ids: Optional[Iterable[int]] = None,
    batch_size: int = 256,
) -> int:
    """Search the database for every query and write the ranked ids as a submission CSV.

    Parameters
    ----------
    database : ImageDatabase
        With a text encoder (``text_encoder=``).
    queries : queries file path, or mapping ``{query_id: text}``
    path : path
        The submission CSV to write (atomically).
    k : int
        Images per query; capped at the number of candidate images.
    image_ids : iterable of int, optional
        Rank only these images (all must be in the database). Default: all of them.
    batch_size : int
        Queries scored at a time (memory: ``batch_size x N`` floats).

    Returns
    -------
    int
        The number of queries written.

    Raises
    ------
    SubmissionError
        A bad queries file, or queries that ``se_text`` cannot embed (all listed).
    UnknownIdError
        ``image_ids`` that are not in the database.
    """
    k = check_k(k)
    check_writable(path, "submission file")
    if isinstance(queries, (str, os.PathLike)):
        ensure_distinct_output(path, [queries], "submission file")
    if database.text_encoder is None:
        raise InputError("the database has no text encoder: build it with text_encoder= to search with text")
    if isinstance(queries, (str, os.PathLike)):
        source = queries
        texts, lines = _read_queries(queries)
    else:
        source = "queries"
        texts, lines = {str(q): t for q, t in queries.items()}, {}
        if not texts:
            raise InputError("no queries given")
    unknown = []
    for query_id, text in texts.items():
        try:
            database.text_encoder.check_known(text)
        except UnknownQueryError as error:
            unknown.append((lines.get(query_id), f"query {query_id!r}: {error}"))
    if unknown:
        raise SubmissionError(source, unknown)

    candidates = database if image_ids is None else _restricted(database, image_ids)
    query_ids, query_texts = list(texts), list(texts.values())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUBMISSION_HEADER)
    for start in range(0, len(query_ids), batch_size):
        ranked, _ = candidates.query(query_texts[start : start + batch_size], k=k)
        for query_id, ids in zip(query_ids[start : start + batch_size], ranked):
            writer.writerow([query_id, " ".join(map(str, ids))])
    with atomic_write(path, "wb") as f:
        f.write(out.getvalue().encode("utf-8"))
    return len(query_ids)


def _restricted(database: ImageDatabase, image_ids: Iterable[int]) -> ImageDatabase:
    """The database with only ``image_ids`` (unique, all present)."""
    ids = np.unique(check_image_ids(image_ids))
    if len(ids) == 0:
        raise InputError("image_ids is empty")
    present = np.isin(ids, database.keys)
    if not present.all():
        missing = ids[~present]
        raise UnknownIdError(f"{len(missing)} image ids are not in the database: {missing[:10].tolist()}")
    order = np.argsort(database.keys)
    rows = order[np.searchsorted(database.keys, ids, sorter=order)]
    return ImageDatabase(ids, database.vectors[rows], database.text_encoder)
