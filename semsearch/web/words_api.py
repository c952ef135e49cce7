"""The web app's word routes: an image's tags and the words nearest to a word.

=============================  ===========================================================
``GET /api/tags/{key}?k=``     a database image's tags: ImageNet labels and GloVe words
``GET /api/words?w=&k=``       the words nearest to a word or text
=============================  ===========================================================

Tags are ``[text, score, source]``: source ``"imagenet"`` (score: the class probability) or
``"words"`` (score: a cosine); see :mod:`semsearch.routes.tagger`. They need the backbone's
classifier and the images' descriptors, or a GloVe text encoder (501 with neither); similar
words need a GloVe text encoder.

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
        image_id = context.key_of(key)
        database_tags = context.database_tags()
        found = database_tags.tags_of([image_id], k=context.check_k(k))[0]
        return {"key": key, "source": database_tags.tagger.source,
                "tags": [[t.text, round(float(t.score), 6), t.source] for t in found]}

    @app.get("/api/words")
    def words(w: str = Query(..., description="a word or a few"), k: int = 10):
        from semsearch.routes.tags import similar_words

        context.check_text(w, "w")
        found, scores = similar_words(w, context.word_vectors(), context.check_k(k))
        return {"w": w, "words": [[x, round(float(s), 6)] for x, s in zip(found, scores)]}
