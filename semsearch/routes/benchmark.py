"""The CogWorks Week 3 language benchmark's adapter: semsearch as a scored submission.

The benchmark (``language_search_benchmark``, entry-point group ``cogworks.submissions.v2``)
calls :func:`create_search_adapter` with its ``resources`` and scores the object it returns:

- ``embed_text(captions)`` -> ``(N, 50)``: ``se_text`` of the model folder;
- ``embed_images(descriptors)`` -> ``(M, 50)``: the trained ``se_image``;
- ``prepare_database(image_ids, descriptors)`` then ``search(query, k)`` -> top-k ids.

The model comes from a model folder (``semsearch train --out DIR``): the one named by the
environment variable ``SEMSEARCH_BENCHMARK_MODEL``, else ``semsearch/benchmark-model`` in
the user's cache folder (``$XDG_CACHE_HOME``, default ``~/.cache``). When that folder holds
no model, one is trained with the default settings on the course files the benchmark hands
over (``resources.captions_path``, ``resources.descriptors_path``) and saved there, so the
next run loads it (a model trained on random descriptors scores at chance, of course).

It is registered in ``pyproject.toml`` under the contract's group and name::

    [project.entry-points."cogworks.submissions.v2"]
    language-search = "semsearch.routes.benchmark:create_search_adapter"

Example
-------
>>> adapter = create_search_adapter(resources)              # doctest: +SKIP
>>> adapter.embed_text(["a dog catching a frisbee"]).shape  # doctest: +SKIP
(1, 50)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from semsearch.common.checks import check_image_ids, check_k, check_texts
from semsearch.errors import InputError, UnknownQueryError

#: Names the model folder the adapter loads (or trains into).
MODEL_ENV = "SEMSEARCH_BENCHMARK_MODEL"


def default_model_dir() -> Path:
    """``$SEMSEARCH_BENCHMARK_MODEL``, else ``<cache>/semsearch/benchmark-model``."""
    named = os.environ.get(MODEL_ENV)
    if named:
        return Path(named)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "semsearch" / "benchmark-model"


class SearchAdapter:
    """A trained model, its text encoder and (after :meth:`prepare_database`) a database.

    Parameters
    ----------
    model : Autoembedder
    text_encoder : TextEncoder
        The model folder's ``se_text``.
    """

    def __init__(self, model, text_encoder):
        self.model = model
        self.text_encoder = text_encoder
        self.database = None

    def embed_text(self, captions: Sequence[str]) -> np.ndarray:
        """``se_text`` of each caption, shape (N, 50), unit rows (0 for a caption with no known word)."""
        return self.text_encoder(check_texts(list(captions)))

    def embed_images(self, descriptors) -> np.ndarray:
        """The model's embedding of each descriptor, shape (M, 50), unit rows."""
        from semsearch.model import embed_images

        return embed_images(self.model, self.model.check_input(descriptors))

    def prepare_database(self, image_ids, descriptors) -> None:
        """Embed the pool ``descriptors`` (M, D), keyed by ``image_ids`` (M,), for :meth:`search`."""
        from semsearch.database import ImageDatabase

        image_ids = check_image_ids(image_ids)
        vectors = self.embed_images(descriptors)
        if len(vectors) != len(image_ids):
            raise InputError(f"got {len(image_ids)} image ids for {len(vectors)} descriptors")
        self.database = ImageDatabase(image_ids, vectors, self.text_encoder)

    def search(self, query: str, k: int) -> List[int]:
        """The ids of the ``k`` pool images most similar to ``query``, best first.

        A query with no word that ``se_text`` knows finds nothing: ``[]`` (a miss), so one
        such query does not stop the benchmark's other queries.
        """
        if self.database is None:
            raise InputError("call prepare_database(image_ids, descriptors) before search")
        k = check_k(k)
        try:
            ids, _ = self.database.query(query, k)
        except UnknownQueryError:
            return []
        return [int(i) for i in ids]


def load_or_train(model_dir: os.PathLike, captions_path: Optional[os.PathLike] = None,
                  descriptors_path: Optional[os.PathLike] = None):
    """``(model, text_encoder)`` of the model folder ``model_dir``; trained and saved there if it holds none.

    Training uses the default :class:`~semsearch.training.TrainConfig` on the caption file and
    descriptor pickle given; without them a missing folder is a FileNotFoundError.
    """
    from semsearch.bundle import MANIFEST_FILE, load_bundle

    model_dir = Path(model_dir)
    if (model_dir / MANIFEST_FILE).is_file():
        model, text_encoder, _ = load_bundle(model_dir)
        return model, text_encoder
    if captions_path is None or descriptors_path is None:
        raise FileNotFoundError(f"no semsearch model in {model_dir}, and no course files to train one on")
    from semsearch.training import TrainConfig
    from semsearch.workflow import load_data, train_and_save

    data, text_encoder = load_data([captions_path], descriptors_path)
    run = train_and_save(data, text_encoder, TrainConfig(), model_dir,
                         info={"captions": str(captions_path), "descriptors": str(descriptors_path),
                               "made_by": "semsearch.routes.benchmark"})
    return run.model, text_encoder


def create_search_adapter(resources=None) -> SearchAdapter:
    """The benchmark's factory: a :class:`SearchAdapter` of the model folder (see the module notes).

    Parameters
    ----------
    resources : language_search_benchmark.contracts.Resources, optional
        Its ``captions_path`` and ``descriptors_path`` are trained on when there is no model yet.
    """
    model, text_encoder = load_or_train(
        default_model_dir(), getattr(resources, "captions_path", None), getattr(resources, "descriptors_path", None)
    )
    return SearchAdapter(model, text_encoder)
