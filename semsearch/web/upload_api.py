"""The web app's image query: ``POST /api/search/image?k=&tag=`` ranks the database (or only the
images carrying ``tag``) against an upload.

The upload is read in chunks and refused (413) as soon as it passes the byte cap, decoded with a
pixel cap (:func:`~semsearch.web.images.open_image_bytes`), described by the CNN the model was
made with (:func:`backbone_describe`) and embedded by the model, off the event loop.

Example
-------
>>> add_upload_routes(app, context)   # doctest: +SKIP
"""
# No "from __future__ import annotations": FastAPI reads the endpoints' annotations as objects.
from collections.abc import Callable

import numpy as np

from semsearch.errors import InputError
from semsearch.web.context import AppContext, NotAvailableError
from semsearch.web.images import ImageTooLargeError, open_image_bytes


def backbone_describe(model, database) -> Callable | None:
    """Describe an upload with the backbone the model (or the database) was made with, if known.

    Returns
    -------
    callable PIL.Image -> array (D,), or None
        None when the backbone is not one of :data:`semsearch.backbones.BACKBONES`.
    """
    from semsearch.backbones import BACKBONES, backbone_of_dim

    record = getattr(model, "backbone_info", None) or getattr(database, "backbone_info", None)
    name = record.get("backbone") if isinstance(record, dict) else None
    if name is None:  # an old model folder: its descriptor size says which network (the course's is 512-d)
        name = backbone_of_dim(model.input_dim)
    if name not in BACKBONES:
        return None

    def describe(image) -> np.ndarray:
        from semsearch.features import describe as describe_image

        return describe_image(image, name)

    return describe


def add_upload_routes(app, context: AppContext) -> None:
    """Register ``POST /api/search/image``."""
    from fastapi import Request
    from starlette.concurrency import run_in_threadpool

    model, limits = context.model, context.limits

    def image_query(image, k: int, database):
        descriptor = np.asarray(context.describe(image), dtype=np.float32).reshape(-1)
        if descriptor.shape[0] != model.input_dim:
            raise InputError(f"the image descriptor has {descriptor.shape[0]} values; the model takes {model.input_dim}")
        return database.query(model.embed(descriptor[None])[0], k)

    @app.post("/api/search/image")
    async def search_image(request: Request, k: int = 9, tag: str | None = None):
        k = context.check_k(k)
        database = context.searched(tag)
        if model is None or context.describe is None:
            raise NotAvailableError(
                "image queries need the model and a CNN for its descriptors: "
                + ("no model was loaded" if model is None else
                   f"the model takes {model.input_dim}-d descriptors and only ResNet18 (512-d) is built in")
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
        ids, scores = await run_in_threadpool(image_query, image, k, database)
        return {"k": k, "tag": tag, "width": image.width, "height": image.height,
                "results": [context.result(key, s) for key, s in zip(ids.tolist(), scores)]}
