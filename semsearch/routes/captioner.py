"""A caption generator in MyGrad: image descriptor -> words, and retrieval by generated captions.

The "Show and Tell" shape (Vinyals et al. 2015) with a GRU: the pooled descriptor holds no
spatial grid to attend over, so the image enters once, as the decoder's initial state.

    s_0 = tanh(x W_img + b_img)                    x: the descriptor, centred and scaled (D,)
    s_t = GRU(E[w_{t-1}], s_{t-1})                 mygrad.nnet.layers.gru, hidden size H
    p(w_t | w_<t, image) = softmax(s_t W_out + b_out)

The word embeddings ``E`` (V, 50) start from GloVe-50 for the caption vocabulary. Training
is teacher forcing: the true previous word is the input, and the loss is
``mygrad.nnet.losses.softmax_crossentropy`` over every real (non-padding) next word,
minimised with MyNN's Adam. Decoding is greedy or by beam search, and stops at ``<end>`` or
after ``max_length`` words.

MyGrad's ``gru`` treats its initial state as a constant; :func:`state_gru` is the same
operation with ``s_0`` as an input that receives its gradient (one more step of the GRU's
own backward formula), so the image map ``W_img`` learns.

**Retrieval route** (:func:`generated_caption_scores`): generate a caption ``T_k`` for every
database image, then rank images for a query ``Q`` by ``sim(Q, T_k)`` with the caption
baselines' vectors (:func:`semsearch.routes.baselines.caption_vectors`: one-hot, TF-IDF or
``se_text``). **Quality** (:func:`caption_quality`): BLEU-4 and CIDEr of generated
captions against the human ones (``pycocoevalcap``; no Java needed for these two).

Needs ``pip install 'semsearch[captioner]'`` (numba, which MyGrad's GRU is compiled with;
pycocoevalcap for the quality scores).

Example
-------
>>> model, losses = train_captioner(data, train_ids, epochs=30, progress=True)    # doctest: +SKIP
>>> model.generate(data.descriptors.vectors_of([139]), beam=3)                     # doctest: +SKIP
['a kitchen with a table and a table']
>>> print(generated_caption_scores(model, data, val_ids, method="tfidf"))          # doctest: +SKIP
"""
from __future__ import annotations

import os
import weakref
from collections import Counter
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mygrad as mg
import numpy as np

from semsearch.common.files import load_npz, save_npz
from semsearch.routes.baselines import METHODS, caption_vectors
from semsearch.common.checks import check_image_ids, check_k, check_texts
from semsearch.dataset import CaptionedImages
from semsearch.errors import InputError, MissingExtraError, TrainingError
from semsearch.evaluation import RetrievalScores, retrieval_scores, target_ranks
from semsearch.text import inverse_document_frequency, tokenize

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-captioner-1"
SPECIALS = ("<pad>", "<start>", "<end>", "<unk>")
PAD, START, END, UNK = range(4)
PARAMETER_NAMES = ("W_img", "b_img", "E", "Uz", "Wz", "bz", "Ur", "Wr", "br", "Uh", "Wh", "bh", "W_out", "b_out")


# --------------------------------------------------------------------------- vocabulary
class CaptionVocabulary:
    """Words of the training captions, with ``<pad>`` 0, ``<start>`` 1, ``<end>`` 2, ``<unk>`` 3.

    >>> vocab = CaptionVocabulary.fit(["A dog runs.", "a dog sits"])
    >>> vocab.words
    ['<pad>', '<start>', '<end>', '<unk>', 'a', 'dog', 'runs', 'sits']
    >>> vocab.encode(["a cat runs"], max_length=4)
    array([[1, 4, 3, 6, 2]])
    >>> vocab.decode([4, 5, 2, 6])
    'a dog'
    """

    def __init__(self, words: Sequence[str]):
        words = check_texts(words, "words")
        if list(words[: len(SPECIALS)]) != list(SPECIALS) or len(set(words)) != len(words):
            raise InputError(f"a caption vocabulary starts with {SPECIALS} and has no word twice")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def fit(cls, captions: Sequence[str], min_count: int = 1) -> "CaptionVocabulary":
        """Every token seen at least ``min_count`` times in ``captions``, sorted."""
        counts = Counter(t for c in check_texts(captions, "captions") for t in tokenize(c))
        return cls(list(SPECIALS) + sorted(w for w, n in counts.items() if n >= check_k(min_count, "min_count")))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, captions: Sequence[str], max_length: int = 16) -> np.ndarray:
        """``<start> w_1 .. w_n <end> <pad>..``, n <= max_length, shape (N, longest + 2) int."""
        max_length = check_k(max_length, "max_length")
        rows = [[self.index.get(t, UNK) for t in tokenize(c)][:max_length] for c in check_texts(captions, "captions")]
        out = np.full((len(rows), max((len(r) for r in rows), default=0) + 2), PAD, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row) + 2] = [START, *row, END]
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Words up to the first ``<end>``, without ``<start>``, ``<pad>`` or ``<unk>``."""
        words = []
        for i in ids:
            if int(i) == END:
                break
            if int(i) > UNK:
                words.append(self.words[int(i)])
        return " ".join(words)


# --------------------------------------------------------------------------- the GRU op
def _gru_module():
    import importlib

    try:
        module = importlib.import_module("mygrad.nnet.layers.gru")  # the module, not the function
    except ImportError:
        raise MissingExtraError("MyGrad's GRU needs numba: pip install 'semsearch[captioner]'") from None
    return module


@lru_cache(maxsize=None)
def _state_gru_operation():
    """MyGrad's ``GRUnit`` with the initial state as a differentiable input (built lazily: numba)."""
    module = _gru_module()

    class StateGRU(module.GRUnit):
        def __call__(self, X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0):
            out = super().__call__(X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0=s0.data)
            self.s0 = s0
            self.variables = self.variables + (s0,)  # so the graph reaches s0's own creator
            return out

        def backward(self, grad, **kwargs):
            z, r, h = self._z[0], self._r[0], self._h[0]  # the gates of step 1, (N, H)
            direct = np.array(grad[0], dtype=self.type)  # out[0] is s0 itself
            super().backward(grad, **kwargs)  # every other gradient; dL/ds_t (t >= 1) kept
            if self.s0.constant:
                return
            g = self._hidden_seq()._grad[0]  # total dL/ds_1
            s0, Wz, Wr, Wh = self.s0.data, self.Wz.data, self.Wr.data, self.Wh.data
            # s1 = (1 - z) h + z s0, z = sig(. + s0 Wz), r = sig(. + s0 Wr), h = tanh(. + (r s0) Wh)
            dh = g * (1 - z) * (1 - h**2)
            q = dh @ Wh.T  # dL / d(r * s0)
            ds0 = direct + g * z + (g * (s0 - h) * z * (1 - z)) @ Wz.T + q * r + (q * s0 * r * (1 - r)) @ Wr.T
            module._backprop(self.s0, ds0.astype(self.s0.dtype, copy=False))

    return StateGRU


def state_gru(X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0) -> mg.Tensor:
    """``mygrad.nnet.layers.gru`` whose initial state ``s0`` (N, H) may be a non-constant tensor.

    Returns the hidden states, shape (T + 1, N, H); ``[0]`` is ``s0``. Gradients reach
    ``s0`` (and whatever computed it) as well as the inputs and weights.
    """
    s = mg.Tensor._op(_state_gru_operation(), X, Uz, Wz, bz, Ur, Wr, br, Uh, Wh, bh, s0)
    try:
        s.creator._hidden_seq = weakref.ref(s)
    except AttributeError:  # no-autodiff mode records no creator
        pass
    return s


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


# --------------------------------------------------------------------------- the model
class CaptionGenerator:
    """A GRU decoder from image descriptors (N, D) to captions.

    Parameters
    ----------
    vocabulary : CaptionVocabulary, V words
    descriptor_dim : int
        D.
    hidden : int
        H, the GRU's state size.
    embeddings : array (V, E), optional
        Initial word vectors (:func:`glove_embeddings`); default random, E = 50.
    descriptor_mean : array (D,), descriptor_scale : float
        Descriptors are fed as ``(x - mean) / scale`` (fitted on the training images by
        :func:`train_captioner`).
    seed : int
        Seeds the initial weights.
    dtype : numpy float type
        Of the weights. numba compiles MyGrad's GRU once per process and dtype (about
        10-25 s on 2 busy cores), so use one dtype per process.

    Attributes
    ----------
    params : dict of mygrad.Tensor
        ``W_img`` (D, H), ``b_img`` (H,), ``E`` (V, E), the GRU's ``U*`` (E, H), ``W*`` (H, H),
        ``b*`` (H,), ``W_out`` (H, V), ``b_out`` (V,).
    """

    def __init__(
        self,
        vocabulary: CaptionVocabulary,
        descriptor_dim: int,
        hidden: int = 256,
        embeddings: Optional[np.ndarray] = None,
        *,
        descriptor_mean: Optional[np.ndarray] = None,
        descriptor_scale: float = 1.0,
        seed: int = 0,
        dtype=np.float32,
    ):
        D, H, V = check_k(descriptor_dim, "descriptor_dim"), check_k(hidden, "hidden"), len(vocabulary)
        rng = np.random.default_rng(seed)
        if embeddings is None:
            embeddings = rng.normal(0, 0.3, size=(V, 50))
        embeddings = np.asarray(embeddings, dtype=dtype)
        if embeddings.ndim != 2 or embeddings.shape[0] != V:
            raise InputError(f"embeddings must have shape ({V}, E) for {V} words, got {embeddings.shape}")
        E = embeddings.shape[1]

        def glorot(n_in, n_out):
            return rng.normal(0, np.sqrt(2 / (n_in + n_out)), size=(n_in, n_out))

        shapes = dict(W_img=None, b_img=(H,), E=None, Uz=(E, H), Wz=(H, H), bz=(H,), Ur=(E, H), Wr=(H, H), br=(H,),
                      Uh=(E, H), Wh=(H, H), bh=(H,), W_out=(H, V), b_out=(V,))
        values = {"W_img": glorot(D, H), "E": embeddings}
        for name, shape in shapes.items():
            if name not in values:
                values[name] = glorot(*shape) if len(shape) == 2 else np.zeros(shape)
        self.vocabulary = vocabulary
        self.params = {name: mg.Tensor(np.asarray(values[name], dtype=dtype)) for name in PARAMETER_NAMES}
        self.descriptor_mean = np.zeros(D, np.float32) if descriptor_mean is None else np.asarray(descriptor_mean, np.float32)
        self.descriptor_scale = float(descriptor_scale)
        if self.descriptor_mean.shape != (D,) or not self.descriptor_scale > 0:
            raise InputError(f"descriptor_mean must have shape ({D},) and descriptor_scale be > 0")

    @property
    def descriptor_dim(self) -> int:
        return self.params["W_img"].shape[0]

    @property
    def hidden(self) -> int:
        return self.params["W_img"].shape[1]

    @property
    def parameters(self) -> Tuple[mg.Tensor, ...]:
        """All weights, for a MyNN optimizer."""
        return tuple(self.params[name] for name in PARAMETER_NAMES)

    def _inputs(self, descriptors) -> np.ndarray:
        x = np.asarray(descriptors, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.descriptor_dim:
            raise InputError(f"descriptors must have shape (N, {self.descriptor_dim}), got {np.shape(descriptors)}")
        if not np.isfinite(x).all():
            raise InputError("descriptors contain NaN or inf")
        return ((x - self.descriptor_mean) / self.descriptor_scale).astype(self.params["W_img"].dtype, copy=False)

    # ----------------------------------------------------------------- training side
    def logits(self, descriptors, tokens: np.ndarray) -> mg.Tensor:
        """Next-word scores with teacher forcing: tokens (N, T) -> logits (T, N, V).

        ``logits[t, n]`` scores the word after ``tokens[n, :t + 1]``.
        """
        p = self.params
        x = self._inputs(descriptors)
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 2 or tokens.shape[0] != len(x) or tokens.shape[1] < 1:
            raise InputError(f"tokens must have shape ({len(x)}, T), got {tokens.shape}")
        s0 = mg.tanh(mg.matmul(x, p["W_img"]) + p["b_img"])
        X = p["E"][tokens.T]  # (T, N, E)
        S = state_gru(X, p["Uz"], p["Wz"], p["bz"], p["Ur"], p["Wr"], p["br"], p["Uh"], p["Wh"], p["bh"], s0)
        return mg.matmul(S[1:], p["W_out"]) + p["b_out"]

    def loss(self, descriptors, encoded: np.ndarray) -> mg.Tensor:
        """Mean softmax cross-entropy of every real next word of ``encoded`` captions (N, L)."""
        from mygrad.nnet.losses import softmax_crossentropy

        encoded = np.asarray(encoded, dtype=np.int64)
        logits = self.logits(descriptors, encoded[:, :-1])  # (T, N, V)
        targets = encoded[:, 1:].T.reshape(-1)  # (T * N,), time-major like the logits
        real = np.flatnonzero(targets != PAD)
        return softmax_crossentropy(logits.reshape(-1, len(self.vocabulary))[real], targets[real])

    # ----------------------------------------------------------------- decoding (NumPy)
    def _weights(self) -> Dict[str, np.ndarray]:
        return {name: t.data for name, t in self.params.items()}

    def _initial_state(self, descriptors) -> np.ndarray:
        w = self._weights()
        return np.tanh(self._inputs(descriptors) @ w["W_img"] + w["b_img"])

    def _step(self, w, state: np.ndarray, words: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """One GRU step (MyGrad's equations) and the next word's log-probabilities, (B, V)."""
        x = w["E"][words]
        z = _sigmoid(x @ w["Uz"] + state @ w["Wz"] + w["bz"])
        r = _sigmoid(x @ w["Ur"] + state @ w["Wr"] + w["br"])
        h = np.tanh(x @ w["Uh"] + (r * state) @ w["Wh"] + w["bh"])
        state = (1 - z) * h + z * state
        logp = _log_softmax(state @ w["W_out"] + w["b_out"])
        logp[:, [PAD, START, UNK]] = -np.inf  # never generated
        return state, logp

    def generate(self, descriptors, *, beam: int = 1, max_length: int = 16) -> List[str]:
        """One caption per image, (N, D) -> N strings: greedy (``beam=1``) or beam search.

        A caption ends at ``<end>``; after ``max_length`` words ``<end>`` is the only choice
        left. Beam search keeps the
        ``beam`` best partial captions by total log-probability and returns the best
        finished one.
        """
        return [self.vocabulary.decode(ids) for ids in self.generate_ids(descriptors, beam=beam, max_length=max_length)]

    def generate_ids(self, descriptors, *, beam: int = 1, max_length: int = 16) -> List[List[int]]:
        """Like :meth:`generate`, as word ids (ending with ``END`` when the caption finished)."""
        beam, max_length = check_k(beam, "beam"), check_k(max_length, "max_length")
        states = self._initial_state(descriptors)
        if beam == 1:
            return self._greedy(states, max_length)
        return [self._beam_search(state, beam, max_length) for state in states]

    def _greedy(self, states: np.ndarray, max_length: int) -> List[List[int]]:
        w = self._weights()
        words = np.full(len(states), START)
        out: List[List[int]] = [[] for _ in states]
        alive = np.arange(len(states))  # images whose caption has not ended
        for length in range(max_length + 1):
            states, logp = self._step(w, states, words)
            if length == max_length:  # max_length words: only <end> may follow
                logp[:, END + 1 :] = -np.inf
            words = logp.argmax(axis=1)
            for n, word in zip(alive, words):
                out[n].append(int(word))
            going = words != END
            alive, states, words = alive[going], states[going], words[going]
            if len(alive) == 0:
                break
        return out

    def _beam_search(self, state: np.ndarray, beam: int, max_length: int) -> List[int]:
        w = self._weights()
        states, scores, prefixes = state[None], np.zeros(1), [[]]
        finished: List[Tuple[float, List[int]]] = []
        words = np.array([START])
        for length in range(max_length + 1):
            states, logp = self._step(w, states, words)
            if length == max_length:  # no room for another word: only <end>
                logp[:, END + 1 :] = -np.inf
            total = (scores[:, None] + logp).reshape(-1)
            best = np.argsort(-total, kind="stable")[: beam]
            best = best[np.isfinite(total[best])]
            kept_rows, kept_words, kept_scores = [], [], []
            for flat in best:
                row, word = divmod(int(flat), logp.shape[1])
                if word == END:
                    finished.append((float(total[flat]), prefixes[row] + [END]))
                else:
                    kept_rows.append(row), kept_words.append(word), kept_scores.append(total[flat])
            # scores only fall as words are added: no open caption can beat a better finished one
            if not kept_rows or (finished and max(f[0] for f in finished) >= max(kept_scores)):
                break
            prefixes = [prefixes[r] + [wd] for r, wd in zip(kept_rows, kept_words)]
            states, words, scores = states[kept_rows], np.array(kept_words), np.array(kept_scores)
        return max(finished, key=lambda f: f[0])[1]

    # ----------------------------------------------------------------- saving
    def save(self, path: PathLike) -> None:
        """Weights, vocabulary and descriptor scaling in one ``.npz``, atomically (no pickle)."""
        save_npz(
            path, FORMAT, words=np.array(self.vocabulary.words, dtype=str), descriptor_mean=self.descriptor_mean,
            descriptor_scale=np.float64(self.descriptor_scale), **{n: t.data for n, t in self.params.items()},
        )

    @classmethod
    def load(cls, path: PathLike) -> "CaptionGenerator":
        """Read a model written by :meth:`save`, checking that the shapes fit together."""
        arrays = load_npz(path, FORMAT, ("words", "descriptor_mean", "descriptor_scale") + PARAMETER_NAMES, "caption generator file")
        words, mean, scale, *weights = arrays
        values = dict(zip(PARAMETER_NAMES, weights))
        try:
            vocabulary = CaptionVocabulary([str(w) for w in words])
            model = cls(vocabulary, values["W_img"].shape[0], values["W_img"].shape[1], values["E"],
                        descriptor_mean=mean, descriptor_scale=float(scale), dtype=values["W_img"].dtype)
        except (InputError, IndexError, ValueError) as e:
            raise InputError(f"{path} is not a consistent caption generator: {e}") from None
        for name, value in values.items():
            if value.shape != model.params[name].shape:
                raise InputError(f"{path}: {name} has shape {value.shape}, expected {model.params[name].shape}")
            model.params[name] = mg.Tensor(value)
        return model


# --------------------------------------------------------------------------- training
def glove_embeddings(vocabulary: CaptionVocabulary, glove=None, seed: int = 0) -> np.ndarray:
    """Word vectors (V, E) for the vocabulary: GloVe's where it has the word, small random ones otherwise."""
    if glove is None:
        from semsearch.glove import load_glove

        glove = load_glove()
    rng = np.random.default_rng(seed)
    out = rng.normal(0, 0.3, size=(len(vocabulary), glove.vector_size)).astype(np.float32)
    for i, word in enumerate(vocabulary.words):
        if word in glove.key_to_index:
            out[i] = glove[word]
    return out


def train_captioner(
    data: CaptionedImages,
    train_ids,
    *,
    hidden: int = 256,
    epochs: int = 30,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    min_count: int = 1,
    max_length: int = 16,
    glove=None,
    seed: int = 0,
    progress: bool = False,
    dtype=np.float32,
) -> Tuple[CaptionGenerator, List[float]]:
    """Train a :class:`CaptionGenerator` on every caption of the images ``train_ids``.

    The vocabulary (words seen ``min_count`` times) and the descriptor scaling come from
    the training images only. Returns the model and the mean loss of each epoch.

    Raises
    ------
    TrainingError
        The loss became NaN or infinite.
    """
    from mynn.optimizers.adam import Adam
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    train_ids = np.unique(check_image_ids(train_ids))
    if len(train_ids) == 0:
        raise InputError("no training images")
    check_k(epochs, "epochs"), check_k(batch_size, "batch_size")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise InputError(f"learning_rate must be > 0, got {learning_rate!r}")
    caption_ids = data.captions.caption_ids_of_images(train_ids)
    texts = data.captions.captions(caption_ids)
    rows = data.descriptors.rows_of(data.captions.images_of(caption_ids))
    vocabulary = CaptionVocabulary.fit(texts, min_count)
    encoded = vocabulary.encode(texts, max_length)
    lengths = (encoded != PAD).sum(axis=1)
    train_vectors = data.descriptors.vectors_of(train_ids)
    mean = train_vectors.mean(axis=0)
    scale = float(np.sqrt(((train_vectors - mean) ** 2).mean())) or 1.0
    model = CaptionGenerator(vocabulary, data.descriptors.dim, hidden, glove_embeddings(vocabulary, glove, seed),
                             descriptor_mean=mean, descriptor_scale=scale, seed=seed, dtype=dtype)
    optimizer = Adam(model.parameters, learning_rate=learning_rate)
    rng = np.random.default_rng(seed)
    losses: List[float] = []
    bar = tqdm(range(epochs), desc="training captioner", unit="epoch", disable=not progress)
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in bar:
            order = rng.permutation(len(encoded))
            total, count = 0.0, 0
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                longest = int(lengths[batch].max())
                loss = model.loss(data.descriptors.vectors[rows[batch]], encoded[batch, :longest])
                loss.backward()
                if not np.isfinite(loss.item()):
                    raise TrainingError(f"the captioner's loss became {loss.item()} (lower learning_rate, now {learning_rate})")
                optimizer.step()
                loss.null_grad()
                total, count = total + loss.item() * len(batch), count + len(batch)
            losses.append(total / count)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    return model, losses


# --------------------------------------------------------------------------- route and quality
def generated_caption_scores(
    model: CaptionGenerator,
    data: CaptionedImages,
    image_ids,
    *,
    method: str = "tfidf",
    text_encoder=None,
    beam: int = 1,
    max_length: int = 16,
    ks: Sequence[int] = (1, 5, 10),
    captions: Optional[Sequence[str]] = None,
) -> RetrievalScores:
    """Text -> image retrieval by generated captions, scored as :func:`semsearch.evaluation.evaluate` scores a model.

    Every human caption of ``image_ids`` is a query ``Q``; each image ``k`` is represented by
    its one generated caption ``T_k`` and scored by ``sim(Q, T_k)`` (cosine of
    :func:`semsearch.routes.baselines.caption_vectors` of the ``method``). The IDF (``"tfidf"``,
    and ``"glove"`` without a ``text_encoder``) is fitted on all captions of ``data``.

    Parameters
    ----------
    captions : list of str, optional
        Already generated captions of ``image_ids`` (sorted by id), to score several methods
        without generating again.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    image_ids = np.unique(check_image_ids(image_ids))
    if len(image_ids) == 0:
        raise InputError("no images to search")
    caption_ids = data.captions.caption_ids_of_images(image_ids)
    queries = data.captions.captions(caption_ids)
    targets = np.searchsorted(image_ids, data.captions.images_of(caption_ids))
    if captions is None:
        captions = model.generate(data.descriptors.vectors_of(image_ids), beam=beam, max_length=max_length)
    captions = check_texts(captions, "captions")
    if len(captions) != len(image_ids):
        raise InputError(f"need one generated caption per image: {len(captions)} for {len(image_ids)} images")
    idf = None if method == "onehot" else inverse_document_frequency(data.captions.captions(data.captions.caption_ids))
    vectors = caption_vectors(list(queries) + list(captions), method, idf=idf, text_encoder=text_encoder)
    q, g = vectors[: len(queries)], vectors[len(queries) :]
    scores = q @ g.T
    scores = np.asarray(scores.toarray() if hasattr(scores, "toarray") else scores, dtype=np.float32)
    return retrieval_scores(target_ranks(scores, targets), len(image_ids), ks)


def caption_quality(generated: Dict[int, str], references: Dict[int, Sequence[str]]) -> Dict[str, float]:
    """BLEU-1..4 and CIDEr of generated captions against the human ones, per image id.

    Both sides are tokenised like ``se_text`` (lowercase, no punctuation), the tokenisation
    pycocoevalcap's Java PTB tokenizer would otherwise do. Uses pycocoevalcap's ``Bleu(4)``
    and ``Cider()`` (corpus-level BLEU; CIDEr-D with document frequencies from the references).

    >>> caption_quality({1: "a dog on grass"}, {1: ["a dog on grass", "a dog on the grass"]})["bleu4"]  # doctest: +SKIP
    1.0
    """
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        raise MissingExtraError("BLEU and CIDEr need pycocoevalcap: pip install 'semsearch[captioner]'") from None
    ids = sorted(generated)
    missing = [i for i in ids if i not in references or not references[i]]
    if not ids or missing:
        raise InputError(f"need human captions for every generated one; missing for images {missing[:5]}" if ids else "no captions to score")
    res = {i: [" ".join(tokenize(generated[i])) or "<empty>"] for i in ids}
    gts = {i: [" ".join(tokenize(c)) for c in check_texts(references[i], "references")] for i in ids}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu1": float(bleu[0]), "bleu2": float(bleu[1]), "bleu3": float(bleu[2]), "bleu4": float(bleu[3]), "cider": float(cider)}
