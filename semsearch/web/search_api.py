"""The web app's text-search routes: health, search, similar images, one image's explanation.

=============================  ===========================================================
``GET /api/health``            what is loaded: image count, dimension, encoder, features
``GET /api/search?q=&k=&tag=`` top-k images for a text, each with its words' shares; with
                               ``tag``, only among the images carrying that tag
``GET /api/similar/{key}?k=``  the images nearest to a database image
``GET /api/explain?q=&key=``   one image's score split into one share per query word
=============================  ===========================================================

Example
-------
>>> add_search_routes(app, context)   # doctest: +SKIP
"""
# No "from __future__ import annotations": FastAPI reads the endpoints' annotations as objects.

from semsearch.query import stop_words_warning
from semsearch.routes.explain import explain
from semsearch.web.context import AppContext, NotAvailableError


def add_search_routes(app, context: AppContext) -> None:
    """Register ``/api/health``, ``/api/search``, ``/api/similar/{key}`` and ``/api/explain``."""
    from fastapi import Query

    database, limits = context.database, context.limits

    @app.get("/api/health")
    def health():
        return {
            "status": "ok",
            "images": len(database),
            "dim": int(database.dim),
            "text_encoder": type(context.text_encoder).__name__,
            "weighting": getattr(context.text_encoder, "weighting", None),
            "explain": context.decomposable,
            "image_search": context.model is not None and context.describe is not None,
            "tags": None if context.tags is None else context.tags.tagger.source,
            "tags_note": context.tags_error if context.tags is None else context.tags.note,
            "limits": {"max_query_chars": limits.max_query_chars, "max_k": limits.max_k,
                       "max_upload_bytes": limits.max_upload_bytes},
        }

    @app.get("/api/search")
    def search(q: str = Query(..., description="the text query"), k: int = 9,
               tag: str | None = Query(None, description="only images carrying this tag")):
        context.check_text(q, "the query")
        k = context.check_k(k)
        ids, scores = context.searched(tag).query(context.embed_query(q), k)
        decomposable = context.decomposable
        results = []
        for key, score in zip(ids.tolist(), scores):
            shares = explain(context.text_encoder, q, database.vector_of(key)) if decomposable else None
            results.append(context.result(key, score, shares))
        return {"query": q, "k": k, "tag": tag, "unknown_words": context.unknown_words(q), "explain": decomposable,
                "warning": stop_words_warning(q), "results": results}

    @app.get("/api/similar/{key:path}")
    def similar(key: str, k: int = 9):
        image_id = context.key_of(key)
        k = context.check_k(k)
        ids, scores = database.query(database.vector_of(image_id), min(k + 1, len(database)))
        keep = ids != image_id
        ids, scores = ids[keep][:k], scores[keep][:k]
        return {"key": key, "k": k, "results": [context.result(i, s) for i, s in zip(ids.tolist(), scores)]}

    @app.get("/api/explain")
    def explain_one(q: str, key: str):
        context.check_text(q, "the query")
        image_id = context.key_of(key)
        if not context.decomposable:
            raise NotAvailableError(f"{type(context.text_encoder).__name__} is not a sum of word vectors: "
                                    "its scores cannot be split by word")
        vector = database.vector_of(image_id)
        score = float(context.embed_query(q) @ vector)
        return {"query": q, "key": key, "score": round(score, 6),
                "shares": [[w, round(s, 6)] for w, s in explain(context.text_encoder, q, vector)]}
