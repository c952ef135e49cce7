"""The web app's word routes: an image's tags and the words nearest to a word.

=============================  ===========================================================
``GET /api/tags/{key}?k=``     the GloVe words nearest to a database image
``GET /api/words?w=&k=``       the words nearest to a word or text
=============================  ===========================================================

Both need a GloVe text encoder (501 otherwise).

Example
-------
>>> add_word_routes(app, context)   # doctest: +SKIP
"""
# No "from __future__ import annotations": FastAPI reads the endpoints' annotations as objects.
from semsearch.web.context import AppContext


def add_word_routes(app, context: AppContext) -> None:
    """Register ``/api/tags/{key}`` and ``/api/words``."""
    from fastapi import Query

    @app.get("/api/tags/{key:path}")
    def tags(key: str, k: int = 10):
        from semsearch.routes.tags import image_tags

        image_id = context.key_of(key)
        words, scores = image_tags(context.database.vector_of(image_id), context.word_vectors(), k=context.check_k(k))
        return {"key": key, "tags": [[w, round(float(s), 6)] for w, s in zip(words, scores)]}

    @app.get("/api/words")
    def words(w: str = Query(..., description="a word or a few"), k: int = 10):
        from semsearch.routes.tags import similar_words

        context.check_text(w, "w")
        found, scores = similar_words(w, context.word_vectors(), context.check_k(k))
        return {"w": w, "words": [[x, round(float(s), 6)] for x, s in zip(found, scores)]}
