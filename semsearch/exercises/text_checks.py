"""Check a team's IDF and ``se_text`` against :mod:`semsearch.text`.

- ``inverse_document_frequency(texts) -> {word: log10(N / n_word)}`` over N texts, n_word of
  which contain the word (lowercased, punctuation removed: :func:`semsearch.text.tokenize`).
- ``make_se_text(captions, glove) -> se_text``: the IDF is computed *once*, over the caption
  corpus; ``se_text(text)`` is then the unit-length sum over the text's words of
  ``idf(word) * glove[word]``, shape (E,), and ``se_text(list of N texts)`` is (N, E). A word
  without both an IDF and a GloVe vector adds nothing; a text with no such word is the zero
  vector. The library's ``TextEmbedder.fit`` is a ``make_se_text``.

The checks use a small word-vector table of dimension 5 (any GloVe dimension works the same).

Example
-------
>>> from semsearch.text import TextEmbedder, inverse_document_frequency
>>> check_idf(inverse_document_frequency, verbose=False).passed
True
>>> check_se_text(TextEmbedder.fit, verbose=False).passed
True
"""
from __future__ import annotations

import math
from typing import Callable, List

import numpy as np

from semsearch.exercises.checking import Checker, as_float_array, close, run_check
from semsearch.exercises.report import CheckReport
from semsearch.text import TextEmbedder, inverse_document_frequency, tokenize

#: The caption corpus of the checks.
CORPUS = [
    "a dog on the beach",
    "a cat on a sofa",
    "a dog and a cat",
    "two birds in the sky",
    "a man riding a wave on a surfboard",
    "a brown dog catching a frisbee",
    "the cat sleeps on the bed",
    "birds flying over the beach",
]
#: Words of the corpus that the checks' word-vector table does not have.
NOT_IN_GLOVE = ("surfboard",)
UNKNOWN = "blorptastic"  #: in neither


def small_glove(dim: int = 5, seed: int = 0):
    """A gensim ``KeyedVectors`` with a random vector for each corpus word (bar :data:`NOT_IN_GLOVE`) and a few more."""
    from gensim.models import KeyedVectors

    words = sorted({w for text in CORPUS for w in tokenize(text)} - set(NOT_IN_GLOVE)) + ["zebra", "giraffe"]
    rng = np.random.default_rng(seed)
    glove = KeyedVectors(vector_size=dim, count=0, dtype=np.float32)
    glove.add_vectors(words, np.round(rng.normal(size=(len(words), dim)), 2).astype(np.float32))
    return glove


# ----------------------------------------------------------------------------- IDF


def _idf_cases():
    yield "4 texts", ["a cat", "a dog", "a dog and a cat", "birds"]
    yield "a word twice in one text", ["a dog and a dog", "a cat"]
    yield "capitals and punctuation", ["A dog!", "a Dog, a cat."]
    yield "the checks' caption corpus", CORPUS


def _diagnose_idf(texts, word, got) -> str:
    n = len(texts)
    docs = sum(word in tokenize(t) for t in texts)
    count = sum(tokenize(t).count(word) for t in texts)
    if got is None:
        return f"every word of the texts needs an IDF: {word!r} has none (lowercase, strip punctuation: semsearch.tokenize)"
    if np.isclose(got, math.log(n / docs)):
        return "use log base 10 (np.log10), as the course does, not the natural log"
    if count != docs and np.isclose(got, math.log10(n / count)):
        return f"n_word counts the texts that contain {word!r} ({docs}), not how often it occurs ({count})"
    if np.isclose(got, math.log10(docs / n)):
        return "IDF = log10(N / n_word): N (all texts) over n_word, not the other way round"
    return f"idf({word!r}) = log10(N / n_word) with N = {n} texts, n_word = {docs} of them contain it"


def _idf_battery(idf: Callable, c: Checker) -> None:
    for name, texts in _idf_cases():
        c.case(f"{name}: {texts}" if len(texts) < 6 else f"{name} ({len(texts)} captions)")
        out = c.call(idf, list(texts))
        got = c.read(dict, out, "a dict {word: idf}", "return a dict mapping each word to its IDF")
        expected = inverse_document_frequency(texts)
        for word in sorted(expected, key=lambda w: (-expected[w], w)):
            value = got.get(word)
            ok = value is not None and c.read(float, value, "a number", f"the IDF of {word!r} must be a number") is not None
            ok = ok and np.isclose(float(value), expected[word], rtol=1e-6, atol=1e-9)
            c.expect(ok, f"idf[{word!r}] = {expected[word]:.6g}", f"idf[{word!r}] = {value!r}", lambda: _diagnose_idf(texts, word, value))
        extra = sorted(set(got) - set(expected))
        c.expect(not extra, "no other words", f"also {extra[:5]}", "the words are the tokens of the texts: "
                 "lowercased, punctuation removed (semsearch.tokenize)")
    c.passed("4 corpora: log10(N / n_word), a word counted once per text, lowercased and without punctuation")


def check_idf(inverse_document_frequency: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``inverse_document_frequency(texts) -> {word: idf}``."""
    return run_check("idf", lambda c: _idf_battery(inverse_document_frequency, c), verbose)


# ----------------------------------------------------------------------------- se_text


def _queries(rng: np.random.Generator) -> List:
    single = ["dog", "a dog", "A Dog!", "the cat on the beach", f"dog {UNKNOWN}", "a surfboard dog", UNKNOWN]
    lists = [["a dog", "a cat on a sofa", "two birds"], list(CORPUS)]
    vocabulary = sorted({w for text in CORPUS for w in tokenize(text)}) + [UNKNOWN]
    generated = [" ".join(rng.choice(vocabulary, size=n)) for n in (1, 2, 3, 5, 8, 13)]
    return single + lists + generated + [generated]


def _diagnose_text(query, got: np.ndarray, expected: np.ndarray, glove) -> str:
    texts = [query] if isinstance(query, str) else query
    words = [w for t in texts for w in tokenize(t)]
    if not np.any(expected) and (np.isnan(got).any() or np.any(got)):
        return (f"a text with no known word gives the zero vector ({UNKNOWN!r} is neither in GloVe nor in the captions): "
                "skip unknown words, and don't divide by a zero norm (that gives NaN)")
    if np.isnan(got).any():
        return "NaN: a zero vector was divided by its zero norm; leave zero vectors as they are"
    if not np.any(got) and np.any(expected):
        return ("all zeros: is the IDF computed over the query instead of once over the captions? "
                "(over one text every word has IDF log10(1/1) = 0)")
    norms = np.linalg.norm(np.atleast_2d(got), axis=1)
    if not np.allclose(norms[np.linalg.norm(np.atleast_2d(expected), axis=1) > 0], 1, atol=1e-4):
        return "normalise the weighted sum to unit length: cosine = dot product only between unit vectors"
    if UNKNOWN in words or "surfboard" in words:
        return ("a word without a GloVe vector (or without an IDF) adds nothing: skip it, don't give it a vector "
                "of its own")
    if isinstance(query, list):
        per_query_idf = TextEmbedder.fit(texts, glove)(texts)
        if close(got, per_query_idf, atol=1e-4):
            return "the IDF was recomputed over the queries: compute it once, over the caption corpus, in make_se_text"
    if isinstance(query, str) and (query != query.lower() or any(ch in query for ch in "!,.")):
        return "lowercase the text and remove punctuation before looking words up (semsearch.tokenize does both)"
    return "se_text = normalise(sum over the words of idf(word) * glove[word]), with the IDF of the caption corpus"


def _se_text_battery(make_se_text: Callable, c: Checker) -> None:
    glove = small_glove()
    reference = TextEmbedder.fit(CORPUS, glove)
    c.case(f"make_se_text({len(CORPUS)} captions, glove of dimension {glove.vector_size})")
    se_text = c.call(make_se_text, list(CORPUS), glove)
    c.expect(callable(se_text), "a function se_text(text)", type(se_text).__name__, "return the se_text function")
    rng = np.random.default_rng(0)
    for query in _queries(rng):
        shown = f"se_text({query!r})" if isinstance(query, str) or len(query) < 5 else f"se_text(a list of {len(query)} texts)"
        c.case(shown, hint_on_error="unknown words (not in GloVe or without an IDF) must be skipped, not looked up"
               if isinstance(query, str) and (UNKNOWN in query or "surfboard" in query) else None)
        out = c.call(se_text, query if isinstance(query, str) else list(query))
        expected = reference(query).astype(np.float64)
        got = c.read(as_float_array, out, f"an array of shape {expected.shape}", "return a NumPy array")
        c.expect(got.shape == expected.shape, f"shape {expected.shape}", f"shape {got.shape}",
                 f"one text -> shape (E,) = ({glove.vector_size},); a list of N texts -> (N, E)")
        c.expect(close(got, expected, atol=1e-5), expected, got, lambda: _diagnose_text(query, got, expected, glove))
    c.passed("IDF from the captions, computed once; unit vectors; lowercase and punctuation; unknown words skipped; "
             "a text of unknown words -> zeros; lists -> (N, E); 8 fixed and 7 generated queries")


def check_se_text(make_se_text: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``make_se_text(captions, glove) -> se_text``; print and return the report."""
    return run_check("se_text", lambda c: _se_text_battery(make_se_text, c), verbose)

