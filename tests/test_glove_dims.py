"""GloVe files of any dimension: a zipped word2vec file is read as the course hands it out,
and train / eval / demo / the exercises' pipeline follow its dimension (here E = 7).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from semsearch.errors import InputError
from semsearch.glove import _load_text, load_glove, unpack_zip
from semsearch.text import tokenize

DIM = 7


@pytest.fixture(autouse=True)
def fresh_text_cache():
    _load_text.cache_clear()
    yield
    _load_text.cache_clear()


def write_w2v(path: Path, words, dim: int = DIM, seed: int = 0) -> dict:
    """A word2vec text file (header ``count dim``) with a random vector per word; returns them."""
    rng = np.random.default_rng(seed)
    vectors = {w: np.round(rng.normal(size=dim), 4) for w in words}
    lines = [f"{len(vectors)} {dim}"] + [w + " " + " ".join(f"{x:.4f}" for x in v) for w, v in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return vectors


def test_a_zipped_word2vec_file_of_another_dimension_loads_and_is_unpacked_once(tmp_path):
    text = tmp_path / "src" / "glove.6B.7d.txt.w2v"
    text.parent.mkdir()
    vectors = write_w2v(text, ["the", "dog", "beach"])
    archive = tmp_path / "glove.6B.7d.txt.w2v.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(text, "glove.6B.7d.txt.w2v")
    glove = load_glove(archive)
    assert glove.vector_size == DIM and list(glove.index_to_key) == ["the", "dog", "beach"]
    np.testing.assert_allclose(glove["dog"], vectors["dog"], rtol=1e-6)
    unpacked = tmp_path / "glove.6B.7d.txt.w2v"
    assert unpacked.is_file() and unpack_zip(archive) == unpacked
    before = unpacked.stat().st_mtime_ns
    _load_text.cache_clear()
    assert load_glove(archive).vector_size == DIM and unpacked.stat().st_mtime_ns == before  # not unpacked again


def test_a_zip_without_exactly_one_file_is_refused_in_one_line(tmp_path):
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x 1 2\n")
        z.writestr("b.txt", "y 1 2\n")
    with pytest.raises(InputError, match="should hold one GloVe text file"):
        load_glove(archive)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(InputError, match="not a readable zip"):
        load_glove(broken)


@pytest.fixture
def glove7(real_data, tmp_path) -> Path:
    """A 7-d word2vec file covering the words of the real data's captions."""
    import semsearch

    files, _ = semsearch.find_data_files(Path(real_data))
    coco = semsearch.CocoCaptions.load(*files)
    words = sorted({w for text in coco.captions(coco.caption_ids) for w in tokenize(text)})
    path = tmp_path / "glove.7d.txt.w2v"
    write_w2v(path, words)
    return path


def test_train_and_demo_follow_the_glove_dimension(real_data, glove7, tmp_path, capsys):
    from semsearch.bundle import load_bundle
    from semsearch.cli.commands import main

    out = tmp_path / "model"
    assert main(["train", "--data", str(real_data), "--glove", str(glove7), "--epochs", "2", "--out", str(out)]) == 0
    model, text_encoder, database = load_bundle(out)
    assert model.output_dim == DIM and text_encoder.dim == DIM and database.vectors.shape[1] == DIM
    assert database.query("a dog on the beach", k=3)[0].shape == (3,)

    assert main(["eval", "--data", str(real_data), "--glove", str(glove7), "--folds", "2", "--epochs", "1"]) == 0
    assert "2-fold cross-validation" in capsys.readouterr().out

    demo = tmp_path / "demo"
    assert main(["demo", "--data", str(real_data), "--glove", str(glove7), "--out", str(demo), "--no-download", "--query", "a dog"]) == 0
    assert load_bundle(demo / "model")[0].output_dim == DIM


def test_the_pipeline_and_the_checks_take_any_dimension(real_data, glove7):
    from semsearch.exercises.grading import load_fixed_split
    from semsearch.exercises.pipeline import run_pipeline

    from semsearch.database import ImageDatabase

    def build_reversed(model, descriptors):  # a team's database may list its images in any order
        database = ImageDatabase.build(model, descriptors)
        return database.keys[::-1], database.vectors[::-1]

    data, corpus, train_ids, val_ids = load_fixed_split(real_data)
    result = run_pipeline(data, corpus, {"build_database": build_reversed}, train_ids, val_ids, glove=load_glove(glove7), epochs=2)
    assert result.model.output_dim == DIM and result.database.vectors.shape[1] == DIM
    assert set(result.scores) == {"recall@1", "recall@5", "recall@10", "median_rank", "mrr"}
    assert result.used["build_database"] == "team" and result.scores == result.library_scores
    library = run_pipeline(data, corpus, {}, train_ids, val_ids, glove=load_glove(glove7), epochs=2)
    assert result.scores == library.scores
    assert [ids.tolist() for _, ids, _ in result.searches] == [ids.tolist() for _, ids, _ in library.searches]
