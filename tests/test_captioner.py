"""Tests of semsearch.routes.captioner: the GRU caption generator, its decoding, saving and retrieval route.

numba compiles MyGrad's GRU once per process and dtype (10-25 s here), so every trained or
differentiated model below is float64.
"""
from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors

pytest.importorskip("numba")

import mygrad as mg

from semsearch.routes.captioner import (
    END, PARAMETER_NAMES, START, CaptionGenerator, CaptionVocabulary, caption_quality,
    generated_caption_scores, glove_embeddings, train_captioner,
)
from semsearch.coco import CocoCaptions, ImageInfo
from semsearch.dataset import join
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError, InputTypeError

CAPTIONS = [
    "a dog catches a frisbee", "two cats sleep on a sofa", "a man rides a horse on the beach",
    "a red bus on the street", "a plate of food with broccoli", "a woman holds an umbrella in the rain",
    "a train at the station", "a boy flies a kite in a park", "a bowl of fruit on a table", "a small boat on a lake",
]


def ten_images(dim: int = 16):
    rng = np.random.default_rng(0)
    images = {i: ImageInfo(i, f"{i:012d}.jpg", "") for i in range(1, 11)}
    coco = CocoCaptions(images, {100 + i: (i, CAPTIONS[i - 1]) for i in range(1, 11)})
    data = join(coco, Descriptors({i: rng.random(dim).astype(np.float32) for i in range(1, 11)}))
    glove = KeyedVectors(vector_size=8)
    words = sorted({w for c in CAPTIONS for w in c.split()})
    glove.add_vectors(words, rng.normal(size=(len(words), 8)).astype(np.float32))
    return data, glove


@pytest.fixture(scope="module")
def trained():
    data, glove = ten_images()
    model, losses = train_captioner(
        data, data.image_ids, hidden=32, epochs=100, batch_size=10, learning_rate=0.01, glove=glove, dtype=np.float64
    )
    return data, model, losses


# --------------------------------------------------------------------------- vocabulary
def test_vocabulary_encodes_with_start_end_and_padding_and_truncates():
    vocab = CaptionVocabulary.fit(["A dog runs.", "a dog sits", "rare"], min_count=2)
    assert vocab.words == ["<pad>", "<start>", "<end>", "<unk>", "a", "dog"]
    np.testing.assert_array_equal(vocab.encode(["a dog runs", "dog"], max_length=2), [[1, 4, 5, 2], [1, 5, 2, 0]])
    assert vocab.decode([4, 3, 5, 2, 4]) == "a dog"  # <unk> dropped, stops at <end>
    with pytest.raises(InputTypeError, match="not one str"):
        vocab.encode("a dog")
    with pytest.raises(InputError, match="starts with"):
        CaptionVocabulary(["a", "dog"])


# --------------------------------------------------------------------------- gradients
def test_decoder_gradients_match_finite_differences_on_a_tiny_gru():
    vocab = CaptionVocabulary.fit(["a dog runs", "a cat sits on a mat"])
    rng = np.random.default_rng(0)
    model = CaptionGenerator(vocab, 3, hidden=4, embeddings=rng.normal(size=(len(vocab), 5)), seed=1, dtype=np.float64)
    for name in ("bz", "br", "bh", "b_img", "b_out"):  # non-zero biases, so every term is exercised
        model.params[name] = mg.Tensor(rng.normal(0, 0.5, size=model.params[name].shape))
    x = rng.normal(size=(2, 3))
    encoded = vocab.encode(["a dog runs", "a cat sits on a mat"])  # unequal lengths: padding is masked
    loss = model.loss(x, encoded)
    loss.backward()
    analytic = {name: np.array(t.grad) for name, t in model.params.items()}
    eps = 1e-6
    for name, tensor in model.params.items():
        tensor.data = np.array(tensor.data)  # a writable copy, whatever graph MyGrad still guards
        numeric = np.zeros(tensor.shape)
        for idx in np.ndindex(tensor.shape):
            old = tensor.data[idx]
            with mg.no_autodiff:  # no graph: nothing holds the weights read-only between the two losses
                tensor.data[idx] = old + eps
                up = model.loss(x, encoded).item()
                tensor.data[idx] = old - eps
                down = model.loss(x, encoded).item()
                tensor.data[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic[name], numeric, atol=1e-7, rtol=1e-5, err_msg=name)
    assert np.abs(analytic["W_img"]).max() > 1e-3  # the image reaches the loss through s0


def test_loss_is_the_mean_cross_entropy_of_the_real_next_words():
    vocab = CaptionVocabulary.fit(["a dog", "a cat sits"])
    model = CaptionGenerator(vocab, 3, hidden=4, seed=0, dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(2, 3))
    encoded = vocab.encode(["a dog", "a cat sits"])  # targets: a dog <end> | a cat sits <end>
    logits = model.logits(x, encoded[:, :-1]).data  # (T, N, V)
    logp = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    terms = [logp[t, n, encoded[n, t + 1]] for n in range(2) for t in range(4) if encoded[n, t + 1] != 0]
    assert len(terms) == 7
    assert model.loss(x, encoded).item() == pytest.approx(-np.mean(terms))


def test_numpy_decoding_step_is_the_mygrad_gru():
    vocab = CaptionVocabulary.fit(["a dog runs fast"])
    model = CaptionGenerator(vocab, 3, hidden=5, seed=2, dtype=np.float64)
    x = np.random.default_rng(3).normal(size=(2, 3))
    tokens = vocab.encode(["a dog runs fast", "dog a"])[:, :-1]
    logits = model.logits(x, tokens).data
    state, w = model._initial_state(x), model._weights()
    for t in range(tokens.shape[1]):
        state, logp = model._step(w, state, tokens[:, t])
        expected = logits[t] - np.log(np.exp(logits[t]).sum(axis=1, keepdims=True))
        allowed = np.isfinite(logp)
        np.testing.assert_allclose(logp[allowed], expected[allowed], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- training
def test_trained_on_ten_images_it_reproduces_their_captions(trained):
    data, model, losses = trained
    assert losses[-1] < 0.05 and losses[-1] < losses[0] / 50
    vectors = data.descriptors.vectors_of(data.image_ids)
    assert model.generate(vectors) == CAPTIONS
    assert model.generate(vectors, beam=3) == CAPTIONS


def test_training_is_deterministic_given_a_seed():
    data, glove = ten_images()
    a, la = train_captioner(data, data.image_ids, hidden=8, epochs=2, batch_size=4, glove=glove, dtype=np.float64, seed=3)
    b, lb = train_captioner(data, data.image_ids, hidden=8, epochs=2, batch_size=4, glove=glove, dtype=np.float64, seed=3)
    assert la == lb
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(a.params[name].data, b.params[name].data)


def test_glove_initialises_the_known_words():
    vocab = CaptionVocabulary.fit(["a dog", "a zzqx"])
    glove = KeyedVectors(vector_size=2)
    glove.add_vectors(["a", "dog"], np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    table = glove_embeddings(vocab, glove)
    np.testing.assert_array_equal(table[vocab.index["dog"]], [3.0, 4.0])
    assert np.abs(table[vocab.index["zzqx"]]).max() < 2  # small random


# --------------------------------------------------------------------------- decoding
def forced_model(favourite: int, max_words=None) -> CaptionGenerator:
    """A model whose next word is always ``favourite`` (output bias), whatever the image."""
    vocab = CaptionVocabulary.fit(["a dog runs"])
    model = CaptionGenerator(vocab, 3, hidden=4, seed=0)
    bias = np.zeros(len(vocab), dtype=np.float32)
    bias[favourite] = 50.0
    model.params["W_out"] = mg.Tensor(np.zeros_like(model.params["W_out"].data))
    model.params["b_out"] = mg.Tensor(bias)
    return model


@pytest.mark.parametrize("beam", [1, 4])
def test_decoding_stops_at_the_end_token(beam):
    model = forced_model(END)
    assert model.generate_ids(np.ones((2, 3)), beam=beam) == [[END], [END]]
    assert model.generate(np.ones((2, 3)), beam=beam) == ["", ""]


def test_decoding_respects_the_maximum_length():
    model = forced_model(dog := 5)  # "dog", forever: only the length limit stops it
    ids = model.generate_ids(np.ones((3, 3)), max_length=4)
    assert ids == [[dog] * 4 + [END]] * 3
    assert model.generate(np.ones((1, 3)), max_length=4) == ["dog dog dog dog"]
    # beam search may also end early (<end> costs the same after 0 or 4 words here), never late
    for caption in model.generate_ids(np.ones((3, 3)), beam=3, max_length=4):
        assert caption[-1] == END and len(caption) <= 5 and set(caption[:-1]) <= {dog}


def test_beam_search_finds_a_caption_at_least_as_likely_as_greedy(trained):
    data, model, _ = trained
    x = data.descriptors.vectors[:3] + np.random.default_rng(0).normal(0, 0.5, size=(3, 16)).astype(np.float32)

    def log_probability(ids, state):
        w, total, word = model._weights(), 0.0, START
        state = state[None]
        for nxt in ids:
            state, logp = model._step(w, state, np.array([word]))
            total, word = total + logp[0, nxt], nxt
        return total

    states = model._initial_state(x)
    for greedy, beamed, state in zip(model.generate_ids(x), model.generate_ids(x, beam=5), states):
        assert log_probability(beamed, state) >= log_probability(greedy, state) - 1e-9


def test_generate_refuses_bad_input():
    model = forced_model(END)
    with pytest.raises(InputError, match=r"shape \(N, 3\)"):
        model.generate(np.ones((2, 4)))
    with pytest.raises(InputTypeError, match="beam"):
        model.generate(np.ones((1, 3)), beam=0.5)


# --------------------------------------------------------------------------- saving
def test_save_and_load_give_the_same_captions(trained, tmp_path):
    data, model, _ = trained
    model.save(tmp_path / "captioner.npz")
    back = CaptionGenerator.load(tmp_path / "captioner.npz")
    assert back.vocabulary.words == model.vocabulary.words
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(back.params[name].data, model.params[name].data)
    assert back.generate(data.descriptors.vectors, beam=2) == CAPTIONS
    np.savez(tmp_path / "other.npz", format="semsearch-autoembedder-1")
    with pytest.raises(InputError, match="other.npz is not a semsearch caption generator file"):
        CaptionGenerator.load(tmp_path / "other.npz")


# --------------------------------------------------------------------------- route and quality
def test_generated_caption_route_ranks_each_image_by_its_generated_caption(trained):
    data, model, _ = trained
    scores = generated_caption_scores(model, data, data.image_ids, method="onehot")
    assert scores.recall[1] == 1.0 and scores.n_queries == 10  # each caption is its image's T_k
    # hand-made T_k: image 1 gets image 2's caption and vice versa -> their queries rank 2nd or worse
    swapped = [CAPTIONS[1], CAPTIONS[0]] + CAPTIONS[2:]
    scores = generated_caption_scores(model, data, data.image_ids, method="tfidf", captions=swapped)
    assert scores.recall[1] == pytest.approx(0.8)
    with pytest.raises(InputError, match="one generated caption per image"):
        generated_caption_scores(model, data, data.image_ids, captions=CAPTIONS[:3])


def test_caption_quality_matches_hand_computed_bleu():
    pytest.importorskip("pycocoevalcap")
    refs = {1: ["a dog on the grass"], 2: ["a cat on a mat"]}
    assert caption_quality({1: "a dog on the grass", 2: "a cat on a mat"}, refs)["bleu4"] == pytest.approx(1.0, abs=1e-6)
    # "a dog on grass" vs "a dog on the grass": p1 4/4, p2 2/3, p3 1/2, p4 0/1 -> BLEU-2 = BP * sqrt(2/3)
    scores = caption_quality({1: "A dog on grass."}, {1: ["a dog on the grass"]})
    assert scores["bleu2"] == pytest.approx(np.exp(1 - 5 / 4) * np.sqrt(2 / 3), rel=1e-4)
    assert scores["bleu4"] < 1e-3
    with pytest.raises(InputError, match="missing for images"):
        caption_quality({3: "a dog"}, refs)
