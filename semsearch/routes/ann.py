"""Approximate nearest-neighbour search for large databases: an HNSW graph (hnswlib).

Exact search reads every image vector for every query: fine for COCO's 82,612 images
(a few ms), too slow for millions. :class:`ApproximateIndex` links the unit vectors into a
Hierarchical Navigable Small World graph (Malkov and Yashunin 2018) and answers a query
by walking the graph towards it, reading a few thousand vectors instead of all of them.
Scores are inner products of unit vectors, i.e. cosines, as in
:meth:`semsearch.database.ImageDatabase.query`.

Why HNSW, and why hnswlib (``benchmarks/ann.py``, 1,000,000 random unit vectors in 50-d,
one query at a time): HNSW with ``m=48, ef=300`` finds 97.7% of the true 10 nearest
neighbours 10x faster than exact search. faiss' IVFFlat needs a quarter of its lists
probed for recall 0.97 (4.7x), and Annoy is no faster than exact search at recall 0.95.
faiss' ``IndexHNSWFlat`` is the same algorithm and measured as fast; hnswlib is preferred
as the smaller dependency (one C++ extension, no OpenMP runtime whose thread count is
global to the process), with a seed and a thread count per call. It is optional:
``pip install 'semsearch[ann]'``.

Knobs: ``m`` (links per node: memory and recall), ``ef_construction`` (effort of the build)
and ``ef`` (effort of a query: recall against time, changeable at any time). The defaults
meet recall@10 >= 0.95 on random vectors, the hardest case; real embeddings, which lie
near a lower-dimensional surface, need less. Memory: about 600 bytes per 50-d vector
with ``m=48`` (3x the vectors themselves). Building with one thread is deterministic given
``seed``; more threads build faster, but the graph then depends on the threads' timing.

Example
-------
>>> index = ApproximateIndex.build(database.vectors, seed=0)   # doctest: +SKIP
>>> rows, scores = index.query(query_vector, k=10)             # doctest: +SKIP
>>> database.keys[rows]                                  # doctest: +SKIP
>>> index.save("images.npz.index")                            # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from semsearch.common.files import load_npz, save_npz
from semsearch.common.checks import check_k
from semsearch.errors import InputError
from semsearch.common.vectors import l2_normalize_rows, row_norms

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-ann-1"
DEFAULT_M, DEFAULT_EF_CONSTRUCTION, DEFAULT_EF = 48, 200, 300
#: Database size from which :class:`~semsearch.database.ImageDatabase` searches with an index:
#: below it exact search takes a few ms, and the index would cost minutes to build and 3x
#: the memory of the vectors for a small gain.
SIZE_THRESHOLD = 200_000


def _hnswlib():
    try:
        import hnswlib
    except ImportError:
        raise ImportError(
            "the approximate index needs hnswlib: pip install 'semsearch[ann]' (or pip install hnswlib)"
        ) from None
    return hnswlib


def fingerprint(vectors) -> str:
    """sha256 of ``vectors`` as float32 rows (shape included): which vectors an index was built for.

    >>> fingerprint(np.eye(2)) == fingerprint(np.eye(2, dtype=np.float32)) != fingerprint(np.eye(2)[::-1])
    True
    """
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    digest = hashlib.sha256(repr(array.shape).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def graph_checksum(dim: int, count: int, blob: np.ndarray) -> str:
    """sha256 of a saved hnswlib graph's bytes with its dimension and size: checked before hnswlib reads it.

    >>> graph_checksum(2, 1, np.zeros(3, np.uint8)) != graph_checksum(2, 1, np.ones(3, np.uint8))
    True
    """
    digest = hashlib.sha256(f"hnswlib dim={int(dim)} count={int(count)}\n".encode())
    digest.update(np.ascontiguousarray(blob, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def _unit_rows(vectors, what: str, dim: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``vectors`` as float32 (N, dim) rows of unit length (zero rows stay zero), and the norms (N,)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0 or (dim and vectors.shape[1] != dim):
        expected = f"(N, {dim})" if dim else "(N, dim) with N, dim > 0"
        raise InputError(f"{what} must have shape {expected}, got {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise InputError(f"{what} contain NaN or inf")
    return l2_normalize_rows(vectors), row_norms(vectors).ravel()


class ApproximateIndex:
    """An HNSW index of N unit vectors, searched by inner product (cosine).

    Use :meth:`build` or :meth:`load`, not the constructor.

    Attributes
    ----------
    dim : int
    fingerprint : str or None
        :func:`fingerprint` of the vectors it was built from, saved with it; an
        :class:`~semsearch.database.ImageDatabase` refuses an index of other vectors.
    ef : int
        Candidates kept while searching (at least ``k`` is used): larger is slower and
        finds more of the true nearest neighbours. May be changed at any time.
    """

    def __init__(self, hnsw_index, ef: int = DEFAULT_EF, fingerprint: Optional[str] = None):
        self._index = hnsw_index
        self.ef = ef
        self.fingerprint = fingerprint

    @classmethod
    def build(
        cls,
        vectors,
        *,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef: int = DEFAULT_EF,
        seed: int = 0,
        n_threads: int = 1,
    ) -> "ApproximateIndex":
        """Index the rows of ``vectors`` (N, dim); they are normalised to unit length here.

        Row ``i`` of ``vectors`` is row ``i`` in the results of :meth:`query`.

        Parameters
        ----------
        m : int
            Links per node (hnswlib's ``M``), >= 2.
        ef_construction : int
            Candidates kept while linking a node, >= 1.
        ef : int
            Default search effort of :meth:`query`.
        seed : int
            Seed of the random level of each node.
        n_threads : int
            Threads for building; 1 makes the graph deterministic.

        Raises
        ------
        ValueError
            Bad shape, NaN or inf, or a parameter out of range.
        """
        hnswlib = _hnswlib()
        given_vectors = vectors
        vectors, _ = _unit_rows(vectors, "vectors")
        given = fingerprint(given_vectors)  # of the vectors as given (a database's own unit rows)
        if m < 2 or ef_construction < 1 or n_threads < 1:
            raise InputError(f"need m >= 2, ef_construction >= 1, n_threads >= 1; got {m}, {ef_construction}, {n_threads}")
        index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        index.init_index(max_elements=len(vectors), M=m, ef_construction=ef_construction, random_seed=seed)
        index.add_items(vectors, np.arange(len(vectors)), num_threads=n_threads)
        return cls(index, ef, given)

    def __len__(self) -> int:
        return int(self._index.element_count)

    def __repr__(self) -> str:
        return f"ApproximateIndex({len(self)} vectors, dim={self.dim}, M={self._index.M}, ef={self.ef})"

    @property
    def dim(self) -> int:
        return int(self._index.dim)

    @property
    def ef(self) -> int:
        return self._ef

    @ef.setter
    def ef(self, value: int) -> None:
        if int(value) < 1:
            raise InputError(f"ef must be >= 1, got {value}")
        self._ef = int(value)

    def query(self, vectors, k: int = 10, *, n_threads: int = 1) -> Tuple[np.ndarray, np.ndarray]:
        """The k indexed rows with the largest inner product with each query, best first.

        Parameters
        ----------
        vectors : array (dim,) or (Q, dim)
            Normalised here; must be finite and non-zero.
        k : int
            >= 1; capped at the number of indexed vectors.
        n_threads : int
            Threads over the queries of a batch (results do not depend on it).

        Returns
        -------
        rows : (k,) or (Q, k) int64
        scores : (k,) or (Q, k) float32, cosine similarities, descending

        Raises
        ------
        ValueError
            Wrong dimension, NaN or inf, an all-zero query, or k < 1.
        """
        k = check_k(k)
        single = np.ndim(vectors) == 1
        queries, norms = _unit_rows(np.atleast_2d(vectors) if single else vectors, "query vectors", self.dim)
        if (norms == 0).any():
            raise InputError("a query vector is all zeros: it is equally similar to every vector")
        k = min(int(k), len(self))
        self._index.set_ef(max(self.ef, k))
        labels, distances = self._index.knn_query(queries, k=k, num_threads=n_threads)
        rows, scores = labels.astype(np.int64), (1.0 - distances).astype(np.float32)  # hnswlib "ip": 1 - u.v
        return (rows[0], scores[0]) if single else (rows, scores)

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Write the index to one ``.npz``-format file, atomically (e.g. ``<database>.index``)."""
        # hnswlib writes only to a named file: write it in a scratch folder beside ``path``,
        # then store its bytes with the metadata in one file, atomically.
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            graph = os.path.join(tmp, "hnsw.bin")
            self._index.save_index(graph)
            blob = np.fromfile(graph, dtype=np.uint8)
        save_npz(path, FORMAT, library="hnswlib", dim=self.dim, ef=self.ef, count=len(self), hnsw=blob,
                 fingerprint=np.array(self.fingerprint or ""), graph_sha256=np.array(graph_checksum(self.dim, len(self), blob)))

    @classmethod
    def load(cls, path: PathLike) -> "ApproximateIndex":
        """Read an index written by :meth:`save`."""
        hnswlib = _hnswlib()
        dim, ef, count, blob = load_npz(path, FORMAT, ("dim", "ef", "count", "hnsw"), "approximate index file")
        try:
            (given,) = load_npz(path, FORMAT, ("fingerprint",), "approximate index file")
            given = str(given) or None
        except InputError:  # written before fingerprints: unknown
            given = None
        try:
            (stored,) = load_npz(path, FORMAT, ("graph_sha256",), "approximate index file")
        except InputError:
            stored = None
        dim, ef, count = int(dim), int(ef), int(count)
        # hnswlib trusts the bytes it reads (a damaged graph can crash the process): check them first
        if stored is None:
            raise InputError(f"{path} records no checksum of its graph (an older file): it cannot be checked "
                             "before it is read; rebuild it with database.build_ann() and save, or delete it")
        if str(stored) != graph_checksum(dim, count, blob):
            raise InputError(f"{path} is damaged: its graph does not match its checksum; "
                             "rebuild it with database.build_ann() and save, or delete it")
        index = hnswlib.Index(space="ip", dim=dim)
        with tempfile.TemporaryDirectory() as tmp:
            graph = os.path.join(tmp, "hnsw.bin")
            blob.tofile(graph)
            try:
                index.load_index(graph, max_elements=count)
            except RuntimeError as e:
                raise InputError(f"{path} holds a damaged hnswlib graph: {e}") from None
        if index.element_count != count:
            raise InputError(f"{path} is damaged: {index.element_count} vectors, expected {count}")
        return cls(index, ef, given)
