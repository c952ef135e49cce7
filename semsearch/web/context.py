"""What every route of the web app shares: the loaded objects, the request checks, the result format.

:class:`AppContext` is built once by :func:`semsearch.web.app.create_app`; the route groups
(:mod:`~semsearch.web.search_api`, :mod:`~semsearch.web.words_api`,
:mod:`~semsearch.web.upload_api`, :mod:`~semsearch.web.files_api`) read from it and never
reload anything per request.

Example
-------
>>> context = AppContext.build(database, text_encoder, limits=Limits())   # doctest: +SKIP
>>> context.key_of("139")                                                  # doctest: +SKIP
139
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np

from semsearch.errors import (
    InputError,
    SemsearchError,
    UnknownIdError,
    UnknownQueryError,
)
from semsearch.photos.paths import shown_name
from semsearch.routes.explain import is_decomposable
from semsearch.text import TextEmbedder, tokenize
from semsearch.web.images import MAX_IMAGE_PIXELS, MAX_UPLOAD_BYTES


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


DEFAULT_LIMITS = Limits()


@dataclass
class AppContext:
    """The loaded objects one app serves, and the checks every request goes through.

    Attributes
    ----------
    database : ImageDatabase
        The embedded images, ``(N, dim)``.
    text_encoder : TextEmbedder or MiniLMEncoder
        Embeds the queries.
    limits : Limits
        Caps on the query length, k, upload bytes and decoded pixels.
    model : Autoembedder or None
        Embeds an uploaded image's descriptor.
    describe : callable PIL.Image -> array (D,), or None
        The CNN descriptor of an uploaded image.
    image_path : callable key -> Path or None, or None
        Where a database image's file is.
    captions : dict key -> str
        The caption shown under a result.
    keys : dict str -> id
        The only way from a URL to an image: the text form of each database id.
    tags : DatabaseTags or None
        The images' tags (:mod:`semsearch.routes.image_tags`); None when there is nothing to
        make them from (``tags_error`` says why).
    """

    database: object
    text_encoder: object
    limits: Limits = DEFAULT_LIMITS
    model: object = None
    describe: Callable | None = None
    image_path: Callable[[object], Path | None] | None = None
    captions: dict[object, str] = field(default_factory=dict)
    keys: dict[str, object] = field(default_factory=dict)
    tags: object = None
    tags_error: str | None = None

    @classmethod
    def build(cls, database, text_encoder=None, *, limits: Limits = DEFAULT_LIMITS, model=None,
              describe: Callable | None = None, image_path=None,
              captions: Mapping[object, str] | None = None, descriptors=None) -> AppContext:
        """Check the inputs once, index the database's keys and gather what its tags need."""
        from semsearch.routes.image_tags import DatabaseTags
        from semsearch.routes.tagger import NoTagSourceError

        text_encoder = text_encoder or database.text_encoder
        if text_encoder is None:
            raise InputError("the database has no text encoder: pass text_encoder=")
        keys = {shown_name(str(k)): k for k in database.keys.tolist()}  # names that are not UTF-8 as \xNN
        context = cls(database, text_encoder, limits, model, describe, image_path, dict(captions or {}), keys)
        try:
            context.tags = DatabaseTags.for_database(database, descriptors, text_encoder=text_encoder, warn=False)
        except NoTagSourceError as e:
            context.tags_error = str(e)
        return context

    @property
    def decomposable(self) -> bool:
        """Whether a score splits into one share per query word (GloVe sums do; MiniLM does not)."""
        return is_decomposable(self.text_encoder)

    def key_of(self, text: str):
        """The database id a URL key names; UnknownIdError (404) for any other text."""
        if text not in self.keys:
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise UnknownIdError(f"no image with key {shown!r} in this database")
        return self.keys[text]

    def check_text(self, text: str, name: str) -> str:
        """``text`` if it is non-blank and within the length cap."""
        if len(text) > self.limits.max_query_chars:
            raise InputError(f"{name} is {len(text)} characters long; the limit is {self.limits.max_query_chars}")
        if not text.strip():
            raise UnknownQueryError(f"{name} is empty: type some words")
        return text

    def check_k(self, k: int) -> int:
        """``k`` if it is between 1 and the cap."""
        if not 1 <= k <= self.limits.max_k:
            raise InputError(f"k must be between 1 and {self.limits.max_k}, got {k}")
        return k

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` the encoder does not know, in order, once each."""
        known = set(self.text_encoder.known_words(text))
        return [t for t in dict.fromkeys(tokenize(text)) if t not in known]

    def embed_query(self, text: str) -> np.ndarray:
        """The unit query vector of ``text`` (:func:`semsearch.query.embed_query`: plain or compound).

        Raises UnknownQueryError naming the words when none of them is known.
        """
        from semsearch.query import embed_query

        return embed_query(text, self.text_encoder)

    def result(self, key, score: float, shares=None) -> dict:
        """One result as JSON: key, score, thumbnail URL, caption, and the words' shares if given."""
        text = shown_name(str(key))  # as in self.keys; '#', '?' and '%' percent-encoded in the URL
        entry = {"key": text, "score": round(float(score), 6), "image": "/images/" + quote(text, safe="/"),
                 "caption": self.captions.get(key)}
        if shares is not None:
            entry["shares"] = [[w, round(s, 6)] for w, s in shares]
        return entry

    def database_tags(self):
        """The :class:`~semsearch.routes.image_tags.DatabaseTags`; NotAvailableError (501) if there are none."""
        if self.tags is None:
            raise NotAvailableError(self.tags_error or "this database has no tags")
        return self.tags

    def searched(self, tag: str | None):
        """The database to search: all of it, or only the images carrying ``tag`` (404 if none does)."""
        if tag is None:
            return self.database
        from semsearch.routes.tagger import check_tag_query

        self.check_text(tag, "the tag")
        return self.database_tags().restrict(check_tag_query(tag))

    def word_vectors(self) -> TextEmbedder:
        """The GloVe encoder, for tags and similar words; NotAvailableError (501) for MiniLM."""
        if not isinstance(self.text_encoder, TextEmbedder):
            raise NotAvailableError(f"{type(self.text_encoder).__name__} has no word vectors: "
                                    "tags and similar words need a GloVe text encoder")
        return self.text_encoder
