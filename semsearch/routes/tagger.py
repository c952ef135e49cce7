"""Tags that name what is in a picture: the backbone's ImageNet labels, merged with GloVe words.

An image has two descriptions here: its backbone descriptor ``x`` (D,), which the backbone's own
ImageNet classifier turns into class probabilities ``p = softmax(W x + b)``
(:mod:`semsearch.routes.classifier`), and its 50-d embedding ``e`` by the trained model, which
lies near the GloVe words of its captions (:mod:`semsearch.routes.tags`). :meth:`Tagger.tags`
merges them (chosen by measurement, ``benchmarks/tags.py``, ``benchmarks/REPORT.md``):

1. **labels**: the most probable ImageNet classes whose probability is at least
   ``label_threshold`` (0.5), at most ``max_labels`` (2), e.g. ``Tag("pizza", 0.93, "imagenet")``;
2. **words**: the caption-vocabulary words nearest to

       q = normalise(mix * normalise(c) + (1 - mix) * e),    c = sum over the top 10 classes of p_c se_text(label_c)

   (``mix`` 0.5): the classifier's guess moved into GloVe space (ConSE, Norouzi et al. 2014)
   averaged with the model's embedding, e.g. ``Tag("pizza", 0.86, "words")``, leaving out the
   words of the labels already given; they fill the list up to ``k``.

On the embedded sample, the share of images whose top-5 tags hold a word of their own captions
goes from 0.49 (GloVe words nearest ``e``, the old tags) and 0.62 (the top-5 ImageNet labels) to
0.84 with this merge; on the data folder's 239 images, embedded by models that never saw them,
from 0.18 and 0.59 to 0.64. Without a classifier (a backbone whose weights are not here, or no
descriptors) the tags are the words nearest ``e`` alone; without word vectors (a MiniLM text
encoder) the top ImageNet labels alone.

Example
-------
>>> tagger = Tagger(text_encoder, classifier_for("efficientnet-lite0"))          # doctest: +SKIP
>>> tagger.tags(database.vector_of(139), descriptors.vectors_of([139]), k=5)[0]  # doctest: +SKIP
[Tag(text='dining table', score=0.62, source='imagenet'), Tag(text='kitchen', ...), ...]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from semsearch.common.checks import check_k
from semsearch.common.vectors import l2_normalize_rows
from semsearch.errors import InputError, MissingExtraError
from semsearch.routes.tags import Vocab, word_table
from semsearch.text import TextEmbedder, tokenize

#: How many tags an image shows (the web panel, ``semsearch tags``) and carries (search by tag).
DEFAULT_K = 10


class Tag(NamedTuple):
    """One tag: its text, its score, and where it came from.

    ``source`` is ``"imagenet"`` (``score`` is the class probability) or ``"words"`` (``score``
    is the cosine of a GloVe word to the image).
    """

    text: str
    score: float
    source: str

    def __str__(self) -> str:
        return f"{self.text} {self.score:.2f}" if self.source == "imagenet" else self.text


class NoTagSourceError(MissingExtraError):
    """Neither an ImageNet classifier nor GloVe word vectors: nothing to make tags from."""


@dataclass(frozen=True)
class TagSettings:
    """How labels and words are merged (defaults chosen in ``benchmarks/tags.py``).

    Attributes
    ----------
    label_threshold : float
        An ImageNet label becomes a tag if its probability is at least this.
    max_labels : int
        At most this many label tags.
    mix : float in [0, 1]
        Weight of the classifier's direction ``c`` against the model's embedding ``e``.
    top_classes : int
        Classes summed into ``c``.
    vocabulary : "captions", "glove" or int
        Which words may be tags (see :func:`semsearch.routes.tags.word_table`).
    """

    label_threshold: float = 0.5
    max_labels: int = 2
    mix: float = 0.5
    top_classes: int = 10
    vocabulary: Vocab = "captions"

    def __post_init__(self):
        if not (0 <= self.mix <= 1 and 0 <= self.label_threshold <= 1):
            raise InputError(f"mix and label_threshold must be in [0, 1], got {self.mix}, {self.label_threshold}")
        check_k(self.top_classes, "top_classes")
        if self.max_labels < 0:
            raise InputError(f"max_labels must be >= 0, got {self.max_labels}")


DEFAULT_SETTINGS = TagSettings()


class Tagger:
    """Tags of images from their embeddings and (where there are any) their backbone descriptors.

    Parameters
    ----------
    text_encoder : TextEmbedder or None
        Its GloVe vectors give the word tags and the label directions; None (or a MiniLM
        encoder): ImageNet labels only.
    classifier : ImageNetClassifier or None
        The backbone's ImageNet head; None: word tags only.
    settings : TagSettings

    Raises
    ------
    NoTagSourceError
        Neither word vectors nor a classifier.
    """

    def __init__(self, text_encoder=None, classifier=None, settings: TagSettings = DEFAULT_SETTINGS):
        self.words = text_encoder if isinstance(text_encoder, TextEmbedder) else None
        self.classifier = classifier
        self.settings = settings
        if self.words is None and classifier is None:
            raise NoTagSourceError(
                f"{type(text_encoder).__name__} has no GloVe word vectors and there is no ImageNet classifier: no tags"
            )
        self._table = word_table(self.words, settings.vocabulary) if self.words is not None else None
        self._label_vectors = None
        if self.words is not None and classifier is not None:
            self._label_vectors = np.asarray(self.words(list(classifier.labels)), dtype=np.float32)

    @property
    def source(self) -> str:
        """``"imagenet+words"``, ``"imagenet"`` or ``"words"``: what the tags are made of."""
        return "+".join(name for name, have in (("imagenet", self.classifier), ("words", self.words)) if have is not None)

    def tags(self, image_vectors, descriptors=None, k: int = DEFAULT_K) -> List[List[Tag]]:
        """The k tags of each image, labels first, then words, each group best first.

        Parameters
        ----------
        image_vectors : array (N, dim) or (dim,), or None
            The images' embeddings by the trained model (:meth:`ImageDatabase.vector_of`).
            May be None when there is no word table (ImageNet labels only).
        descriptors : array (N, D) or (D,), optional
            Their backbone descriptors; None: word tags only.
        k : int

        Returns
        -------
        list of N lists of :class:`Tag`
        """
        k = check_k(k)
        use_labels = self.classifier is not None and descriptors is not None
        if not use_labels and self._table is None:
            raise NoTagSourceError("ImageNet labels need the images' descriptors, and there are no word vectors")
        e = None if image_vectors is None else np.atleast_2d(np.asarray(image_vectors, dtype=np.float32))
        if e is None and self._table is not None:
            raise InputError("word tags need the images' embeddings (image_vectors)")
        if not use_labels:
            return self._words(e, k, [set() for _ in range(len(e))], [0] * len(e))
        p = self.classifier.probabilities(descriptors)
        if e is not None and len(e) != len(p):
            raise InputError(f"{len(e)} image vectors but {len(p)} descriptors")
        if self._table is None:  # labels alone
            top, probs = self.classifier.top_of(p, k)
            return [[Tag(self.classifier.labels[c], round(float(q), 4), "imagenet") for c, q in zip(row, pr)]
                    for row, pr in zip(top, probs)]
        labels = self._confident_labels(p, k)
        taken = [{w for tag in row for w in tokenize(tag.text)} for row in labels]
        words = self._words(self._merged_queries(p, e), k, taken, [len(row) for row in labels])
        return [row + more for row, more in zip(labels, words)]

    def _confident_labels(self, p: np.ndarray, k: int) -> List[List[Tag]]:
        s = self.settings
        n = min(s.max_labels, k, p.shape[1])
        if n == 0:
            return [[] for _ in p]
        top = np.argsort(-p, axis=1, kind="stable")[:, :n]
        return [[Tag(self.classifier.labels[c], round(float(row[c]), 4), "imagenet") for c in best if row[c] >= s.label_threshold]
                for row, best in zip(p, top)]

    def _merged_queries(self, p: np.ndarray, e: np.ndarray) -> np.ndarray:
        """``mix * normalise(c) + (1 - mix) * normalise(e)``, c the top classes' label vectors weighted by p."""
        t = min(self.settings.top_classes, p.shape[1])
        top = np.argpartition(-p, t - 1, axis=1)[:, :t]
        c = np.einsum("nt,ntd->nd", np.take_along_axis(p, top, axis=1), self._label_vectors[top])
        c_unit = l2_normalize_rows(c)  # a zero row (no top label has a known word) stays zero: e alone
        return self.settings.mix * c_unit + (1 - self.settings.mix) * l2_normalize_rows(e)

    def _words(self, queries: np.ndarray, k: int, taken: Sequence[set], n_labels: Sequence[int]) -> List[List[Tag]]:
        if not np.isfinite(queries).all() or (np.abs(queries).sum(axis=1) == 0).any():
            raise InputError("an image vector is all zeros or not finite: it has no nearest words")
        queries = l2_normalize_rows(queries)
        room = k + max((len(t) for t in taken), default=0)
        words, scores = self._table.nearest(queries, min(room, len(self._table)))
        out = []
        for row_words, row_scores, skip, n in zip(words, scores, taken, n_labels):
            kept = [Tag(w, round(float(s), 4), "words") for w, s in zip(row_words, row_scores) if w not in skip]
            out.append(kept[: k - n])
        return out


def tag_matches(tag: str, wanted: str) -> bool:
    """Whether every word of ``wanted`` is a word of ``tag``, ignoring case and a plural "s".

    >>> tag_matches("golden retriever", "retrievers"), tag_matches("hotdog", "dog")
    (True, False)
    """
    have = {singular(w) for w in tokenize(tag)}
    need = {singular(w) for w in tokenize(wanted)}
    return bool(need) and need <= have


def singular(word: str) -> str:
    """``word`` without one trailing "s" (``"dogs"`` -> ``"dog"``; crude, and applied to both sides alike).

    >>> singular("dogs"), singular("bus"), singular("s")
    ('dog', 'bu', 's')
    """
    return word[:-1] if len(word) > 1 and word.endswith("s") else word


def check_tag_query(text: Optional[str]) -> Optional[str]:
    """``text`` if it has a word to match (None passes through); InputError otherwise."""
    if text is not None and not tokenize(text):
        raise InputError(f"the tag {text!r} has no word to match")
    return text
