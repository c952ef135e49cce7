"""The captioner's retrieval route: rank images by how well their generated caption matches a query.

Generate a caption ``T_k`` for every database image, then score image ``k`` for a query ``Q``
by ``sim(Q, T_k)`` with the caption baselines' vectors
(:func:`semsearch.routes.baselines.caption_vectors`: one-hot, TF-IDF or ``se_text``).

Example
-------
>>> print(generated_caption_scores(model, data, val_ids, method="tfidf"))   # doctest: +SKIP
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from semsearch.common.checks import check_image_ids, check_texts
from semsearch.dataset import CaptionedImages
from semsearch.errors import InputError
from semsearch.evaluation import RetrievalScores, retrieval_scores, target_ranks
from semsearch.routes.baselines import METHODS, caption_vectors
from semsearch.routes.captioner.model import CaptionGenerator
from semsearch.text import inverse_document_frequency


def generated_caption_scores(
    model: CaptionGenerator,
    data: CaptionedImages,
    image_ids,
    *,
    method: str = "tfidf",
    text_encoder=None,
    beam: int = 1,
    max_length: int = 16,
    ks: Sequence[int] = (1, 5, 10),
    captions: Optional[Sequence[str]] = None,
) -> RetrievalScores:
    """Text -> image retrieval by generated captions, scored as :func:`semsearch.evaluation.evaluate` scores a model.

    Every human caption of ``image_ids`` is a query ``Q``; each image ``k`` is represented by
    its one generated caption ``T_k`` and scored by ``sim(Q, T_k)`` (cosine of
    :func:`semsearch.routes.baselines.caption_vectors` of the ``method``). The IDF (``"tfidf"``,
    and ``"glove"`` without a ``text_encoder``) is fitted on all captions of ``data``.

    Parameters
    ----------
    captions : list of str, optional
        Already generated captions of ``image_ids`` (sorted by id), to score several methods
        without generating again.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    image_ids = np.unique(check_image_ids(image_ids))
    if len(image_ids) == 0:
        raise InputError("no images to search")
    caption_ids = data.captions.caption_ids_of_images(image_ids)
    queries = data.captions.captions(caption_ids)
    targets = np.searchsorted(image_ids, data.captions.images_of(caption_ids))
    if captions is None:
        captions = model.generate(data.descriptors.vectors_of(image_ids), beam=beam, max_length=max_length)
    captions = check_texts(captions, "captions")
    if len(captions) != len(image_ids):
        raise InputError(f"need one generated caption per image: {len(captions)} for {len(image_ids)} images")
    idf = None if method == "onehot" else inverse_document_frequency(data.captions.captions(data.captions.caption_ids))
    vectors = caption_vectors(list(queries) + list(captions), method, idf=idf, text_encoder=text_encoder)
    q, g = vectors[: len(queries)], vectors[len(queries) :]
    scores = q @ g.T
    scores = np.asarray(scores.toarray() if hasattr(scores, "toarray") else scores, dtype=np.float32)
    return retrieval_scores(target_ranks(scores, targets), len(image_ids), ks)
