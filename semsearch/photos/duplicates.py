"""Exact and near duplicates among indexed photos (semsearch only lists them: it never deletes).

- **exact**: the same bytes (same content hash, :mod:`semsearch.photos.hashing`);
- **near**: the same photo re-encoded, resized, cropped a little or lightly edited: the cosine
  similarity of the backbone's descriptors (not of the model's embeddings, which are trained
  to put different photos of the same subject together) is at least a threshold.

:data:`NEAR_THRESHOLD` was chosen by ``benchmarks/duplicates_threshold.py``: EfficientNet-Lite0
descriptors of planted pairs made from the data folder's COCO photos: duplicates (re-encoded,
resized, cropped 10%, brightened, and all four at once) and look-alikes that are *not*
duplicates (the two halves of one photo: one scene framed twice, and each photo's most similar
other photo); the threshold with the best F1 on half the photos, checked on the other half.
On 120 photos (840 pairs): 0.805; on the held-out half precision 0.990, recall 0.983 (all
pairs: 0.983 and 0.988). Every re-encoded, resized, cropped and brightened copy is found; 94% of
the copies edited all four ways at once; 8% of the two-framings pairs are wrongly called
duplicates (their halves share most of a plain scene), no most-similar-other-photo pair is
(``benchmarks/duplicates_threshold.json``).

Photos are grouped transitively (A~B and B~C: one group). In each group the best copy comes
first: most pixels, then the largest file (least compressed), then the shortest path.

Example
-------
>>> groups = find_duplicates(PhotoDatabase.load("photos.npz"))        # doctest: +SKIP
>>> groups[0].kind, groups[0].keys                                     # doctest: +SKIP
('exact', ['Holiday/IMG_0001.jpg', 'backup/IMG_0001.jpg'])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from semsearch.common.vectors import l2_normalize_rows
from semsearch.errors import InputError
from semsearch.photos.hashing import UNKNOWN

#: Descriptor cosine at or above which two photos are near duplicates (EfficientNet-Lite0; see above).
NEAR_THRESHOLD = 0.805
#: Rows compared at a time (a (BLOCK, N) block of similarities).
BLOCK = 1024


@dataclass
class DuplicateGroup:
    """Photos that are copies of one another, best copy first.

    Attributes
    ----------
    kind : {"exact", "near"}
        ``"near"`` groups may also hold exact copies of their members.
    keys : list of str
        Paths relative to the indexed folder.
    sizes : list of int
        File sizes in bytes.
    shapes : list of (int, int)
        Width and height as shown.
    similarities : list of float
        Descriptor cosine of each member with the first (1.0 for exact copies).
    """

    kind: str
    keys: List[str]
    sizes: List[int]
    shapes: List[tuple]
    similarities: List[float]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def spare_bytes(self) -> int:
        """Bytes the copies other than the best take up."""
        return int(sum(self.sizes[1:]))


def near_pairs(descriptors: np.ndarray, threshold: float) -> np.ndarray:
    """(P, 2) row pairs i < j whose descriptors' cosine similarity is >= ``threshold``.

    Compared blockwise (``BLOCK`` rows against all): O(N^2 D) work, (BLOCK, N) memory; 10,000
    EfficientNet-Lite0 descriptors take about 5 s on 2 cores.

    >>> near_pairs(np.array([[1, 0], [0.99, 0.1], [0, 1]], np.float32), 0.9).tolist()
    [[0, 1]]
    """
    return unit_pairs(l2_normalize_rows(np.asarray(descriptors, dtype=np.float32)), threshold)


def unit_pairs(units: np.ndarray, threshold: float) -> np.ndarray:
    """:func:`near_pairs` of rows already of unit length (N, D): their dot products are the cosines."""
    if not -1 <= threshold <= 1:
        raise InputError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    found = []
    for start in range(0, len(units), BLOCK):
        block = units[start : start + BLOCK] @ units.T  # (B, N)
        i, j = np.nonzero(block >= threshold)
        i = i + start
        found.append(np.stack([i, j], axis=1)[i < j])
    return np.concatenate(found) if found else np.zeros((0, 2), int)


def _components(n: int, pairs) -> List[List[int]]:
    """Connected components (of 2 or more rows) of the graph with these edges (union-find)."""
    parent = list(range(n))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict = {}
    for a in range(n):
        groups.setdefault(root(a), []).append(a)
    return [rows for rows in groups.values() if len(rows) > 1]


def find_duplicates(photos, *, near: bool = True, exact: bool = True,
                    threshold: Optional[float] = None) -> List[DuplicateGroup]:
    """Groups of duplicate photos in a :class:`~semsearch.photos.folder.PhotoDatabase`.

    Parameters
    ----------
    photos : PhotoDatabase
    near, exact : bool
        Which kinds to look for. Photos in a near group are not listed again in an exact one.
    threshold : float, optional
        Descriptor cosine for near duplicates (default :data:`NEAR_THRESHOLD`, measured for
        EfficientNet-Lite0: another backbone may need another).

    Returns
    -------
    list of DuplicateGroup
        Near groups first, then exact ones; within a kind, the largest spare bytes first.

    Raises
    ------
    InputError
        Exact duplicates asked of a database indexed before semsearch kept content hashes.
    """
    meta = photos.metadata
    hashes = meta.content_hash.tolist()
    if exact and UNKNOWN in hashes:
        raise InputError("this database was indexed before semsearch kept content hashes: "
                         "run `semsearch index` on its folder again (nothing is described again)")
    units = l2_normalize_rows(np.asarray(photos.descriptors, np.float32)) if len(photos) else photos.descriptors
    groups, grouped = [], set()
    if near:
        t = NEAR_THRESHOLD if threshold is None else float(threshold)
        for rows in _components(len(photos), unit_pairs(units, t)):  # the units near_pairs would make
            if len({hashes[r] for r in rows}) > 1 or not exact:  # else it is an exact group
                groups.append(_group("near", rows, photos, units))
                grouped.update(rows)
    if exact:
        by_hash: dict = {}
        for row, digest in enumerate(hashes):
            if row not in grouped:
                by_hash.setdefault(digest, []).append(row)
        groups += [_group("exact", rows, photos, units) for rows in by_hash.values() if len(rows) > 1]
    order = {"near": 0, "exact": 1}
    return sorted(groups, key=lambda g: (order[g.kind], -g.spare_bytes, g.keys[0]))


def _group(kind: str, rows, photos, units) -> DuplicateGroup:
    meta = photos.metadata
    keys = photos.keys
    rows = sorted(rows, key=lambda r: (-int(meta.width[r]) * int(meta.height[r]), -int(photos.sizes[r]),
                                       len(keys[r]), keys[r]))
    best = units[rows[0]]
    return DuplicateGroup(
        kind=kind,
        keys=[str(keys[r]) for r in rows],
        sizes=[int(photos.sizes[r]) for r in rows],
        shapes=[(int(meta.width[r]), int(meta.height[r])) for r in rows],
        similarities=[1.0 if meta.content_hash[r] == meta.content_hash[rows[0]] else float(units[r] @ best) for r in rows],
    )
