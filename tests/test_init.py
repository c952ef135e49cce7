"""The package's namespace: every public name, imported on first use (semsearch/__init__.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

import semsearch

HEAVY = ("mygrad", "mynn", "numba", "scipy", "gensim", "matplotlib", "torch", "tqdm")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter on this semsearch; return what it printed."""
    root = Path(semsearch.__file__).parents[1]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root).stdout


def _heavy_imported(code: str) -> list:
    return _run(f"import sys\n{code}\nprint([m for m in {HEAVY!r} if m in sys.modules])").strip()


@pytest.mark.parametrize("name", semsearch.__all__)
def test_every_public_name_is_its_modules_object(name):
    value = getattr(semsearch, name)
    module = value.__module__ if hasattr(value, "__module__") else None
    assert module is not None and module.startswith("semsearch")
    assert getattr(sys.modules[module], name) is value
    assert name in dir(semsearch)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'semsearch' has no attribute 'trian'"):
        semsearch.trian  # noqa: B018 - the attribute access is what raises


def test_import_semsearch_imports_no_heavy_library():
    assert _heavy_imported("import semsearch") == "[]"


def test_searching_a_model_folder_imports_no_heavy_library(tmp_path):
    from semsearch import sample

    model, text_encoder, database = semsearch.load_bundle(sample.model_dir())
    semsearch.save_bundle(tmp_path / "model", model, text_encoder, database)  # with its vocabulary's vectors
    code = (f"import semsearch as ss\n_, _, db = ss.load_bundle({str(tmp_path / 'model')!r})\n"
            "ids, scores = db.query('a dog on the grass', k=3)\nassert len(ids) == 3")
    assert _heavy_imported(code) == "[]"


@pytest.mark.parametrize("first", ["import semsearch.training", "from semsearch.training import TrainConfig",
                                   "import semsearch.evaluation", "import semsearch"])
def test_train_and_evaluate_are_the_functions_whatever_was_imported_first(first):
    code = (f"{first}\nimport semsearch as ss\nfrom semsearch import train, evaluate\n"
            "print(callable(ss.train), ss.train is train, ss.train.__name__, ss.evaluate.__name__, type(evaluate).__name__)")
    assert _run(code).split() == ["True", "True", "train", "evaluate", "function"]
    # and the modules stay importable by name
    assert "TrainConfig" in _run("from semsearch.training import TrainConfig; print(TrainConfig.__name__)")
