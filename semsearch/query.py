"""Compound text queries: ``"dog + beach - grass"``, ``"2:dog + sky"``.

Grammar
-------
::

    query  :=  [sign] part (sign part)*
    sign   :=  "+" | "-"            with white space on both sides (or at the start)
    part   :=  [weight ":"] text
    weight :=  a number > 0 and at most 1e6, e.g. 2, 0.5, 1.5e1

- An operator needs white space around it, so ``"t-shirt"`` and ``"x+y"`` stay one part.
- A part's weight defaults to 1; its sign multiplies it (``"- 2:grass"`` is -2 x grass).
- A query with no operator and no weight is one part: it embeds exactly as ``se_text`` does.

The query vector is the weighted sum of the parts' **unit** vectors, normalised again::

    q = normalise( sum_i  sign_i * weight_i * se_text(text_i) / |se_text(text_i)| )

A part with no word the text encoder knows raises :class:`UnknownQueryError` naming that
part; parts that cancel out (``"dog - dog"``) raise :class:`InputError`.

Examples
--------
>>> parse_query("dog + beach - grass")
[(1.0, 'dog'), (1.0, 'beach'), (-1.0, 'grass')]
>>> parse_query("2:dog + 0.5:sky")
[(2.0, 'dog'), (0.5, 'sky')]
>>> parse_query("a red t-shirt")
[(1.0, 'a red t-shirt')]
"""
from __future__ import annotations

import re
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from semsearch.errors import InputError, InputTypeError, UnknownQueryError
from semsearch.common.vectors import EPS, l2_normalize_rows

#: An operator: "+" or "-" with white space on both sides, or at the start of the query.
_OPERATOR = re.compile(r"(?:^|(?<=\s))([+-])(?=\s|$)")
_WEIGHT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*:(.*)$", re.DOTALL)


#: The largest weight a part may have: far beyond any useful one, and small enough that the
#: weighted sum of unit vectors stays finite.
MAX_WEIGHT = 1e6


def parse_query(query: str) -> List[Tuple[float, str]]:
    """Split a query into ``(signed weight, text)`` parts, in order.

    Raises
    ------
    InputTypeError
        ``query`` is not a str.
    InputError
        An empty part (``"dog + "``, ``"dog + + sky"``), or a weight of 0.
    """
    if not isinstance(query, str):
        raise InputTypeError(f"a query must be a str, got {query!r} ({type(query).__name__})")
    if not query.strip():
        return [(1.0, query)]  # no words at all: the text encoder's check says so
    pieces = _OPERATOR.split(query.strip())
    # re.split with one group gives [text, sign, text, sign, text, ...]
    signs = ["+"] + pieces[1::2]
    texts = pieces[0::2]
    if texts and not texts[0].strip() and len(texts) > 1:  # a leading sign: "- grass"
        texts, signs = texts[1:], signs[1:]
    parts = []
    for sign, text in zip(signs, texts):
        weight = 1.0
        match = _WEIGHT.match(text)
        if match:
            weight, text = float(match.group(1)), match.group(2)
            if not 0 < weight <= MAX_WEIGHT:  # 1e309 reads as inf; past this, sums overflow or lose the other parts
                raise InputError(f"query {query!r}: a part's weight must be > 0 and at most {MAX_WEIGHT:g}, "
                                 f"got {match.group(1)!r}")
        text = text.strip()
        if not text:
            raise InputError(f"query {query!r} has an empty part (an operator needs a text on each side)")
        parts.append((-weight if sign == "-" else weight, text))
    return parts


def is_compound(query: str) -> bool:
    """Whether the query has more than one part, or a weight (else it is plain text)."""
    parts = parse_query(query)
    return len(parts) > 1 or parts[0] != (1.0, query.strip())


_GLUED_OPERATOR = re.compile(r"\w[+-]\w|\w[+-]\s|\s[+-]\w|^[+-]\w")


def operator_hint(text: str) -> str:
    """A hint for a text whose ``+`` or ``-`` touches a word (``"dog+beach"``), else ``""``.

    >>> operator_hint("dog+beach")
    " (to combine queries, put spaces around + and -: 'dog + beach')"
    """
    if not _GLUED_OPERATOR.search(text):
        return ""
    spaced = re.sub(r"\s*([+-])\s*", r" \1 ", text).strip()
    return f" (to combine queries, put spaces around + and -: {spaced!r})"


def combine(parts: Sequence[Tuple[float, str]], text_encoder: Callable, query: str = "") -> np.ndarray:
    """The unit vector ``normalise(sum_i w_i * unit(text_encoder(t_i)))``, shape (dim,).

    ``text_encoder`` maps a list of texts to ``(N, dim)``; it must have ``check_known``
    (as ``TextEmbedder`` and ``MiniLMEncoder`` do).
    """
    for _, text in parts:
        try:
            text_encoder.check_known(text)
        except UnknownQueryError as e:
            where = f" of {query!r}" if query and len(parts) > 1 else ""
            raise UnknownQueryError(f"query part {text!r}{where} has no known word: {e}{operator_hint(text)}") from None
    weights = np.array([w for w, _ in parts], dtype=np.float64)
    units = l2_normalize_rows(np.asarray(text_encoder([t for _, t in parts]), dtype=np.float64))
    total = weights @ units
    if np.linalg.norm(total) < EPS:
        raise InputError(f"the parts of {query!r} cancel out: their weighted sum is the zero vector")
    return (total / np.linalg.norm(total)).astype(np.float32)


def embed_query(query: str, text_encoder: Callable) -> np.ndarray:
    """One query (plain or compound) as a unit vector, shape (dim,)."""
    return combine(parse_query(query), text_encoder, query)


def embed_queries(queries: Sequence[str], text_encoder: Callable) -> np.ndarray:
    """Many queries, shape (Q, dim); plain ones are embedded in one call of ``text_encoder``."""
    queries = list(queries)
    parsed = [parse_query(q) for q in queries]
    plain = [i for i, p in enumerate(parsed) if len(p) == 1 and p[0][0] == 1.0]
    rows = {}
    if plain:
        vectors = np.asarray(text_encoder([parsed[i][0][1] for i in plain]), dtype=np.float32)  # unit rows already
        for i, vector in zip(plain, vectors):
            if not vector.any():  # no known word: check_known says why (embedding once, not twice)
                try:
                    text_encoder.check_known(parsed[i][0][1])
                except UnknownQueryError as e:
                    raise UnknownQueryError(f"{e}{operator_hint(parsed[i][0][1])}") from None
        if len(plain) == len(queries):  # no compound query: the rows are already in order
            return vectors
        rows.update(zip(plain, vectors))
    for i, parts in enumerate(parsed):
        if i not in rows:
            rows[i] = combine(parts, text_encoder, queries[i])
    return np.stack([rows[i] for i in range(len(queries))]).astype(np.float32)


def stop_words_warning(query: str) -> Optional[str]:
    """A warning for a query whose words are all stop words (``"a the of"``), else None.

    Such words sit near every image, so the ranking says little; the query is still
    answered (the caller shows the warning beside the results).

    >>> stop_words_warning("a dog on the beach") is None
    True
    >>> stop_words_warning("a the of")
    "the query 'a the of' has only stop words (a, the, of): they sit near every image, so its ranking says little"
    """
    from semsearch.routes.tags import STOP_WORDS
    from semsearch.text import tokenize

    words = [word for _, text in parse_query(query) for word in tokenize(text)]
    if not words or any(word not in STOP_WORDS for word in words):
        return None
    return (f"the query {query!r} has only stop words ({', '.join(dict.fromkeys(words))}): "
            "they sit near every image, so its ranking says little")
