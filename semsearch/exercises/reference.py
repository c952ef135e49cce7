"""Reference solutions of the team tasks that have no function of their own in the library.

Every other task's reference is the library's own function (``semsearch.loss.loss_accuracy``,
``semsearch.triples.make_triples``, ...); :data:`SOLUTIONS` names them all, for the tests and
the grader.

Example
-------
>>> import numpy as np
>>> from mynn.optimizers.sgd import SGD
>>> from semsearch.model import Autoembedder
>>> model = Autoembedder(4, 3, seed=0)
>>> x = np.eye(4, dtype=np.float32)
>>> loss, accuracy = train_step(model, SGD(model.parameters, learning_rate=0.1), x[:2], x[2:], np.eye(3)[:2], 0.25)
>>> round(loss, 4) >= 0, 0 <= accuracy <= 1
(True, True)
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple



def train_step(model, optimizer, descriptors_good, descriptors_bad, captions, margin: float,
               loss_accuracy: Optional[Callable] = None) -> Tuple[float, float]:
    """One optimisation step on a batch of B triples; returns the batch's (loss, accuracy) as floats.

    Parameters
    ----------
    model : any MyNN-style model: ``model(x (B, D))`` -> (B, E) unit rows (MyGrad), ``model.parameters``
    optimizer : a MyNN optimizer over ``model.parameters`` (``optimizer.step()``)
    descriptors_good, descriptors_bad : (B, D)
        The descriptors of each triple's good and bad image.
    captions : (B, E)
        ``se_text`` of each triple's caption (unit rows).
    margin : float
    loss_accuracy : callable, optional
        ``(sim_good, sim_bad, margin) -> (loss, accuracy)``; default :func:`semsearch.loss.loss_accuracy`.
    """
    import mygrad as mg

    if loss_accuracy is None:
        from semsearch.loss import loss_accuracy
    sim_good = mg.sum(model(descriptors_good) * captions, axis=1)  # cosine: both sides are unit rows
    sim_bad = mg.sum(model(descriptors_bad) * captions, axis=1)
    loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
    loss.backward()
    optimizer.step()
    return float(loss.item()), float(accuracy)


def preprocess(image, backbone: str = "efficientnet-lite0"):
    """``Backbone.preprocess`` of ``backbone`` (EfficientNet-Lite0 pretrained, ResNet18 with random weights)."""
    from semsearch.backbones import load_backbone

    return load_backbone(backbone, pretrained=backbone == "efficientnet-lite0", device="cpu").preprocess(image)


def solutions() -> Dict[str, Callable]:
    """Task name -> the reference solution (the library's function where there is one)."""
    from semsearch.database import ImageDatabase, top_k
    from semsearch.dataset import split_images
    from semsearch.display import show_images
    from semsearch.evaluation import retrieval_scores, target_ranks
    from semsearch.loss import loss_accuracy
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder, inverse_document_frequency
    from semsearch.triples import make_triples

    return {
        "split_images": split_images,
        "idf": inverse_document_frequency,
        "se_text": TextEmbedder.fit,
        "model": Autoembedder,
        "make_triples": make_triples,
        "loss_accuracy": loss_accuracy,
        "train_step": train_step,
        "preprocess": preprocess,
        "build_database": lambda model, descriptors: ImageDatabase.build(model, descriptors),
        "top_k": top_k,
        "show_images": show_images,
        "target_ranks": target_ranks,
        "retrieval_scores": retrieval_scores,
    }

