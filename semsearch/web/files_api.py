"""The web app's files: the page, its static files, and the database images' thumbnails.

=============================  ===========================================================
``GET /``                      the page (``static/index.html``; no build step, no CDN)
``GET /static/{name}``         ``app.js``, ``photos.js`` or ``style.css``; any other name is a 404
``GET /images/{key}``          a JPEG thumbnail of a database image
=============================  ===========================================================

The page is read once; a thumbnail is made once per image (an LRU cache of 2048). No file path
is ever built from the URL: a key goes through :meth:`AppContext.key_of`, and an image without a
file (or an unreadable one) gets a placeholder tile.

Example
-------
>>> add_file_routes(app, context)   # doctest: +SKIP
"""
# No "from __future__ import annotations": FastAPI reads the endpoints' annotations as objects.
import functools
from pathlib import Path

from semsearch.errors import InputError
from semsearch.web.context import AppContext
from semsearch.web.images import open_image_file, placeholder_jpeg, thumbnail_jpeg

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"app.js": "text/javascript", "photos.js": "text/javascript", "style.css": "text/css"}


def add_file_routes(app, context: AppContext) -> None:
    """Register ``/``, ``/static/{name}`` and ``/images/{key}``."""
    from fastapi.responses import HTMLResponse, Response
    from starlette.exceptions import HTTPException

    page = {name: (STATIC / name).read_bytes() for name in ("index.html", *STATIC_TYPES)}
    limits = context.limits
    placeholder = placeholder_jpeg(limits.thumbnail_size)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse(page["index.html"])

    @app.get("/static/{name}")
    def static(name: str):
        if name not in STATIC_TYPES:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(page[name], media_type=STATIC_TYPES[name])

    @functools.lru_cache(maxsize=2048)
    def thumbnail(image_id) -> bytes:
        path = context.image_path(image_id) if context.image_path is not None else None
        if path is None:
            return placeholder
        try:
            image = open_image_file(path, max_pixels=limits.max_image_pixels, draft=limits.thumbnail_size)
        except InputError:
            return placeholder_jpeg(limits.thumbnail_size, "unreadable image")
        return thumbnail_jpeg(image, limits.thumbnail_size)

    @app.get("/images/{key:path}")
    def image(key: str):
        return Response(thumbnail(context.key_of(key)), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})
