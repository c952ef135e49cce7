"""The tags of a database's images, and search restricted to the images carrying a tag.

:class:`DatabaseTags` puts together what :class:`~semsearch.routes.tagger.Tagger` needs for one
:class:`~semsearch.database.ImageDatabase`: the images' embeddings (the database's own), their
backbone descriptors where known (a COCO :class:`~semsearch.descriptors.Descriptors` file, or
the descriptors a photo database keeps), and the backbone's ImageNet classifier
(:func:`~semsearch.routes.classifier.classifier_for`). Where that classifier cannot be had, it
says so once (:attr:`DatabaseTags.note`, and a :class:`TagsWarning`) and the tags are GloVe words.

The web page (``/api/tags``, the result panel, ``/api/search?tag=``), ``semsearch tags``,
``semsearch search --tag`` and notebooks all go through :meth:`DatabaseTags.tags_of` and
:meth:`DatabaseTags.restrict`.

Example
-------
>>> tags = DatabaseTags.for_database(database, descriptors)           # doctest: +SKIP
>>> [str(t) for t in tags.tags_of([139], k=5)[0]]                     # doctest: +SKIP
['dining table 0.62', 'kitchen', 'table', 'restaurant', 'dinner']
>>> tags.restrict("dog").query("a dog on the beach", k=3)             # doctest: +SKIP
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import List, Optional

import numpy as np

from semsearch.backbones import backbone_of_dim
from semsearch.common.checks import check_k
from semsearch.database import ImageDatabase
from semsearch.errors import InputError, UnknownIdError
from semsearch.routes.classifier import ClassifierUnavailableError, classifier_for
from semsearch.routes.tagger import DEFAULT_K, DEFAULT_SETTINGS, Tag, Tagger, TagSettings, tag_matches

#: Images tagged per block when every image's tags are needed (search by tag).
BLOCK = 2048


class TagsWarning(UserWarning):
    """The tags are GloVe words only: the backbone's ImageNet classifier is not available."""


def backbone_name(database, descriptors=None) -> Optional[str]:
    """The backbone that made the database's (or the descriptors') vectors, if recorded or told by their size."""
    for source in (database, descriptors):
        record = getattr(source, "backbone_info", None)  # a record; a photo search keeps only the name
        name = record.get("backbone") if isinstance(record, dict) else getattr(source, "backbone_name", None)
        if isinstance(name, str):
            return name
    dim = getattr(descriptors, "dim", None) or (np.shape(descriptors)[1] if isinstance(descriptors, np.ndarray) else None)
    return backbone_of_dim(dim)


class DatabaseTags:
    """Tags of the images of one database (see the module docstring).

    Parameters
    ----------
    database : ImageDatabase
    tagger : Tagger
    descriptors : array (N, D), optional
        Row i is the descriptor of database image i (NaN rows: unknown).
    note : str, optional
        Why the tags are words only, said once.
    """

    def __init__(self, database: ImageDatabase, tagger: Tagger, descriptors: Optional[np.ndarray] = None,
                 note: Optional[str] = None):
        self.database, self.tagger, self.note = database, tagger, note
        if descriptors is not None and descriptors.shape[0] != len(database):
            raise InputError(f"need one descriptor row per database image: {descriptors.shape[0]} for {len(database)}")
        self.descriptors = descriptors
        self.known = np.zeros(len(database), bool) if descriptors is None else np.isfinite(descriptors).all(axis=1)
        self._rows = {key: r for r, key in enumerate(database.keys.tolist())}
        self._all: Optional[List[List[Tag]]] = None

    @classmethod
    def for_database(cls, database: ImageDatabase, descriptors=None, *, text_encoder=None, classifier="auto",
                     settings: TagSettings = DEFAULT_SETTINGS, warn: bool = True) -> "DatabaseTags":
        """Gather the descriptors and the classifier for ``database``'s tags.

        Parameters
        ----------
        database : ImageDatabase
        descriptors : Descriptors, array (N, D) or path, optional
            A COCO descriptor file, loaded or not (images it lacks get word tags only; a path is
            read only if the backbone's classifier is available), or one row per database image
            (a photo database's stored descriptors). Default: ``database.descriptors`` if it has
            them (:func:`semsearch.photos.folder.load_search` keeps them), else none.
        text_encoder : optional
            Default: the database's.
        classifier : ImageNetClassifier, None or "auto"
            "auto": the backbone's (:func:`~semsearch.routes.classifier.classifier_for`), if it can be had.
        warn : bool
            Issue a :class:`TagsWarning` when the tags are words only (also kept in :attr:`note`).

        Raises
        ------
        NoTagSourceError
            No classifier and no GloVe word vectors (a MiniLM database without descriptors).
        """
        if descriptors is None:
            descriptors = getattr(database, "descriptors", None)
        note = None
        if classifier == "auto":
            classifier, note = _classifier(database, descriptors)
        if classifier is not None and isinstance(descriptors, (str, os.PathLike)):
            from semsearch.descriptors import Descriptors

            descriptors = Descriptors.load(descriptors)
        rows = _aligned(database, descriptors) if classifier is not None else None
        if classifier is not None and rows is None:
            classifier, note = None, "none of the images has a descriptor: tags are GloVe words only"
        if rows is not None and rows.shape[1] != classifier.dim:
            raise InputError(f"the descriptors are {rows.shape[1]}-d but the classifier takes {classifier.dim}-d ones")
        tagger = Tagger(text_encoder or database.text_encoder, classifier, settings)
        if note is not None and warn:
            warnings.warn(note, TagsWarning, stacklevel=2)
        return cls(database, tagger, rows, note)

    def tags_of(self, keys, k: int = DEFAULT_K) -> List[List[Tag]]:
        """The k tags of each image named (COCO ids or relative paths), in order."""
        rows = [self._row_of(key) for key in keys]
        return self._tags_of_rows(np.asarray(rows, dtype=np.int64), check_k(k))

    def all_tags(self) -> List[List[Tag]]:
        """The :data:`DEFAULT_K` tags of every image, in database order (computed once)."""
        if self._all is None:
            out: List[List[Tag]] = []
            for start in range(0, len(self.database), BLOCK):
                out.extend(self._tags_of_rows(np.arange(start, min(start + BLOCK, len(self.database))), DEFAULT_K))
            self._all = out
        return self._all

    def carrying(self, tag: str) -> np.ndarray:
        """Boolean (N,): the images one of whose :data:`DEFAULT_K` tags includes every word of ``tag``."""
        return np.array([any(tag_matches(t.text, tag) for t in row) for row in self.all_tags()], dtype=bool)

    def restrict(self, tag: str) -> ImageDatabase:
        """A database of only the images carrying ``tag`` (same keys, vectors and text encoder).

        Raises
        ------
        UnknownIdError
            No image carries the tag.
        """
        keep = self.carrying(tag)
        if not keep.any():
            raise UnknownIdError(f"no image of this database carries the tag {tag!r}")
        db = self.database
        return ImageDatabase(db.keys[keep], db.vectors[keep], db.text_encoder, backbone=getattr(db, "backbone_info", None))

    def _row_of(self, key) -> int:
        self.database.vector_of(key)  # checks the key's type; UnknownIdError for a key not in the database
        return self._rows[str(key) if self.database.keys.dtype.kind == "U" else int(key)]

    def _tags_of_rows(self, rows: np.ndarray, k: int) -> List[List[Tag]]:
        vectors = self.database.vectors[rows] if self.tagger.words is not None else None
        out: List[Optional[List[Tag]]] = [None] * len(rows)
        labelled = self.known[rows]
        for mask, descriptors in ((labelled, True), (~labelled, False)):
            if not mask.any() or (not descriptors and self.tagger.words is None):
                continue  # (no descriptor and no word vectors: no tags)
            picked = rows[mask]
            tags = self.tagger.tags(None if vectors is None else vectors[mask],
                                    self.descriptors[picked] if descriptors else None, k)
            for i, row_tags in zip(np.flatnonzero(mask), tags):
                out[i] = row_tags
        return [row if row is not None else [] for row in out]


def default_descriptors(model_dir=None, data=None) -> Optional[Path]:
    """The descriptor file of a COCO model's images: the sample's for the sample's model, else the data folder's, else None."""
    from semsearch import sample
    from semsearch.paths import find_data_files

    if model_dir is None or Path(model_dir).resolve() == sample.model_dir().resolve():
        return sample.descriptors_file()
    try:
        return find_data_files(data)[1]
    except FileNotFoundError:
        return None


def _classifier(database, descriptors):
    """``(classifier, None)`` for the database's backbone, or ``(None, why not)``."""
    if descriptors is None:
        return None, "no image descriptors were given: tags are GloVe words only"
    name = backbone_name(database, None if isinstance(descriptors, (str, os.PathLike)) else descriptors)
    if name is None:
        return None, "the backbone of the descriptors is unknown: tags are GloVe words only"
    try:
        return classifier_for(name), None
    except ClassifierUnavailableError as e:
        return None, f"no ImageNet classifier for {name}: tags are GloVe words only ({e})"


def _aligned(database: ImageDatabase, descriptors) -> Optional[np.ndarray]:
    """Descriptors as (N, D) rows in database order, NaN where an image has none; None if none at all."""
    if descriptors is None:
        return None
    if isinstance(descriptors, np.ndarray):
        rows = np.asarray(descriptors, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(database):
            raise InputError(f"descriptors must have shape ({len(database)}, D), one per database image, got {rows.shape}")
        return rows
    if database.keys.dtype.kind == "U":
        raise InputError("a photo database's descriptors come as one row per image, not as a COCO descriptor file")
    rows = np.full((len(database), descriptors.dim), np.nan, dtype=np.float32)
    ids = database.keys.tolist()
    have = [r for r, i in enumerate(ids) if i in descriptors]
    if not have:
        return None
    rows[have] = descriptors.vectors_of([ids[r] for r in have])
    return rows
