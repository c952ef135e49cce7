"""The image database: every image embedded once, and exact top-k search by cosine.

Team tasks: *build the image database* and *query top-k*.

Large databases (``SIZE_THRESHOLD`` = 200,000 images or more, or any size with
``approximate=True``) are searched with an approximate nearest-neighbour index instead (:mod:`semsearch.routes.ann`,
``pip install 'semsearch[ann]'``), saved beside the database as ``<database>.index``.

Example
-------
>>> database = ImageDatabase.build(model, descriptors, text_encoder=text_encoder)  # doctest: +SKIP
>>> ids, scores = database.query("a dog catching a frisbee on the beach", k=4)  # doctest: +SKIP
>>> ids                                  # best first               # doctest: +SKIP
array([ 84241, 397133, 252219,  87038])
"""
from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from semsearch.common.files import load_npz, save_npz
from semsearch.coco import UnknownIdError
from semsearch.descriptors import Descriptors
from semsearch.backbones import as_backbone_info, backbone_to_json, check_same_backbone, read_backbone_record
from semsearch.routes.ann import SIZE_THRESHOLD
from semsearch.common.checks import check_image_id, check_image_ids, check_k, check_texts
from semsearch.errors import InputError, InputTypeError
from semsearch.model import embed_images
from semsearch.common.vectors import l2_normalize_rows, row_norms
from semsearch.query import embed_queries

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-database-1"


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest scores of each row, best first, shape (Q, k).

    Ties go to the lower column. Partitioning whole rows of 82,612 scores is slow, so:

    1. deal each row's scores into ``16 k`` groups (group j holds the scores j, j + 16 k,
       j + 32 k, ...) and take each group's maximum. The k-th largest maximum, t, is at most
       the row's k-th largest score (k groups each hold a score >= t), so the k best are among
       the scores >= t: usually little more than k;
    2. sort just those candidates.

    >>> top_k(np.array([[0.1, 0.9, 0.5], [0.7, 0.7, 0.2]]), 2)
    array([[1, 2],
           [0, 1]])
    """
    n_rows, n = scores.shape
    k = min(k, n)
    width = 16 * k  # the number of groups
    if k >= 1 and n >= 2 * width:
        per_group = n // width
        maxima = scores[:, : per_group * width].reshape(n_rows, per_group, width).max(axis=1)  # (Q, width)
        tail = scores[:, per_group * width :]  # the rest, one score to each of the first groups
        np.maximum(maxima[:, : tail.shape[1]], tail, out=maxima[:, : tail.shape[1]])
        threshold = np.partition(maxima, width - k, axis=1)[:, width - k]  # (Q,)
        flat = np.flatnonzero(scores >= threshold[:, None])  # the candidates, as row * N + column
        row, column = np.divmod(flat, n)
        counts = np.bincount(row, minlength=n_rows)
        if (counts >= k).all():  # always, unless a row holds NaN
            order = np.lexsort((-scores.ravel()[flat], row))  # by row, then best first (stable: lower column first)
            first = np.cumsum(counts) - counts  # where each row's candidates start in order
            return column[order][first[:, None] + np.arange(k)]
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]  # few scores (or NaN): sort them all


class ImageDatabase:
    """Image keys ``(N,)`` and their unit embeddings ``(N, 50)``, searched by cosine.

    One key notion serves both kinds of collection: COCO data is keyed by COCO id (int64),
    a folder of photos by each file's path relative to the
    folder (a NumPy unicode array, e.g. ``'2023/beach/IMG_0139.jpg'``; see
    :mod:`semsearch.photos.folder`). :meth:`query` returns keys.

    Parameters
    ----------
    keys : array-like of int or of str, shape (N,)
        The keys: COCO ids, or relative paths.
    vectors : array-like, shape (N, 50)
        Image embeddings; rows are normalised to unit length here.
    text_encoder : TextEmbedder, optional
        Needed to query with text rather than vectors.
    ann : semsearch.routes.ann.ApproximateIndex, optional
        An approximate nearest-neighbour index of ``vectors`` (its row i is image i); see :meth:`build_ann`.
    backbone : str, dict or None, optional
        The network whose descriptors were embedded (set by :meth:`build`); images added
        or searched with later must be described by it. None: unknown. Kept as the record
        :attr:`backbone_info`.
    """

    def __init__(self, keys, vectors, text_encoder=None, ann=None, backbone=None):
        image_ids = as_keys(keys)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(image_ids) or len(image_ids) == 0:
            raise InputError(f"need N ids and (N, dim) vectors with N > 0, got {image_ids.shape} and {vectors.shape}")
        if len(np.unique(image_ids)) != len(image_ids):
            raise InputError("image keys must be unique")
        if not np.isfinite(vectors).all():
            raise InputError("image vectors contain NaN or inf")
        if text_encoder is not None and text_encoder.dim != vectors.shape[1]:
            raise InputError(
                f"the text encoder makes {text_encoder.dim}-d vectors but the database holds {vectors.shape[1]}-d ones: "
                "they come from different models"
            )
        self.keys = image_ids
        # Stored column by column (Fortran order, still indexed (N, dim)): scoring one query is
        # then a BLAS gemv down 50 long contiguous columns, 1.5x faster than across 82,612 short
        # rows; batches (queries @ vectors.T, a plain row-major gemm) are as fast as before.
        self.vectors = np.asfortranarray(l2_normalize_rows(vectors))
        if ann is not None:
            _check_ann_fits(ann, vectors, self.vectors)
        self.text_encoder = text_encoder
        self._row = {i: r for r, i in enumerate(image_ids.tolist())}
        self.ann = ann
        self.backbone_info = as_backbone_info(backbone)

    @classmethod
    def build(cls, model, descriptors: Descriptors, text_encoder=None) -> "ImageDatabase":
        """Embed every image of ``descriptors`` with the trained model, once.

        Raises InputError naming both backbones if the model was trained on another
        backbone's descriptors.
        """
        model_backbone = getattr(model, "backbone_info", None)
        check_same_backbone(model_backbone, descriptors.backbone_info, "building the database")
        return cls(descriptors.ids, embed_images(model, descriptors.vectors), text_encoder,
                   backbone=descriptors.backbone_info or model_backbone)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"ImageDatabase({len(self)} images, dim={self.dim})"

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def build_ann(self, **options):
        """Build (or rebuild) the approximate index of the vectors and return it.

        ``options`` as in :meth:`semsearch.routes.ann.ApproximateIndex.build`, e.g. ``n_threads=4``
        (faster; one thread, the default, makes the index deterministic).
        """
        from semsearch.routes.ann import ApproximateIndex

        self.ann = ApproximateIndex.build(self.vectors, **options)
        return self.ann

    def vector_of(self, image_id) -> np.ndarray:
        """The stored unit embedding of one image (a COCO id, or a relative path), shape (dim,)."""
        if self.keys.dtype.kind == "U":
            if not isinstance(image_id, (str, os.PathLike)):
                raise InputTypeError(f"this database's images are keyed by path (str), got {image_id!r} ({type(image_id).__name__})")
            key = os.fspath(image_id)
        else:
            key = check_image_id(image_id)
        try:
            return self.vectors[self._row[key]]
        except KeyError:
            what = "image" if self.keys.dtype.kind == "U" else "COCO image id"
            raise UnknownIdError(f"{what} {image_id!r} is not in the database") from None

    def query(
        self, query: Union[str, Sequence[str], np.ndarray], k: int = 9, *, approximate: Optional[bool] = None,
        where: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The k images most similar to the query, best first.

        Parameters
        ----------
        query : str, list of str, array (dim,) or array (Q, dim)
            Text is embedded with ``se_text``, and may be compound (``"dog + beach - grass"``,
            ``"2:dog + sky"``; grammar in :mod:`semsearch.query`); vectors are used as they are
            (normalised).
        k : int
            Capped at the database size.
        approximate : bool, optional
            True: search the approximate index (built now if there is none); it may miss a
            few of the true k best. False: exact search. Default: the index for databases of
            ``SIZE_THRESHOLD`` images or more, exact search below.
        where : (N,) bool, optional
            Rank only the images whose entry is True (a filter, e.g. from
            :mod:`semsearch.photos.filters`); fewer than k may pass. Searched exactly, never
            with the approximate index.

        Returns
        -------
        keys : (k,) or (Q, k) int64 COCO ids, or str paths
        scores : (k,) or (Q, k) float32, cosine similarities, descending

        Raises
        ------
        UnknownQueryError
            A text (or a part of a compound one) has no word that ``se_text`` knows.
        """
        k = check_k(k)
        single = isinstance(query, str) or (isinstance(query, np.ndarray) and query.ndim == 1)
        vectors = self._query_vectors([query] if isinstance(query, str) else query)
        if where is not None:
            ids, scores = self._query_where(vectors, k, where)
            return (ids[0], scores[0]) if single else (ids, scores)
        if self._searches_ann(approximate):
            rows, scores = self.ann.query(vectors, k)
            return (self.keys[rows[0]], scores[0]) if single else (self.keys[rows], scores)
        k = min(k, len(self))
        ids = np.empty((len(vectors), k), dtype=self.keys.dtype)
        scores = np.empty((len(vectors), k), dtype=np.result_type(vectors, self.vectors))
        # 64 queries at a time: their (64, N) scores stay in the CPU's cache (21 MB for 82,612
        # images), where all (Q, N) could take gigabytes. self.vectors.T is (dim, N) row-major
        # (see __init__), so this is BLAS's gemm, or its gemv for one query, on long rows.
        for start in range(0, len(vectors), 64):
            block = vectors[start : start + 64] @ self.vectors.T  # (64, N)
            best = top_k(block, k)
            ids[start : start + 64] = self.keys[best]
            scores[start : start + 64] = np.take_along_axis(block, best, axis=1)
        return (ids[0], scores[0]) if single else (ids, scores)

    def _query_where(self, vectors: np.ndarray, k: int, where) -> Tuple[np.ndarray, np.ndarray]:
        """Exact search among the rows where ``where`` is True: (Q, k') ids and scores, k' <= k.

        Every row is scored (one matrix product, as unfiltered), then only the kept rows'
        scores are ranked: at most a little more work than an unfiltered search, however many
        rows pass (gathering the kept vectors first would cost more than scoring them all).
        """
        where = np.asarray(where)
        if where.dtype != bool or where.shape != (len(self),):
            raise InputError(f"where must be a ({len(self)},) bool array, got {where.dtype} {where.shape}")
        rows = np.flatnonzero(where)
        k = min(k, len(rows))
        ids = np.empty((len(vectors), k), dtype=self.keys.dtype)
        scores = np.empty((len(vectors), k), dtype=np.result_type(vectors, self.vectors))
        if k == 0:
            return ids, scores
        for start in range(0, len(vectors), 64):
            kept = (vectors[start : start + 64] @ self.vectors.T)[:, rows]  # (64, kept rows)
            best = top_k(kept, k)
            ids[start : start + 64] = self.keys[rows[best]]
            scores[start : start + 64] = np.take_along_axis(kept, best, axis=1)
        return ids, scores

    def _searches_ann(self, approximate: Optional[bool]) -> bool:
        """Whether a query searches the approximate index, which is built here if need be."""
        if approximate is False or (approximate is None and len(self) < SIZE_THRESHOLD):
            return False
        if self.ann is None:
            if approximate is None and importlib.util.find_spec("hnswlib") is None:
                warnings.warn("searching exactly: pip install 'semsearch[ann]' for a faster approximate search", stacklevel=3)
                return False
            warnings.warn(f"building an approximate index of {len(self)} images (once; save() keeps it)", stacklevel=3)
            self.build_ann()
        return True

    def _query_vectors(self, query) -> np.ndarray:
        if isinstance(query, np.ndarray) and np.issubdtype(query.dtype, np.number):
            vectors = np.atleast_2d(query).astype(np.float32)
            if vectors.ndim != 2 or vectors.shape[1] != self.dim:
                raise InputError(f"query vectors must have shape ({self.dim},) or (Q, {self.dim}), got {query.shape}")
            if not np.isfinite(vectors).all():
                raise InputError("query vector contains NaN or inf")
            if (row_norms(vectors) == 0).any():
                raise InputError("a query vector is all zeros: it is equally similar to every image")
            return l2_normalize_rows(vectors)
        if query is None or not isinstance(query, (list, tuple, np.ndarray)):
            raise InputTypeError(f"query must be a text, a list of texts, or an array of vectors, got {type(query).__name__}")
        texts = check_texts(query, "query")
        if not texts:
            raise InputError("the list of queries is empty")
        if self.text_encoder is None:
            raise InputError("this database has no text encoder: pass text_encoder= to query with text")
        return embed_queries(texts, self.text_encoder)

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write ids and vectors to a ``.npz`` file, atomically (the text encoder is saved apart).

        The approximate index, if there is one, goes beside it to ``<path>.index``; an old
        index file there is removed when there is none, so that it cannot be read back with
        other vectors.
        """
        save_npz(path, FORMAT, image_ids=self.keys, vectors=np.ascontiguousarray(self.vectors),  # row-major, as files always were
                 backbone=np.array(backbone_to_json(self.backbone_info)))
        if self.ann is not None:
            self.ann.save(index_path_of(path))
        elif index_path_of(path).exists():
            index_path_of(path).unlink()

    @classmethod
    def load(cls, path: PathLike, text_encoder=None) -> "ImageDatabase":
        """Read a database written by :meth:`save`, and its ``<path>.index`` if there is one."""
        image_ids, vectors = load_npz(path, FORMAT, ("image_ids", "vectors"), "image database file")
        try:
            backbone = read_backbone_record(path)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        index = None
        if index_path_of(path).is_file():
            from semsearch.routes.ann import ApproximateIndex

            try:
                index = ApproximateIndex.load(index_path_of(path))
            except ImportError as e:
                warnings.warn(f"{index_path_of(path)} is not used: {e}", stacklevel=2)
        if index is not None:
            try:
                _check_ann_fits(index, vectors, l2_normalize_rows(vectors))
            except InputError as e:
                raise InputError(f"{index_path_of(path)}: {e} (or delete it to search exactly)") from None
        return cls(image_ids, vectors, text_encoder, ann=index, backbone=backbone)


def _check_ann_fits(index, given: np.ndarray, unit: np.ndarray) -> None:
    """Refuse an approximate index that was not built for these vectors (as given, or normalised)."""
    from semsearch.routes.ann import fingerprint

    if len(index) != len(unit) or index.dim != unit.shape[1]:
        raise InputError(f"the index holds {len(index)} vectors of dim {index.dim}, not {len(unit)} of dim {unit.shape[1]}")
    found = getattr(index, "fingerprint", None)
    if found is None:
        raise InputError("the approximate index records no fingerprint of its vectors (an older file?): "
                         "it cannot be checked against this database; rebuild it with database.build_ann()")
    if found not in (fingerprint(given), fingerprint(unit)):
        raise InputError("the approximate index was built for other vectors than this database's "
                         f"(fingerprint {found[:12]}..., these vectors {fingerprint(unit)[:12]}...): "
                         "its results would be wrong; rebuild it with database.build_ann()")


def as_keys(keys) -> np.ndarray:
    """Image keys as an array (N,): int64 COCO ids, or str paths (NumPy unicode).

    >>> as_keys([139, 285]).dtype, as_keys(["a.jpg", "b/c.png"]).dtype
    (dtype('int64'), dtype('<U7'))
    """
    array = np.asarray(keys)
    if array.dtype.kind == "U":
        if array.ndim != 1 or (np.char.str_len(array) == 0).any():
            raise InputError("path keys must be a flat list of non-empty strings")
        return array
    if array.dtype.kind == "O" and all(isinstance(k, str) for k in array.ravel()):
        return as_keys(array.astype(str))
    if array.dtype.kind == "O" and any(isinstance(k, str) for k in array.ravel()):
        raise InputError(f"image keys must be all COCO ids (int) or all paths (str), got {array[:3].tolist()}...")
    return check_image_ids(array if array.dtype.kind in "iu" else array.tolist())


def index_path_of(database_path: PathLike) -> Path:
    """Where the approximate index of a database file lives: ``<database_path>.index``."""
    return Path(str(database_path) + ".index")
