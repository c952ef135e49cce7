"""The web app's errors: every failure answers ``{"error": "one line"}`` with its status code.

=====  ==============================================================
404    unknown key (:class:`~semsearch.errors.UnknownIdError`), unknown static file
413    upload or image too large
415    not an image
422    bad parameter, unknown words, anything else a SemsearchError says
501    a feature this database cannot offer, a missing extra
=====  ==============================================================

Example
-------
>>> status_of(UnknownIdError("no image with key '1'"))
404
"""
# No "from __future__ import annotations": FastAPI reads the handlers' annotations as objects.
from semsearch.errors import (
    MissingExtraError,
    SemsearchError,
    UnknownIdError,
    UnknownQueryError,
)
from semsearch.web.context import NotAvailableError
from semsearch.web.images import ImageTooLargeError, NotAnImageError

STATUS = (
    (UnknownIdError, 404),
    (ImageTooLargeError, 413),
    (NotAnImageError, 415),
    (NotAvailableError, 501),
    (MissingExtraError, 501),
    (UnknownQueryError, 422),
)


def status_of(error: Exception) -> int:
    """The HTTP status a SemsearchError answers with (422 unless listed in :data:`STATUS`)."""
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 422


def error_response(status: int, message: str):
    """``{"error": message}`` on one line, with ``status``."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


def add_error_handlers(app) -> None:
    """Answer SemsearchErrors, bad parameters and HTTP errors as one-line JSON."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(SemsearchError)
    async def semsearch_error(request, e: SemsearchError):
        return error_response(status_of(e), str(e))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request, e: RequestValidationError):
        problems = []
        for item in e.errors():
            name = ".".join(str(p) for p in item.get("loc", ())[1:]) or "request"
            problems.append(f"{name}: {item.get('msg', 'invalid')} (got {item.get('input')!r})")
        return error_response(422, "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        return error_response(e.status_code, e.detail if isinstance(e.detail, str) else "error")
