"""semsearch as a CogWorks Week 3 benchmark submission, scored by the benchmark's own code.

The benchmark (MIT) is read from ``$COGWORKS_BENCHMARK_SRC``, else from
``$SEMSEARCH_DATA/../vendor/cogworks-week3-language-benchmark``; without it these tests skip.
The cases are built from the shared real data: 50 COCO images are held out of the captions
the adapter trains on, and queried among all 159 val2017 images that have a descriptor.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.routes.benchmark import MODEL_ENV, SearchAdapter, create_search_adapter, default_model_dir

N_HELD_OUT = 50


def _benchmark_src(real_data: Path) -> Path:
    named = os.environ.get("COGWORKS_BENCHMARK_SRC")
    return Path(named) if named else real_data.parent / "vendor" / "cogworks-week3-language-benchmark"


@pytest.fixture(scope="module")
def bench(real_data):
    src = _benchmark_src(real_data)
    if not (src / "language_search_benchmark").is_dir():
        pytest.skip(f"the CogWorks benchmark source is not at {src}")
    sys.path.insert(0, str(src))
    try:
        import language_search_benchmark.datasets as datasets
        import language_search_benchmark.drivers as drivers
        import language_search_benchmark.metrics as metrics
        import language_search_benchmark.plugins as plugins
        from language_search_benchmark.contracts import Resources
    finally:
        sys.path.remove(str(src))
    return datasets, drivers, metrics, plugins, Resources


@pytest.fixture(scope="module")
def course(real_data, bench, tmp_path_factory):
    """Resources whose captions leave out the held-out images, and the cases over them."""
    datasets, _, _, _, Resources = bench
    import pickle

    folder = tmp_path_factory.mktemp("course")
    blob = json.loads((real_data / "coco" / "annotations" / "captions_val2017.json").read_text())
    with open(real_data / "descriptors" / "effnet_lite0_coco_mini.pkl", "rb") as f:
        features = pickle.load(f)  # the shared data's own file: trusted
    pool = sorted(i for i in {im["id"] for im in blob["images"]} if i in features)
    held_out = set(np.random.default_rng(0).choice(pool, N_HELD_OUT, replace=False).tolist())
    train_blob = dict(blob, images=[im for im in blob["images"] if im["id"] not in held_out],
                      annotations=[a for a in blob["annotations"] if a["image_id"] not in held_out])
    captions_path = folder / "captions_train.json"
    captions_path.write_text(json.dumps(train_blob))
    resources = Resources(captions_path=captions_path, descriptors_path=real_data / "descriptors" / "effnet_lite0_coco_mini.pkl",
                          glove_path=folder / "unused-glove.txt")

    by_image: dict = {}
    for a in sorted(blob["annotations"], key=lambda a: a["id"]):
        by_image.setdefault(a["image_id"], []).append(a["caption"])
    held = sorted(held_out)
    text_captions = [c for i in held for c in by_image[i][:5]]
    groups = [g for g, i in enumerate(held) for _ in by_image[i][:5]]
    queries = [by_image[i][0] for i in held]
    matrix = np.stack([np.asarray(features[i], dtype=np.float32).reshape(-1) for i in pool])
    gold_rows = [pool.index(i) for i in held]
    cases = [
        datasets.TextCase(kind="text", captions=text_captions, group_rows=groups, tie_break_seed=7),
        datasets.RetrievalCase(kind="retrieval", queries=queries, descriptors=matrix, gold_rows=gold_rows, tie_break_seed=7),
        datasets.SearchCase(kind="search", queries=queries, image_ids=pool, descriptors=matrix.copy(),
                            gold_image_ids=held, k=datasets.SEARCH_K, tie_break_seed=7),
    ]
    return resources, cases, pool, held


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-model") / "model"


def test_default_model_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "m"))
    assert default_model_dir() == tmp_path / "m"
    monkeypatch.delenv(MODEL_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_model_dir() == tmp_path / "cache" / "semsearch" / "benchmark-model"


def test_benchmark_scores_the_adapter_above_chance(bench, course, model_dir, monkeypatch):
    _, drivers, metrics, plugins, _ = bench
    resources, cases, pool, held = course
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    outputs = drivers.run_cases(create_search_adapter, resources, cases)  # trains: no model yet
    assert [o["ok"] for o in outputs] == [True, True, True], outputs
    assert (model_dir / "bundle.json").is_file()
    scores = plugins.LanguageSearchBenchmark().score(outputs, cases)
    print("benchmark scores:", json.dumps({k: round(v, 4) for k, v in scores.items()}))
    chance = metrics.chance_mrr(len(pool))
    assert scores["chance_mrr"] == pytest.approx(chance)
    assert scores["retrieval_mrr"] > 2 * chance and scores["search_mrr"] > 2 * chance
    assert scores["text_mrr"] > 2 * metrics.chance_mrr_first_relevant(len(held) * 5 - 1, 4)
    assert scores["overall"] == pytest.approx((scores["text_mrr"] + scores["retrieval_mrr"] + scores["search_mrr"]) / 3)


def test_search_agrees_with_the_benchmarks_own_ranking(bench, course, model_dir, monkeypatch):
    """search() ranks the pool as the controller ranks embed_text x embed_images."""
    _, drivers, _, _, _ = bench
    resources, cases, pool, _ = course
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    adapter = create_search_adapter(resources)
    search_case = cases[2]
    adapter.prepare_database(search_case.image_ids, search_case.descriptors)
    scores = adapter.embed_text(search_case.queries) @ adapter.embed_images(search_case.descriptors).T
    for row, query in enumerate(search_case.queries[:10]):
        expected = [pool[c] for c in np.argsort(-scores[row], kind="stable")[:10]]
        assert adapter.search(query, 10) == expected


def test_a_second_run_loads_the_saved_model(bench, course, model_dir, monkeypatch):
    resources, cases, _, _ = course
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    saved = (model_dir / "bundle.json").stat().st_mtime_ns
    first = create_search_adapter(resources).embed_images(cases[1].descriptors)
    second = create_search_adapter(None).embed_images(cases[1].descriptors)  # no course files needed now
    np.testing.assert_array_equal(first, second)
    assert (model_dir / "bundle.json").stat().st_mtime_ns == saved


def test_adapter_shapes_and_errors(bench, course, model_dir, monkeypatch):
    from semsearch.errors import InputError

    resources, cases, pool, _ = course
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    adapter = create_search_adapter(resources)
    assert isinstance(adapter, SearchAdapter)
    text = adapter.embed_text(["a dog catching a frisbee", "two cats"])
    assert text.shape == (2, 50) and np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    with pytest.raises(InputError, match="prepare_database"):
        adapter.search("a dog", 5)
    adapter.prepare_database(pool, cases[2].descriptors)
    assert adapter.search("qwzx vvbn", 5) == []  # no known word: a miss, not a crash
    with pytest.raises(InputError, match=r"shape \(N, 1280\), got \(3, 512\)"):
        adapter.embed_images(np.zeros((3, 512), dtype=np.float32))


def test_no_model_and_no_course_files_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="no semsearch model in"):
        create_search_adapter(None)
