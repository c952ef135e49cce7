"""The web app: a JSON API over one loaded database, one HTML page, and the images' thumbnails.

:func:`create_app` takes objects already loaded (the database, its text encoder, the model
for image queries), so nothing is read per request. Routes:

=============================  ===========================================================
``GET /``                      the page (``static/index.html``; no build step, no CDN)
``GET /api/health``            what is loaded: image count, dimension, encoder, features
``GET /api/search?q=&k=``      top-k images for a text, each with its words' shares
``POST /api/search/image?k=``  top-k images for an uploaded image (the request body)
``GET /api/similar/{key}?k=``  the images nearest to a database image
``GET /api/tags/{key}?k=``     the GloVe words nearest to a database image
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
# No "from __future__ import annotations": FastAPI reads the endpoints' annotations as objects.
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Mapping, Optional
from urllib.parse import quote

import numpy as np

from semsearch.errors import InputError, MissingExtraError, SemsearchError, UnknownIdError, UnknownQueryError
from semsearch.photos.paths import shown_name
from semsearch.query import stop_words_warning
from semsearch.routes.explain import explain, is_decomposable
from semsearch.text import TextEmbedder, tokenize
from semsearch.web.images import (
    MAX_IMAGE_PIXELS,
    MAX_UPLOAD_BYTES,
    ImageTooLargeError,
    NotAnImageError,
    open_image_bytes,
    open_image_file,
    placeholder_jpeg,
    thumbnail_jpeg,
)

STATIC = Path(__file__).parent / "static"


class NotAvailableError(SemsearchError):
    """A feature this database or encoder cannot offer (the app answers 501)."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one request may ask for."""

    max_query_chars: int = 300
    max_k: int = 100
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    thumbnail_size: int = 256


def embed_query(text_encoder, text: str) -> np.ndarray:
    """The unit query vector of a text: the one place a query is parsed.

    Raises UnknownQueryError naming the words when none of them is known.
    """
    from semsearch.query import embed_query as embed_compound

    return embed_compound(text, text_encoder)


def _status_of(error: Exception) -> int:
    for kind, status in (
        (UnknownIdError, 404),
        (ImageTooLargeError, 413),
        (NotAnImageError, 415),
        (NotAvailableError, 501),
        (MissingExtraError, 501),
        (UnknownQueryError, 422),
    ):
        if isinstance(error, kind):
            return status
    return 422


def create_app(
    database,
    text_encoder=None,
    *,
    model=None,
    image_path: Optional[Callable[[object], Optional[Path]]] = None,
    captions: Optional[Mapping[object, str]] = None,
    describe: Optional[Callable] = None,
    limits: Limits = Limits(),
    title: str = "semsearch",
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
        The CNN descriptor of an uploaded image. Default: ResNet18
        (:func:`semsearch.features.describe`) for a model that takes 512-d descriptors.
    limits : Limits
        Caps on the query length, k, upload bytes and decoded pixels.
    """
    try:
        from fastapi import FastAPI, Query, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from starlette.exceptions import HTTPException
    except ImportError:
        raise MissingExtraError("the web app needs FastAPI: pip install 'semsearch[web]'") from None

    text_encoder = text_encoder or database.text_encoder
    if text_encoder is None:
        raise InputError("the database has no text encoder: pass text_encoder=")
    keys = {shown_name(str(k)): k for k in database.image_ids.tolist()}  # the only way from a URL to an image
    captions = dict(captions or {})
    decomposable = is_decomposable(text_encoder)
    if describe is None and model is not None:
        describe = _backbone_describe(model, database)
    page = {name: (STATIC / name).read_bytes() for name in ("index.html", "app.js", "style.css")}
    placeholder = placeholder_jpeg(limits.thumbnail_size)

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)

    # ------------------------------------------------------------------ errors
    def error(status: int, message: str):
        return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)

    @app.exception_handler(SemsearchError)
    async def _semsearch_error(request, e: SemsearchError):
        return error(_status_of(e), str(e))

    @app.exception_handler(RequestValidationError)
    async def _bad_parameter(request, e: RequestValidationError):
        problems = []
        for item in e.errors():
            name = ".".join(str(p) for p in item.get("loc", ())[1:]) or "request"
            problems.append(f"{name}: {item.get('msg', 'invalid')} (got {item.get('input')!r})")
        return error(422, "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def _http_error(request, e: HTTPException):
        return error(e.status_code, e.detail if isinstance(e.detail, str) else "error")

    # ------------------------------------------------------------------ checks
    def key_of(text: str):
        if text not in keys:
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise UnknownIdError(f"no image with key {shown!r} in this database")
        return keys[text]

    def check_text(text: str, name: str) -> str:
        if len(text) > limits.max_query_chars:
            raise InputError(f"{name} is {len(text)} characters long; the limit is {limits.max_query_chars}")
        if not text.strip():
            raise UnknownQueryError(f"{name} is empty: type some words")
        return text

    def check_k(k: int) -> int:
        if not 1 <= k <= limits.max_k:
            raise InputError(f"k must be between 1 and {limits.max_k}, got {k}")
        return k

    def unknown_words(text: str) -> List[str]:
        known = set(text_encoder.known_words(text))
        return [t for t in dict.fromkeys(tokenize(text)) if t not in known]

    def result(key, score: float, shares=None) -> dict:
        text = shown_name(str(key))  # a name that is not UTF-8 as \xNN; '#', '?' and '%' percent-encoded in the URL
        entry = {"key": text, "score": round(float(score), 6), "image": "/images/" + quote(text, safe="/"), "caption": captions.get(key)}
        if shares is not None:
            entry["shares"] = [[w, round(s, 6)] for w, s in shares]
        return entry

    def tag_source():
        if not isinstance(text_encoder, TextEmbedder):
            raise NotAvailableError(f"{type(text_encoder).__name__} has no word vectors: tags and similar words need a GloVe text encoder")
        return text_encoder

    # ------------------------------------------------------------------ page
    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse(page["index.html"])

    @app.get("/static/{name}")
    def static(name: str):
        kinds = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in kinds:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(page[name], media_type=kinds[name])

    # ------------------------------------------------------------------ API
    @app.get("/api/health")
    def health():
        return {
            "status": "ok",
            "images": len(database),
            "dim": int(database.dim),
            "text_encoder": type(text_encoder).__name__,
            "weighting": getattr(text_encoder, "weighting", None),
            "explain": decomposable,
            "image_search": model is not None and describe is not None,
            "limits": {"max_query_chars": limits.max_query_chars, "max_k": limits.max_k, "max_upload_bytes": limits.max_upload_bytes},
        }

    @app.get("/api/search")
    def search(q: str = Query(..., description="the text query"), k: int = 9):
        check_text(q, "the query")
        k = check_k(k)
        ids, scores = database.query(embed_query(text_encoder, q), k)
        results = []
        for key, score in zip(ids.tolist(), scores):
            shares = explain(text_encoder, q, database.vector_of(key)) if decomposable else None
            results.append(result(key, score, shares))
        return {"query": q, "k": k, "unknown_words": unknown_words(q), "explain": decomposable,
                "warning": stop_words_warning(q), "results": results}

    @app.post("/api/search/image")
    async def search_image(request: Request, k: int = 9):
        k = check_k(k)
        if model is None or describe is None:
            raise NotAvailableError(
                "image queries need the model and a CNN for its descriptors: "
                + ("no model was loaded" if model is None else f"the model takes {model.input_dim}-d descriptors and only ResNet18 (512-d) is built in")
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
            raise ImageTooLargeError(f"the upload is {int(declared):,} bytes; the limit is {limits.max_upload_bytes:,}")
        body = bytearray()
        async for chunk in request.stream():  # stop reading as soon as the cap is passed
            body.extend(chunk)
            if len(body) > limits.max_upload_bytes:
                raise ImageTooLargeError(f"the upload is over {limits.max_upload_bytes:,} bytes, the limit")
        image = open_image_bytes(bytes(body), max_bytes=limits.max_upload_bytes, max_pixels=limits.max_image_pixels)
        from starlette.concurrency import run_in_threadpool

        ids, scores = await run_in_threadpool(_image_query, image, k)
        return {"k": k, "width": image.width, "height": image.height,
                "results": [result(key, s) for key, s in zip(ids.tolist(), scores)]}

    def _image_query(image, k: int):
        descriptor = np.asarray(describe(image), dtype=np.float32).reshape(-1)
        if descriptor.shape[0] != model.input_dim:
            raise InputError(f"the image descriptor has {descriptor.shape[0]} values; the model takes {model.input_dim}")
        return database.query(model.embed(descriptor[None])[0], k)

    @app.get("/api/similar/{key:path}")
    def similar(key: str, k: int = 9):
        image_id = key_of(key)
        k = check_k(k)
        ids, scores = database.query(database.vector_of(image_id), min(k + 1, len(database)))
        keep = ids != image_id
        ids, scores = ids[keep][:k], scores[keep][:k]
        return {"key": key, "k": k, "results": [result(i, s) for i, s in zip(ids.tolist(), scores)]}

    @app.get("/api/tags/{key:path}")
    def tags(key: str, k: int = 10):
        from semsearch.routes.tags import image_tags

        image_id = key_of(key)
        words, scores = image_tags(database.vector_of(image_id), tag_source(), k=check_k(k))
        return {"key": key, "tags": [[w, round(float(s), 6)] for w, s in zip(words, scores)]}

    @app.get("/api/words")
    def words(w: str = Query(..., description="a word or a few"), k: int = 10):
        from semsearch.routes.tags import similar_words

        check_text(w, "w")
        found, scores = similar_words(w, tag_source(), check_k(k))
        return {"w": w, "words": [[x, round(float(s), 6)] for x, s in zip(found, scores)]}

    @app.get("/api/explain")
    def explain_one(q: str, key: str):
        check_text(q, "the query")
        image_id = key_of(key)
        if not decomposable:
            raise NotAvailableError(f"{type(text_encoder).__name__} is not a sum of word vectors: its scores cannot be split by word")
        vector = database.vector_of(image_id)
        score = float(embed_query(text_encoder, q) @ vector)
        return {"query": q, "key": key, "score": round(score, 6),
                "shares": [[w, round(s, 6)] for w, s in explain(text_encoder, q, vector)]}

    # ------------------------------------------------------------------ images
    @functools.lru_cache(maxsize=2048)
    def thumbnail(image_id) -> bytes:
        path = image_path(image_id) if image_path is not None else None
        if path is None:
            return placeholder
        try:
            image = open_image_file(path, max_pixels=limits.max_image_pixels, draft=limits.thumbnail_size)
        except InputError:
            return placeholder_jpeg(limits.thumbnail_size, "unreadable image")
        return thumbnail_jpeg(image, limits.thumbnail_size)

    @app.get("/images/{key:path}")
    def image(key: str):
        return Response(thumbnail(key_of(key)), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    return app


def _backbone_describe(model, database) -> Optional[Callable]:
    """Describe an upload with the backbone the model (or the database) was made with, if known."""
    from semsearch.backbones import BACKBONES

    record = getattr(model, "backbone", None) or getattr(database, "backbone", None)
    name = record.get("backbone") if isinstance(record, dict) else record
    if name is None:  # an old model folder: its descriptor size says which network (the course's is 512-d)
        name = {512: "resnet18", 1280: "efficientnet-lite0"}.get(model.input_dim)
    if name not in BACKBONES:
        return None

    def describe(image) -> np.ndarray:
        from semsearch.features import describe as describe_image

        return describe_image(image, name)

    return describe
