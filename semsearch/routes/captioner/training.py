"""Training the caption generator: GloVe-initialised word vectors, teacher forcing, Adam.

The vocabulary (words seen ``min_count`` times) and the descriptor scaling come from the
training images only; the loss is ``mygrad.nnet.losses.softmax_crossentropy`` over every real
next word, minimised with MyNN's Adam.

Example
-------
>>> model, losses = train_captioner(data, train_ids, epochs=30, progress=True)   # doctest: +SKIP
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from semsearch.common.checks import check_image_ids, check_k
from semsearch.dataset import CaptionedImages
from semsearch.errors import InputError, TrainingError
from semsearch.routes.captioner.model import CaptionGenerator
from semsearch.routes.captioner.vocabulary import PAD, CaptionVocabulary


def glove_embeddings(vocabulary: CaptionVocabulary, glove=None, seed: int = 0) -> np.ndarray:
    """Word vectors (V, E) for the vocabulary: GloVe's where it has the word, small random ones otherwise."""
    if glove is None:
        from semsearch.glove import load_glove

        glove = load_glove()
    rng = np.random.default_rng(seed)
    out = rng.normal(0, 0.3, size=(len(vocabulary), glove.vector_size)).astype(np.float32)
    for i, word in enumerate(vocabulary.words):
        if word in glove.key_to_index:
            out[i] = glove[word]
    return out


def train_captioner(
    data: CaptionedImages,
    train_ids,
    *,
    hidden: int = 256,
    epochs: int = 30,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    min_count: int = 1,
    max_length: int = 16,
    glove=None,
    seed: int = 0,
    progress: bool = False,
    dtype=np.float32,
) -> Tuple[CaptionGenerator, List[float]]:
    """Train a :class:`CaptionGenerator` on every caption of the images ``train_ids``.

    The vocabulary (words seen ``min_count`` times) and the descriptor scaling come from
    the training images only. Returns the model and the mean loss of each epoch.

    Raises
    ------
    TrainingError
        The loss became NaN or infinite.
    """
    from mynn.optimizers.adam import Adam
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    train_ids = np.unique(check_image_ids(train_ids))
    if len(train_ids) == 0:
        raise InputError("no training images")
    check_k(epochs, "epochs"), check_k(batch_size, "batch_size")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise InputError(f"learning_rate must be > 0, got {learning_rate!r}")
    caption_ids = data.captions.caption_ids_of_images(train_ids)
    texts = data.captions.captions(caption_ids)
    rows = data.descriptors.rows_of(data.captions.images_of(caption_ids))
    vocabulary = CaptionVocabulary.fit(texts, min_count)
    encoded = vocabulary.encode(texts, max_length)
    lengths = (encoded != PAD).sum(axis=1)
    train_vectors = data.descriptors.vectors_of(train_ids)
    mean = train_vectors.mean(axis=0)
    scale = float(np.sqrt(((train_vectors - mean) ** 2).mean())) or 1.0
    model = CaptionGenerator(vocabulary, data.descriptors.dim, hidden, glove_embeddings(vocabulary, glove, seed),
                             descriptor_mean=mean, descriptor_scale=scale, seed=seed, dtype=dtype)
    optimizer = Adam(model.parameters, learning_rate=learning_rate)
    rng = np.random.default_rng(seed)
    losses: List[float] = []
    bar = tqdm(range(epochs), desc="training captioner", unit="epoch", disable=not progress)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in bar:
            order = rng.permutation(len(encoded))
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                longest = int(lengths[batch].max())
                loss = model.loss(data.descriptors.vectors[rows[batch]], encoded[batch, :longest])
                loss.backward()
                if not np.isfinite(loss.item()):
                    raise TrainingError(f"the captioner's loss became {loss.item()} (lower learning_rate, now {learning_rate})")
                optimizer.step()
                loss.null_grad()
                total, count = total + loss.item() * len(batch), count + len(batch)
            losses.append(total / count)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return model, losses
