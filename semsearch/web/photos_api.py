"""The web app's photo routes: filtered search, duplicates, and relevance feedback.

=====================================  ========================================================
``GET /api/feedback?q=&good=&bad=&k=``  search again with the query moved toward the ``good``
                                        keys and away from the ``bad`` ones (Rocchio,
                                        :mod:`semsearch.routes.feedback`); says what changed
``GET /api/photos/info``                a photo database's folders, cameras and date range
                                        (404 for a COCO database: no filters to offer)
``GET /api/photos/search?q=&k=&...``    search among the photos that pass the filters
                                        ``after``, ``before``, ``folder``, ``camera``,
                                        ``orientation``, ``min_size``; each result has its date
                                        taken and folder
``GET /api/duplicates``                 groups of exact and near duplicates, best copy first
=====================================  ========================================================

The filters also apply to ``/api/feedback`` on a photo database. Nothing is ever deleted.

Example
-------
>>> add_photo_routes(app, context, photos=PhotoDatabase.load("photos.npz"))   # doctest: +SKIP
"""
# No "from __future__ import annotations": FastAPI reads the endpoints' annotations as objects.

import posixpath

import numpy as np

from semsearch.routes.explain import explain
from semsearch.web.context import AppContext


def add_photo_routes(app, context: AppContext, photos=None) -> None:
    """Register ``/api/feedback`` always, and the photo routes when ``photos`` (a PhotoDatabase) is given."""
    results = PhotoResults(context, photos)
    add_feedback_route(app, context, results)
    if photos is not None:
        add_filtered_search_routes(app, context, results)
        add_duplicates_route(app, context, photos)


class PhotoResults:
    """The photo database's filter columns, the filters of a request, and each result's date and folder."""

    def __init__(self, context: AppContext, photos=None):
        self.context, self.columns = context, None
        if photos is not None:
            from semsearch.photos.filters import PhotoColumns

            self.columns = PhotoColumns.of(photos.keys, photos.metadata).subset(np.asarray(context.database.keys, dtype=str))
        self.rows = {k: r for r, k in enumerate(self.columns.keys.tolist())} if self.columns is not None else {}

    @staticmethod
    def only(after, before, folder, camera, orientation, min_size):
        """The request's filter (empty strings: no condition)."""
        from semsearch.photos.filters import PhotoFilter, parse_size

        return PhotoFilter(after=after or None, before=before or None, folder=folder or None, camera=camera or None,
                           orientation=orientation or None, min_size=parse_size(min_size) if min_size else None)

    def where(self, filters):
        """The mask of the photos that pass ``filters`` (None: every image), or NothingPassesError."""
        if self.columns is None:
            return None
        from semsearch.photos.filters import passing

        return passing(self.columns, filters)

    def result(self, key, score, q=None) -> dict:
        """One result as the page shows it: with each word's share, and a photo's date taken and folder."""
        context = self.context
        shares = explain(context.text_encoder, q, context.database.vector_of(key)) if q and context.decomposable else None
        entry = context.result(key, score, shares)
        if self.columns is not None:
            from semsearch.photos.metadata import format_time

            row = self.rows[str(key)]
            taken = format_time(self.columns.metadata.taken[row])[:16]
            source = str(self.columns.metadata.taken_source[row])
            folder = posixpath.dirname(str(key)) or "."
            entry.update(taken=taken, taken_source=source, folder=folder,
                         caption=f"{taken}{'' if source == 'exif' else ' (file date)'} · {folder}")
        return entry


def add_feedback_route(app, context: AppContext, results: PhotoResults) -> None:
    """``/api/feedback``: search again, moved toward the good results and away from the bad ones."""
    from fastapi import Query

    from semsearch.errors import UnknownIdError
    from semsearch.routes.feedback import feedback_vector

    database = context.database

    @app.get("/api/feedback")
    def feedback(q: str, good: list[str] | None = Query(None), bad: list[str] | None = Query(None),  # noqa: B008 - FastAPI's repeated parameter
                 k: int = 9, after: str = "", before: str = "", folder: str = "", camera: str = "", orientation: str = "",
                 min_size: str = ""):
        context.check_text(q, "the query")
        k = context.check_k(k)
        good, bad = good or [], bad or []
        good_ids, bad_ids = [context.key_of(g) for g in good], [context.key_of(b) for b in bad]
        if not good_ids and not bad_ids:
            raise UnknownIdError("mark at least one result good or bad")
        keep = results.where(results.only(after, before, folder, camera, orientation, min_size))
        first_vector = context.embed_query(q)
        first, _ = database.query(first_vector, k=k, where=keep)
        moved = feedback_vector(database, first_vector, good_ids, bad_ids)
        keys, scores = database.query(moved, k=k, where=keep)
        before_keys, after_keys = [str(x) for x in first.tolist()], [str(x) for x in keys.tolist()]
        return {"query": q, "k": k, "good": good, "bad": bad,
                "moved_cosine": round(float(moved @ first_vector), 6),
                "entered": [x for x in after_keys if x not in before_keys],
                "left": [x for x in before_keys if x not in after_keys],
                "results": [results.result(key, s) for key, s in zip(keys.tolist(), scores)]}


def add_filtered_search_routes(app, context: AppContext, results: PhotoResults) -> None:
    """``/api/photos/info`` (what there is to filter by) and ``/api/photos/search`` (search with filters)."""
    from semsearch.photos.metadata import format_time

    columns = results.columns

    @app.get("/api/photos/info")
    def info():
        meta = columns.metadata
        dated = meta.taken[meta.taken_source != ""]
        return {"photos": len(columns), "folders": sorted({posixpath.dirname(k) for k in columns.keys.tolist()} - {""}),
                "cameras": sorted(set(meta.camera.tolist()) - {""}),
                "first": format_time(dated.min())[:10] if len(dated) else None,
                "last": format_time(dated.max())[:10] if len(dated) else None}

    @app.get("/api/photos/search")
    def photo_search(q: str, k: int = 9, after: str = "", before: str = "", folder: str = "", camera: str = "",
                     orientation: str = "", min_size: str = ""):
        context.check_text(q, "the query")
        k = context.check_k(k)
        filters = results.only(after, before, folder, camera, orientation, min_size)
        keys, scores = context.database.query(context.embed_query(q), k=k, where=results.where(filters))
        return {"query": q, "k": k, "filter": filters.describe(), "unknown_words": context.unknown_words(q),
                "results": [results.result(key, s, q) for key, s in zip(keys.tolist(), scores)]}


def add_duplicates_route(app, context: AppContext, photos) -> None:
    """``/api/duplicates``: groups of exact and near duplicates, best copy first (found once, on first use)."""
    found = []

    @app.get("/api/duplicates")
    def duplicates():
        from semsearch.photos.duplicates import NEAR_THRESHOLD, find_duplicates

        if not found:  # once: the database does not change while served
            found.append(find_duplicates(photos))
        groups = [{"kind": g.kind, "photos": [
            {"key": key, "image": f"/images/{key}", "bytes": size, "width": w, "height": h, "similarity": round(sim, 4)}
            for key, size, (w, h), sim in zip(g.keys, g.sizes, g.shapes, g.similarities) if key in context.keys]}
            for g in found[0]]
        return {"near_threshold": NEAR_THRESHOLD, "groups": [g for g in groups if len(g["photos"]) > 1]}
