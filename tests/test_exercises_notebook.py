"""The student edition of the capstone notebook: stubs run to the end, solutions pass and score.

``notebooks/capstone-student.md`` (jupytext) is the source, ``capstone-student.ipynb`` its
pairing (``jupytext --to ipynb notebooks/capstone-student.md``), stored without outputs. With
every stub as handed out, the notebook runs to the end and every check says "not written yet"
(the run at the end uses the library's functions). With the solutions below filled into the
stubs (student-style code, not the library's), every check passes and the run with the team's
functions scores within two standard deviations of the library's 5-fold spread.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "notebooks" / "capstone-student.md"
PAIRED = SOURCE.with_suffix(".ipynb")

jupytext = pytest.importorskip("jupytext", reason="needs the notebook extra: pip install -e .[notebook]")
nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra: pip install -e .[notebook]")

#: A student's solution of each stub (what a test fills in), keyed by the stub's name.
SOLUTIONS = {
    "split_images": '''
def split_images(image_ids, validation_fraction=0.2, seed=0):
    ids = np.random.default_rng(seed).permutation(np.asarray(image_ids))
    n_val = int(round(validation_fraction * len(ids)))
    return np.sort(ids[n_val:]), np.sort(ids[:n_val])
''',
    "inverse_document_frequency": '''
from collections import Counter

def inverse_document_frequency(texts):
    counts = Counter()
    for text in texts:
        counts.update(set(semsearch.tokenize(text)))
    return {word: np.log10(len(texts) / n) for word, n in counts.items()}
''',
    "make_se_text": '''
def make_se_text(captions, glove):
    idf = inverse_document_frequency(captions)

    def se_text(text):
        if not isinstance(text, str):
            return np.stack([se_text(t) for t in text]) if len(text) else np.zeros((0, glove.vector_size))
        total = np.zeros(glove.vector_size)
        for word in semsearch.tokenize(text):
            if word in idf and word in glove.key_to_index:
                total += idf[word] * glove[word]
        norm = np.linalg.norm(total)
        return total / norm if norm > 0 else total

    return se_text
''',
    "Model": '''
from mynn.initializers import glorot_normal
from mynn.layers.dense import dense

class Model:
    def __init__(self, input_dim, output_dim, seed=0):
        np.random.seed(seed)
        self.dense = dense(input_dim, output_dim, weight_initializer=glorot_normal)

    def __call__(self, descriptors):
        out = self.dense(np.asarray(descriptors, dtype=np.float32))
        return out / mg.sqrt(mg.sum(out ** 2, axis=1, keepdims=True))

    @property
    def parameters(self):
        return self.dense.parameters
''',
    "make_triples": '''
def make_triples(split, *, negatives="random", n_candidates=10, caption_vectors=None, seed=0):
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = len(split.image_ids)
    other = rng.integers(0, n - 1, size=len(split.image_rows))
    bad_rows = other + (other >= split.image_rows)
    good = split.image_ids[split.image_rows]
    return np.stack([split.caption_ids, good, split.image_ids[bad_rows]], axis=1)
''',
    "loss_accuracy": '''
from mygrad.nnet.losses import margin_ranking_loss

def loss_accuracy(sim_good, sim_bad, margin):
    loss = margin_ranking_loss(sim_good, sim_bad, 1, margin)
    return loss, float(np.mean(mg.asarray(sim_good) > mg.asarray(sim_bad)))
''',
    "train_step": '''
def train_step(model, optimizer, descriptors_good, descriptors_bad, captions, margin):
    sim_good = mg.sum(model(descriptors_good) * captions, axis=1)
    sim_bad = mg.sum(model(descriptors_bad) * captions, axis=1)
    loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
    loss.backward()
    optimizer.step()
    return loss.item(), accuracy
''',
    "preprocess": '''
from PIL import Image

def preprocess(image, backbone):
    mean, std = (0.5, 0.5) if backbone == "efficientnet-lite0" else (np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))
    image = image.convert("RGB")
    w, h = image.size
    size = (256, int(256 * h / w)) if w <= h else (int(256 * w / h), 256)
    image = image.resize(size, Image.BILINEAR)
    left, top = round((size[0] - 224) / 2), round((size[1] - 224) / 2)
    x = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    return ((x - mean) / std).transpose(2, 0, 1)
''',
    "build_database": '''
def build_database(model, descriptors):
    with mg.no_autodiff:
        vectors = np.asarray(model(descriptors.vectors))
    return descriptors.ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
''',
    "top_k": '''
def top_k(scores, k):
    return np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
''',
    "show_images": '''
from PIL import Image

def show_images(image_ids, scores=None, *, image_dir=None, **options):
    n = len(image_ids)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3), squeeze=False)
    for ax, coco_id, score in zip(axes[0], image_ids, scores if scores is not None else [None] * n):
        path = Path(image_dir) / f"{coco_id:012d}.jpg"
        if path.is_file():
            ax.imshow(Image.open(path))
        ax.set_title(f"{coco_id}" + (f"  {score:.3f}" if score is not None else ""))
        ax.axis("off")
    return fig
''',
    "target_ranks": '''
def target_ranks(scores, targets):
    scores = np.asarray(scores)
    own = scores[np.arange(len(scores)), targets][:, None]
    return (scores >= own).sum(axis=1)
''',
    "retrieval_scores": '''
def retrieval_scores(ranks, n_images, ks=(1, 5, 10)):
    ranks = np.asarray(ranks)
    scores = {f"recall@{k}": float(np.mean(ranks <= k)) for k in ks}
    scores["median_rank"] = float(np.median(ranks))
    scores["mrr"] = float(np.mean(1 / ranks))
    return scores
''',
}
N_CHECKS = 13
STUB = re.compile(r"^(?:def|class) (\w+)", re.MULTILINE)


def _cells(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


def stub_cells(nb) -> dict:
    """Name -> the code cell that defines that stub (it raises NotImplementedError)."""
    found = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and "raise NotImplementedError()" in cell.source:
            found[STUB.search(cell.source).group(1)] = cell
    return found


def fill_in(nb, solutions: dict):
    for name, cell in stub_cells(nb).items():
        if name in solutions:
            cell.source = solutions[name].strip()
    return nb


def test_ipynb_is_in_sync_with_md_and_stored_without_outputs():
    source, paired = jupytext.read(SOURCE), nbformat.read(PAIRED, as_version=4)
    assert _cells(paired) == _cells(source), "run `jupytext --to ipynb notebooks/capstone-student.md`"
    assert all(cell.outputs == [] for cell in paired.cells if cell.cell_type == "code")


def test_every_stub_has_a_solution_and_its_check_cell_follows_it():
    nb = jupytext.read(SOURCE)
    stubs = stub_cells(nb)
    assert set(stubs) == set(SOLUTIONS) and len(stubs) == N_CHECKS
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    for cell in stubs.values():
        following = code[code.index(cell.source) + 1]
        assert following.startswith("reports[") and "check_" in following


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that runs this very interpreter, found before any other."""
    kernelspec = pytest.importorskip("ipykernel.kernelspec", reason="needs ipykernel: pip install -e .[notebook]")
    kernelspec.write_kernel_spec(path=str(tmp_path / "kernels" / "python3"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.delenv("SEMSEARCH_GLOVE", raising=False)
    return "python3"


def _run(nb, kernel):
    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra: pip install -e .[notebook]")
    nb.cells.append(nbformat.v4.new_code_cell(
        "import json\nprint('RESULT=' + json.dumps({'scores': result.scores, 'used': result.used, "
        "'status': {t: r.status for t, r in reports.items()}}))"))
    nbclient.NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    return text, json.loads(text.split("RESULT=", 1)[1])


def test_the_stub_notebook_runs_to_the_end_saying_not_written_yet(real_data, python3_kernel, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_DATA", str(Path(real_data).resolve()))
    text, result = _run(jupytext.read(SOURCE), python3_kernel)
    assert text.count("not written yet (it raises NotImplementedError)") == N_CHECKS
    assert set(result["status"].values()) == {"not written"} and len(result["status"]) == N_CHECKS
    assert set(result["used"].values()) == {"library"}
    assert result["scores"]["recall@10"] > 0.5  # the library's functions still search


def _library_five_folds(real_data) -> dict:
    """The library's own pipeline on 5 folds of the same data: each score's (mean, std)."""
    import semsearch

    files, pickle = semsearch.find_data_files(Path(real_data))
    coco = semsearch.CocoCaptions.load(*files)
    data = semsearch.join(coco, semsearch.Descriptors.load(pickle), warn=False)
    text_encoder = semsearch.TextEmbedder.fit(coco.captions(coco.caption_ids))
    folds = []
    for train_ids, val_ids in semsearch.kfold_images(data.image_ids, 5, seed=0):
        model = semsearch.Autoembedder(data.descriptors.dim, seed=0)
        semsearch.train(model, data, text_encoder, train_ids, progress=False)
        folds.append(semsearch.evaluate(model, data, text_encoder, val_ids).as_dict())
    return {key: (np.mean([f[key] for f in folds]), np.std([f[key] for f in folds])) for key in folds[0]}


def test_with_the_solutions_filled_in_every_check_passes_and_the_run_scores_like_the_library(real_data, python3_kernel, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_DATA", str(Path(real_data).resolve()))
    text, result = _run(fill_in(jupytext.read(SOURCE), SOLUTIONS), python3_kernel)
    assert text.count(": passed (") == N_CHECKS and "not written yet" not in text and "FAILED" not in text
    assert set(result["status"].values()) == {"passed"}
    assert set(result["used"].values()) == {"team"}
    spread = _library_five_folds(real_data)
    for key in ("recall@1", "recall@5", "recall@10", "mrr"):
        mean, std = spread[key]
        assert abs(result["scores"][key] - mean) <= 2 * std, (key, result["scores"][key], mean, std)
