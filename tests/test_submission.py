"""Ranked submissions: writing, reading (every bad row reported by line), and scoring
against hand-computed and brute-force Recall@K and average precision."""
import csv
import re

import numpy as np
import pytest
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.coco import CocoCaptions, UnknownIdError
from semsearch.database import ImageDatabase
from semsearch.dataset import join
from semsearch.descriptors import Descriptors
from semsearch.evaluation import evaluate
from semsearch.model import Autoembedder
from semsearch.routes.submission import (
    SubmissionError,
    average_precision,
    read_queries,
    read_submission,
    read_truth,
    score_rankings,
    score_submission,
    write_submission,
)
from semsearch.text import TextEmbedder
from semsearch.training import train


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reference_ap(ranking, relevant):
    """Average precision by its definition, with plain loops."""
    hits, total = 0, 0.0
    for rank, image_id in enumerate(ranking, start=1):
        if image_id in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


# --------------------------------------------------------------------------- metrics by hand
def test_average_precision_by_hand():
    assert average_precision([5, 7, 9, 3], {7, 3}) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert average_precision([1, 2, 3], {1}) == 1.0
    assert average_precision([1, 2, 3], {3}) == pytest.approx(1 / 3)
    assert average_precision([1, 2, 3], {4}) == 0.0
    assert average_precision([9, 1], {1, 2}) == pytest.approx((1 / 2) / 2)  # 2 is never retrieved
    with pytest.raises(ValueError, match="at least one relevant"):
        average_precision([1], set())


def test_score_submission_by_hand(tmp_path):
    truth = write_csv(tmp_path / "truth.csv", ["query_id", "image_id"],
                      [["q1", 10], ["q2", 20], ["q2", 21], ["q3", 30]])
    submission = write_csv(tmp_path / "sub.csv", ["query_id", "image_ids"], [
        ["q1", "10 11 12"],           # relevant at rank 1: AP 1
        ["q3", "31 32 33 34 35 30"],  # relevant at rank 6: AP 1/6
        ["q2", "1 20 2 3 4 21"],      # relevant at ranks 2 and 6: AP (1/2 + 2/6) / 2
    ])
    scores = score_submission(submission, truth, ks=(1, 5, 10))
    assert scores["recall@1"] == pytest.approx(1 / 3)
    assert scores["recall@5"] == pytest.approx(2 / 3)
    assert scores["recall@10"] == pytest.approx(1.0)
    assert scores["map"] == pytest.approx((1 + 1 / 6 + (1 / 2 + 2 / 6) / 2) / 3)
    assert scores["n_queries"] == 3


@settings(max_examples=100, deadline=None)
@given(
    rankings=st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=15, unique=True), min_size=1, max_size=8),
    relevant=st.lists(st.sets(st.integers(0, 30), min_size=1, max_size=4), min_size=8, max_size=8),
    ks=st.lists(st.integers(1, 20), min_size=1, max_size=3, unique=True),
)
def test_scores_match_brute_force(rankings, relevant, ks):
    rankings = {f"q{i}": r for i, r in enumerate(rankings)}
    truth = {f"q{i}": relevant[i] for i in range(len(rankings))}
    scores = score_rankings(rankings, truth, ks)
    for k in ks:
        expected = np.mean([bool(set(rankings[q][:k]) & truth[q]) for q in truth])
        assert scores[f"recall@{k}"] == pytest.approx(expected)
    assert scores["map"] == pytest.approx(np.mean([reference_ap(rankings[q], truth[q]) for q in truth]))
    for q in truth:
        assert average_precision(rankings[q], truth[q]) == pytest.approx(reference_ap(rankings[q], truth[q]))


def test_score_rankings_errors():
    with pytest.raises(ValueError, match="no ranking"):
        score_rankings({"a": [1]}, {"a": {1}, "b": {2}})
    with pytest.raises(ValueError, match="every k in ks must be an integer >= 1, got 0"):
        score_rankings({"a": [1]}, {"a": {1}}, ks=(0,))


# --------------------------------------------------------------------------- reading, bad rows
def test_every_bad_row_is_reported_with_its_line(tmp_path):
    queries = write_lines(tmp_path / "queries.csv",
                          ["query_id,text", "q1,a dog", "q2,a cat", "q3,a bus", "q4,a tree"])
    submission = write_lines(tmp_path / "sub.csv", [
        "query_id,image_ids",       # line 1
        "q1,1 2 3",                 # 2 fine
        "q1,1 2 3",                 # 3 duplicate query
        "q9,1 y",                   # 4 unknown query (and a bad id)
        "q2,1 x 99 1",              # 5 not an integer, unknown id, repeated id
        "",                         # 6 blank: ignored
        "q3,1,2",                   # 7 three fields
        ",1 2",                     # 8 empty query id
        "q4,",                      # 9 no image ids
    ])
    with pytest.raises(SubmissionError) as caught:
        read_submission(submission, valid_image_ids=[1, 2, 3], query_ids=queries)
    problems = caught.value.problems
    assert [line for line, _ in problems] == [3, 4, 5, 7, 8, 9, None]
    message = str(caught.value)
    assert "sub.csv has 7 problem(s)" in message
    assert "line 3: query 'q1' already has a row on line 2" in message
    assert "line 4: query 'q9': unknown query; image id 'y' is not an integer" in message
    assert "image id 'x' is not an integer" in message and "unknown image id 99" in message
    assert "image id 1 is ranked twice (positions 1 and 4)" in message
    assert "line 7: expected 2 fields" in message and "quote" in message
    assert "line 8: empty query_id" in message
    assert "line 9: query 'q4': no image ids" in message
    assert problems[-1] == (None, "query 'q3' (queries file line 4) has no row")  # its only row was unreadable
    assert isinstance(caught.value, ValueError)


def test_missing_queries_are_reported_with_their_queries_file_line(tmp_path):
    queries = write_lines(tmp_path / "queries.csv", ["query_id,text", "q1,a dog", "q2,a cat", "q3,a bus"])
    submission = write_lines(tmp_path / "sub.csv", ["query_id,image_ids", "q2,5"])
    with pytest.raises(SubmissionError) as caught:
        read_submission(submission, query_ids=queries)
    assert caught.value.problems == [(None, "query 'q1' (queries file line 2) has no row"),
                                     (None, "query 'q3' (queries file line 4) has no row")]
    with pytest.raises(SubmissionError, match="query 'q1' has no row"):
        read_submission(submission, query_ids=["q1", "q2"])


BAD_KINDS = ("duplicate query", "unknown query", "not an integer", "unknown image", "repeated image",
             "no ids", "fields", "empty id")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(BAD_KINDS)), min_size=1, max_size=25), st.integers(0, 10**6))
def test_bad_rows_found_wherever_they_are(tmp_path_factory, kinds, seed):
    rng = np.random.default_rng(seed)
    query_ids = [f"q{i}" for i in range(len(kinds))]
    lines, bad_lines, seen = ["query_id,image_ids"], [], []
    for i, kind in enumerate(kinds):
        ids = [str(x) for x in rng.choice(50, size=3, replace=False)]
        query = query_ids[i]
        if kind == "duplicate query":
            if seen:
                query = seen[0]  # a query that already has a row
            else:
                kind = None  # nothing to repeat yet: a good row
        row = {
            None: f"{query},{' '.join(ids)}",
            "duplicate query": f"{query},{' '.join(ids)}",
            "unknown query": f"nope{i},{' '.join(ids)}",
            "not an integer": f"{query},{ids[0]} 1.5 {ids[1]}",
            "unknown image": f"{query},{ids[0]} 777",
            "repeated image": f"{query},{ids[0]} {ids[1]} {ids[0]}",
            "no ids": f"{query},",
            "fields": f"{query},{ids[0]},{ids[1]}",
            "empty id": f",{ids[0]}",
        }[kind]
        lines.append(row)
        if kind is not None:
            bad_lines.append(i + 2)  # the header is line 1
        if kind not in ("duplicate query", "unknown query", "fields", "empty id"):
            seen.append(query)
    path = write_lines(tmp_path_factory.mktemp("bad") / "sub.csv", lines)
    if not bad_lines:
        rankings = read_submission(path, valid_image_ids=range(50), query_ids=query_ids)
        assert list(rankings) == query_ids
        assert all(r.dtype == np.int64 and len(r) == 3 for r in rankings.values())
        return
    with pytest.raises(SubmissionError) as caught:
        read_submission(path, valid_image_ids=range(50), query_ids=query_ids + ["extra"])
    reported = caught.value.problems
    assert [line for line, _ in reported if line is not None] == bad_lines
    assert reported[-1] == (None, "query 'extra' has no row")  # missing queries come last


def test_bad_header_and_empty_files(tmp_path):
    with pytest.raises(SubmissionError, match="line 1: the header must be query_id,image_ids"):
        read_submission(write_lines(tmp_path / "a.csv", ["q1,1 2 3"]))
    with pytest.raises(SubmissionError, match="line 1: the header must be query_id,text"):
        read_queries(write_lines(tmp_path / "b.csv", ["id,caption", "q1,a dog"]))
    with pytest.raises(SubmissionError, match="no queries"):
        read_queries(write_lines(tmp_path / "c.csv", ["query_id,text"]))
    with pytest.raises(SubmissionError, match="no rows"):
        read_truth(write_lines(tmp_path / "d.csv", ["query_id,image_id"]))
    with pytest.raises(FileNotFoundError, match="submission file not found"):
        read_submission(tmp_path / "missing.csv")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("query_id,text\nq1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(SubmissionError, match="not UTF-8 text"):
        read_queries(latin1)


def test_queries_and_truth_files(tmp_path):
    queries = write_lines(tmp_path / "queries.csv", [
        "query_id,text", 'q1,"two cats, asleep"', "q2,", "q1,again", "q3,a dog,extra", "q4,fine"])
    with pytest.raises(SubmissionError) as caught:
        read_queries(queries)
    assert [line for line, _ in caught.value.problems] == [3, 4, 5]
    good = write_lines(tmp_path / "good.csv", ["\ufeffquery_id,text", 'q1,"two cats, asleep"', " q2 , a dog "])
    assert read_queries(good) == {"q1": "two cats, asleep", "q2": "a dog"}  # BOM and spaces are fine

    truth = write_lines(tmp_path / "truth.csv", ["query_id,image_id", "q1,5", "q1,6", "q1,5", "q2,x"])
    with pytest.raises(SubmissionError) as caught:
        read_truth(truth)
    assert caught.value.problems == [(4, "query 'q1', image 5 already appears on line 2"),
                                     (5, "image id 'x' is not an integer")]
    assert read_truth(write_lines(tmp_path / "t2.csv", ["query_id,image_id", "q1,5", "q1,6", "q2,5"])) == {
        "q1": {5, 6}, "q2": {5}}


def test_score_submission_checks_the_submission_against_the_truth(tmp_path):
    truth = write_lines(tmp_path / "truth.csv", ["query_id,image_id", "q1,5", "q2,6"])
    submission = write_lines(tmp_path / "sub.csv", ["query_id,image_ids", "q1,5 6", "q3,6"])
    with pytest.raises(SubmissionError) as caught:
        score_submission(submission, truth, valid_image_ids=[5, 6])
    assert caught.value.problems == [(3, "query 'q3': unknown query"), (None, "query 'q2' has no row")]


# --------------------------------------------------------------------------- writing
@pytest.fixture
def tiny_database():
    glove = KeyedVectors(vector_size=3)
    glove.add_vectors(["dog", "cat", "beach"], np.eye(3, dtype=np.float32))
    embedder = TextEmbedder({"dog": 1.0, "cat": 1.0, "beach": 0.5}, glove)
    vectors = np.random.default_rng(0).normal(size=(12, 3))
    return ImageDatabase(np.arange(500, 512), vectors, embedder)


def test_write_submission_round_trip(tiny_database, tmp_path):
    texts = {"q1": "a dog", "q2": "a cat on the beach", "q3": "dog, cat"}
    queries = write_csv(tmp_path / "queries.csv", ["query_id", "text"], list(texts.items()))
    path = tmp_path / "out" / "submission.csv"
    assert write_submission(tiny_database, queries, path, k=5) == 3
    rankings = read_submission(path, tiny_database.keys, queries)
    assert list(rankings) == ["q1", "q2", "q3"]
    for query_id, text in texts.items():
        np.testing.assert_array_equal(rankings[query_id], tiny_database.query(text, k=5)[0])
    assert path.read_text().splitlines()[0] == "query_id,image_ids"
    assert [p.name for p in path.parent.iterdir()] == ["submission.csv"]  # no temporary file left

    # the same from a mapping, in batches of one query
    other = tmp_path / "other.csv"
    write_submission(tiny_database, texts, other, k=5, batch_size=1)
    assert other.read_bytes() == path.read_bytes()


def test_write_submission_restricted_to_image_ids(tiny_database, tmp_path):
    path = tmp_path / "sub.csv"
    allowed = [511, 503, 507, 500]
    write_submission(tiny_database, {"q": "a dog"}, path, k=10, image_ids=allowed)
    ranking = read_submission(path, allowed, ["q"])["q"]
    assert sorted(ranking) == sorted(allowed)  # k is capped at the 4 candidates
    scores = tiny_database.vectors[ranking - 500] @ tiny_database.text_encoder("a dog")
    assert np.all(np.diff(scores) <= 0)
    with pytest.raises(UnknownIdError, match=r"1 image ids are not in the database: \[9\]"):
        write_submission(tiny_database, {"q": "a dog"}, path, image_ids=[500, 9])


def test_write_submission_lists_unknown_queries_by_line(tiny_database, tmp_path):
    queries = write_lines(tmp_path / "queries.csv", ["query_id,text", "q1,a dog", "q2,a zebra", "q3,cat", "q4,the"])
    path = tmp_path / "sub.csv"
    with pytest.raises(SubmissionError) as caught:
        write_submission(tiny_database, queries, path)
    assert [line for line, _ in caught.value.problems] == [3, 5]
    assert "q2" in str(caught.value) and "zebra" in str(caught.value)
    assert not path.exists()
    with pytest.raises(ValueError, match="k must be"):
        write_submission(tiny_database, {"q": "dog"}, path, k=0)
    no_text = ImageDatabase(tiny_database.keys, tiny_database.vectors)
    with pytest.raises(ValueError, match="no text encoder"):
        write_submission(no_text, {"q": "dog"}, path)


# --------------------------------------------------------------------------- real data
def test_real_captions_as_queries_agree_with_evaluate(real_data, tmp_path):
    coco = CocoCaptions.load(real_data / "coco/annotations/captions_val2017.json",
                             real_data / "coco/annotations/captions_train2017_mini.json")
    data = join(coco, Descriptors.load(real_data / "descriptors/effnet_lite0_coco_mini.pkl"), warn=False)
    embedder = TextEmbedder.fit(data.captions.captions(data.captions.caption_ids))
    model = Autoembedder(data.descriptors.dim, seed=0)
    train(model, data, embedder, data.image_ids[::2], epochs=5, progress=False)
    database = ImageDatabase.build(model, data.descriptors, embedder)

    image_ids = data.image_ids[1::2]  # the images not trained on, and only their captions
    caption_ids = data.captions.caption_ids_of_images(image_ids)
    queries = write_csv(tmp_path / "queries.csv", ["query_id", "text"],
                        [[f"c{c}", data.captions.caption(c)] for c in caption_ids])
    truth = write_csv(tmp_path / "truth.csv", ["query_id", "image_id"],
                      [[f"c{c}", data.captions.image_of(c)] for c in caption_ids])
    path = tmp_path / "submission.csv"
    write_submission(database, queries, path, k=len(image_ids), image_ids=image_ids)
    scores = score_submission(path, truth, ks=(1, 5, 10), valid_image_ids=image_ids)

    reference = evaluate(model, data, embedder, image_ids, ks=(1, 5, 10))
    assert scores["n_queries"] == reference.n_queries == len(caption_ids)
    for k in (1, 5, 10):
        assert scores[f"recall@{k}"] == pytest.approx(reference.recall[k])
    # one relevant image per query and a full ranking: AP = 1 / rank, so mAP = MRR. The two rank
    # scores from two matrix products (database @ queries, queries @ database) whose last bits can
    # differ with BLAS threading: a near-tie deep in a ranking may flip, moving MRR by ~1e-5.
    assert scores["map"] == pytest.approx(reference.mean_reciprocal_rank, abs=1e-4)
    assert scores["recall@10"] > 2 * 10 / len(image_ids)  # well above chance

    first = path.read_text().splitlines()[1]
    assert re.fullmatch(r"c\d+,\d+( \d+){%d}" % (len(image_ids) - 1), first)
