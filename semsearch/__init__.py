"""semsearch: semantic image search over MS-COCO and your own photos.

Type "a dog catching a frisbee on the beach" and get the images that match, ranked.

The capstone's team tasks, one module each, directly in this package:

==========================  =========================================================
``semsearch.paths``         where the data folder is; ``find_data_files``
``semsearch.coco``          COCO caption files: images, captions, urls
``semsearch.descriptors``   image descriptor files ``{coco_id: (1, D)}``
``semsearch.dataset``       captions joined with descriptors; splits by image
``semsearch.glove``         GloVe word vectors (gensim ``KeyedVectors``)
``semsearch.text``          ``se_text``: IDF-weighted GloVe sentence embeddings
``semsearch.model``         ``se_image``: the MyNN ``Autoembedder`` (its fast path: ``fused``)
``semsearch.triples``       (caption, good image, bad image) triples
``semsearch.loss``          margin ranking loss and accuracy
``semsearch.training``      the MyGrad training loop: ``train``, ``TrainConfig``
``semsearch.features``      CNN descriptors of images (extra ``[features]``)
``semsearch.database``      embedded images and top-k search
``semsearch.evaluation``    Recall@K, median rank, MRR: ``evaluate``
``semsearch.display``       matplotlib grids of images by COCO id
==========================  =========================================================

Around them: ``bundle`` (a model folder), ``workflow`` (the pipelines the command line runs),
``query`` (compound queries), ``backbones`` (the CNN records), and the sub-packages
``routes`` (other retrieval routes), ``cnn`` (the networks behind ``features``), ``photos``
(your own photos), ``exercises`` (checks of a team's own code), ``web`` (the web page),
``cli`` (the command line) and ``common`` (small shared helpers).
"""
from __future__ import annotations

import importlib

from semsearch.errors import (
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
    "fit_text_encoder": "encoders", "load_text_encoder": "encoders", "RetrievalScores": "evaluation",
    "evaluate": "evaluation", "loss_accuracy": "loss", "Autoembedder": "model", "data_dir": "paths",
    "find_data_files": "paths", "TextEmbedder": "text", "tokenize": "text", "History": "training",
    "TrainConfig": "training", "train": "training", "Triples": "triples", "make_triples": "triples",
    "load_data": "workflow", "show_images": "display", "save_figure": "display",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"semsearch.{_LAZY[name]}"), name)
        globals()[name] = value  # the next access does not come here
        return value
    raise AttributeError(f"module 'semsearch' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Autoembedder", "CaptionedImages", "CocoCaptions", "Descriptors", "History", "ImageDatabase", "InputError",
    "InputTypeError", "MissingExtraError", "RetrievalScores", "SaveConflictError", "SemsearchError", "Split",
    "TextEmbedder", "TextEncoder", "TrainConfig", "TrainingError", "Triples", "UnknownIdError", "UnknownQueryError",
    "UnsafeFileError", "data_dir", "evaluate", "find_data_files", "fit_text_encoder", "join", "kfold_images",
    "load_bundle", "load_data", "load_text_encoder", "loss_accuracy", "make_triples", "save_bundle", "save_figure",
    "show_images", "split_images", "tokenize", "train",
]
