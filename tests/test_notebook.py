"""The capstone notebook runs top to bottom on the real data, and its two forms agree.

``notebooks/capstone.md`` (jupytext markdown) is the source; ``notebooks/capstone.ipynb`` is
generated from it with ``jupytext --to ipynb notebooks/capstone.md`` and stored without
outputs. Running the notebook needs the ``notebook`` extra (jupytext, nbclient, nbformat,
ipykernel): ``pip install -e ".[test,notebook]"``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "notebooks" / "capstone.md"
PAIRED = REPO / "notebooks" / "capstone.ipynb"

jupytext = pytest.importorskip("jupytext", reason="needs the notebook extra: pip install -e .[notebook]")
nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra: pip install -e .[notebook]")


def _cells(nb) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


def test_ipynb_is_in_sync_with_md():
    source = jupytext.read(SOURCE)
    paired = nbformat.read(PAIRED, as_version=4)
    assert _cells(paired) == _cells(source), (
        "notebooks/capstone.ipynb differs from capstone.md: run `jupytext --to ipynb notebooks/capstone.md`"
    )
    assert paired.metadata.get("kernelspec", {}).get("name") == "python3"


def test_ipynb_is_stored_without_outputs():
    paired = nbformat.read(PAIRED, as_version=4)
    for cell in paired.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                "notebooks/capstone.ipynb holds outputs: regenerate it with `jupytext --to ipynb notebooks/capstone.md`"
            )


@pytest.fixture
def python3_kernel(tmp_path, monkeypatch):
    """A ``python3`` kernelspec that runs this very interpreter, found before any other.

    A ``python3`` spec in ``~/.local/share/jupyter`` could point at another Python that has
    no semsearch; ``JUPYTER_PATH`` comes first in Jupyter's search path.
    """
    kernelspec = pytest.importorskip("ipykernel.kernelspec", reason="needs ipykernel: pip install -e .[notebook]")
    kernelspec.write_kernel_spec(path=str(tmp_path / "kernels" / "python3"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # let ipykernel choose the inline backend
    return "python3"


def test_notebook_runs_top_to_bottom(real_data, python3_kernel, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra: pip install -e .[notebook]")
    monkeypatch.setenv("SEMSEARCH_DATA", str(Path(real_data).resolve()))  # the kernel inherits it
    nb = jupytext.read(SOURCE)
    n_cells = len(nb.cells)
    # One extra cell, run after the notebook's own, reports the evaluation table's numbers.
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import json\nprint('RESULTS=' + json.dumps({name: r.as_dict() for name, r in results.items()}))"
        )
    )
    client = nbclient.NotebookClient(
        nb, kernel_name=python3_kernel, timeout=300, resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails

    check_cell = nb.cells.pop()
    assert len(nb.cells) == n_cells
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells), "not every code cell ran"
    errors = [out for cell in code_cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, f"cells raised: {[(e.ename, e.evalue) for e in errors]}"

    query_cells = [cell for cell in code_cells if "database.query(" in cell.source and "show_images(" in cell.source]
    assert len(query_cells) >= 3, "expected a result grid for at least 3 queries"
    for cell in query_cells:
        images = [
            out
            for out in cell.outputs
            if out.output_type in ("display_data", "execute_result") and "image/png" in out.get("data", {})
        ]
        assert len(images) == 1, f"query cell shows {len(images)} images instead of one grid:\n{cell.source}"
        text = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
        assert "top hit" in text

    # The trained model ranks validation images far better than the untrained one and chance.
    printed = "".join(out.get("text", "") for out in check_cell.outputs if out.output_type == "stream")
    results = json.loads(printed.split("RESULTS=", 1)[1])
    trained, untrained = results["trained (val)"], results["untrained (val)"]
    assert trained["recall@10"] > untrained["recall@10"] + 0.2
    assert trained["mrr"] > 2 * untrained["mrr"]
    assert trained["median_rank"] < untrained["median_rank"]


BEYOND = REPO / "notebooks" / "beyond.md"


def test_beyond_notebook_is_in_sync_and_runs(real_data, python3_kernel, monkeypatch):
    """The second notebook (similar images, tags, words, baselines, submissions, index) runs."""
    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra: pip install -e .[notebook]")
    assert _cells(jupytext.read(BEYOND)) == _cells(nbformat.read(BEYOND.with_suffix(".ipynb"), as_version=4))
    monkeypatch.setenv("SEMSEARCH_DATA", str(Path(real_data).resolve()))
    nb = jupytext.read(BEYOND)
    nbclient.NotebookClient(nb, kernel_name=python3_kernel, timeout=300, resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 1  # the similar-images grid
    for expected in ("learned:", "tags:", "tfidf", "'map':"):
        assert expected in text
    assert "recall@10" in text or "hnswlib is not installed" in text


def test_notebook_runs_on_a_course_shaped_data_folder(real_data, python3_kernel, monkeypatch, tmp_path):
    """The capstone notebook on a small folder shaped like the course's (what `semsearch fetch` leaves).

    2014 and 2017 caption files with overlapping images, `resnet18_features.pkl` with random
    512-d descriptors, no pictures: every cell must run (the scores sit at chance).
    """
    import sys

    nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra: pip install -e .[notebook]")
    sys.path.insert(0, str(REPO / "benchmarks"))
    import make_full_size_data as maker

    sys.path.pop(0)
    folder = tmp_path / "course-data"
    maker.make_data_folder(folder, Path(real_data) / "coco" / "annotations" / "captions_val2017.json", maker.Sizes.scaled(1500))
    monkeypatch.setenv("SEMSEARCH_DATA", str(folder))
    nb = jupytext.read(SOURCE)
    nbclient.NotebookClient(nb, kernel_name=python3_kernel, timeout=300, resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "captions_train2014.json" in outputs and "resnet18_features.pkl" in outputs
    assert "(1, 512)" in outputs or "512" in outputs
