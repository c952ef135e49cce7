"""The web app: a JSON API over one loaded database, one HTML page, and the images' thumbnails.

:func:`create_app` takes objects already loaded (the database, its text encoder, the model
for image queries), so nothing is read per request. It builds one
:class:`~semsearch.web.context.AppContext` and registers four groups of routes, each in its own
module (:mod:`~semsearch.web.search_api`, :mod:`~semsearch.web.words_api`,
:mod:`~semsearch.web.upload_api`, :mod:`~semsearch.web.files_api`); errors are
:mod:`~semsearch.web.errors`. Routes:

=============================  ===========================================================
``GET /``                      the page (``static/index.html``; no build step, no CDN)
``GET /api/health``            what is loaded: image count, dimension, encoder, features
``GET /api/search?q=&k=&tag=`` top-k images for a text (only those carrying ``tag``, if given)
``POST /api/search/image?k=``  top-k images for an uploaded image (the request body; ``tag=`` too)
``GET /api/similar/{key}?k=``  the images nearest to a database image
``GET /api/tags/{key}?k=``     a database image's tags: ImageNet labels and GloVe words
``GET /api/words?w=&k=``       the words nearest to a word or text
``GET /api/explain?q=&key=``   one image's score split into one share per query word
``GET /images/{key}``          a JPEG thumbnail of a database image
=============================  ===========================================================

A key is the text form of a database id (``139`` for a COCO image; a relative path for a
photo database). It is looked up in a table built once from the database's own ids: any
other text (``../../etc/passwd``, ``/etc/passwd``, ``140`` when 140 is not in the
database) is a 404, and no file path is ever built from it.

Errors come back as ``{"error": "one line a person can read"}`` with the status code:
404 unknown key, 413 too large, 415 not an image, 422 bad parameter or unknown words,
501 a feature this database cannot offer (MiniLM has no word shares; no model for uploads).

Example
-------
>>> app = create_app(database, text_encoder, model=model,
...                  image_path=CocoImageFiles("data/coco/images").path_of)   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                           # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from semsearch.errors import MissingExtraError
from semsearch.web.context import (
    DEFAULT_LIMITS,
    AppContext,
    Limits,
    NotAvailableError,
)
from semsearch.web.errors import add_error_handlers
from semsearch.web.files_api import add_file_routes
from semsearch.web.photos_api import add_photo_routes
from semsearch.web.search_api import add_search_routes
from semsearch.web.upload_api import add_upload_routes, backbone_describe
from semsearch.web.words_api import add_word_routes

__all__ = ["Limits", "NotAvailableError", "create_app"]


def create_app(
    database,
    text_encoder=None,
    *,
    model=None,
    image_path: Callable[[object], Path | None] | None = None,
    captions: Mapping[object, str] | None = None,
    describe: Callable | None = None,
    descriptors=None,
    limits: Limits = DEFAULT_LIMITS,
    title: str = "semsearch",
    photos=None,
):
    """A FastAPI app serving ``database``.

    Parameters
    ----------
    database : ImageDatabase
        The embedded images, ``(N, dim)``.
    text_encoder : TextEmbedder or MiniLMEncoder, optional
        Default: the database's own.
    model : Autoembedder, optional
        Needed for image queries: embeds an uploaded image's descriptor.
    image_path : callable key -> Path or None, optional
        Where a database image's file is (e.g. :meth:`CocoImageFiles.path_of`); None, or no
        callable, gives a placeholder tile.
    captions : mapping key -> str, optional
        A caption shown under each result (a COCO image's first caption).
    describe : callable PIL.Image -> array (D,), optional
        The CNN descriptor of an uploaded image. Default: the backbone the model was made with
        (:func:`~semsearch.web.upload_api.backbone_describe`), if it is a built-in one.
    descriptors : Descriptors or array (N, D), optional
        The database images' backbone descriptors (a COCO descriptor file, or one row per image
        of a photo database): their ImageNet labels become tags
        (:class:`~semsearch.routes.image_tags.DatabaseTags`). Without them, tags are GloVe words.
    limits : Limits
        Caps on the query length, k, upload bytes and decoded pixels.
    photos : PhotoDatabase, optional
        The photo database ``database`` was loaded from: adds filtered search and duplicates
        (:mod:`~semsearch.web.photos_api`; relevance feedback is there for every database).
    """
    try:
        from fastapi import FastAPI
    except ImportError:
        raise MissingExtraError("the web app needs FastAPI: pip install 'semsearch[web]'") from None

    if describe is None and model is not None:
        describe = backbone_describe(model, database)
    context = AppContext.build(database, text_encoder, limits=limits, model=model, describe=describe,
                               image_path=image_path, captions=captions, descriptors=descriptors)
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context  # what the routes serve (semsearch serve reads the tags' note from it)
    add_error_handlers(app)
    add_file_routes(app, context)
    add_search_routes(app, context)
    add_upload_routes(app, context)
    add_word_routes(app, context)
    add_photo_routes(app, context, photos)
    return app
