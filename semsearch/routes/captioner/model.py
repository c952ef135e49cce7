"""The caption generator: a GRU decoder from an image descriptor to words (MyGrad), decoded in NumPy.

    s_0 = tanh(x W_img + b_img)                    x: the descriptor, centred and scaled (D,)
    s_t = GRU(E[w_{t-1}], s_{t-1})                 :func:`~semsearch.routes.captioner.gru.state_gru`
    p(w_t | w_<t, image) = softmax(s_t W_out + b_out)

Training computes :meth:`CaptionGenerator.loss` with teacher forcing; decoding
(:meth:`CaptionGenerator.generate`) is greedy or by beam search, in NumPy with the same
equations. Saved as one ``.npz`` (no pickle).

Example
-------
>>> model = CaptionGenerator(CaptionVocabulary.fit(["a dog"]), descriptor_dim=4, hidden=8)
>>> len(model.generate(np.ones((2, 4)), max_length=3))
2
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple, Union

import mygrad as mg
import numpy as np

from semsearch.common.checks import check_k
from semsearch.common.files import load_npz, save_npz
from semsearch.errors import InputError
from semsearch.routes.captioner.gru import state_gru
from semsearch.routes.captioner.vocabulary import END, PAD, START, UNK, CaptionVocabulary

PathLike = Union[str, "os.PathLike[str]"]
FORMAT = "semsearch-captioner-1"
PARAMETER_NAMES = ("W_img", "b_img", "E", "Uz", "Wz", "bz", "Ur", "Wr", "br", "Uh", "Wh", "bh", "W_out", "b_out")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


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
