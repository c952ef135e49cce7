from pathlib import Path

import mygrad as mg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.model import Autoembedder, l2_normalize_rows


def test_output_shape_and_unit_rows():
    model = Autoembedder(512, seed=0)
    out = model(np.random.default_rng(0).normal(size=(7, 512)).astype(np.float32))
    assert isinstance(out, mg.Tensor)
    assert out.shape == (7, 50)
    np.testing.assert_allclose(np.linalg.norm(out.data, axis=1), 1, rtol=1e-5)


def test_single_descriptor_is_one_row():
    model = Autoembedder(8, 4, seed=0)
    assert model(np.ones(8)).shape == (1, 4)


def test_each_row_is_normalised_by_its_own_norm():
    # scaling one row must not change the others (normalising by the batch norm would)
    x = np.random.default_rng(1).normal(size=(3, 5))
    y = x.copy()
    y[0] *= 100
    np.testing.assert_allclose(l2_normalize_rows(x)[1:], l2_normalize_rows(y)[1:], rtol=1e-6)
    np.testing.assert_allclose(l2_normalize_rows(mg.tensor(x)).data, x / np.linalg.norm(x, axis=1, keepdims=True))


def test_seed_gives_same_weights_and_leaves_global_rng_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b, c = Autoembedder(64, seed=7), Autoembedder(64, seed=7), Autoembedder(64, seed=8)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    np.testing.assert_array_equal(a.dense.weight.data, b.dense.weight.data)
    assert not np.array_equal(a.dense.weight.data, c.dense.weight.data)


def test_glorot_normal_scale():
    weight = Autoembedder(2000, 50, seed=0).dense.weight.data
    assert weight.shape == (2000, 50) and weight.dtype == np.float32
    assert weight.std() == pytest.approx(np.sqrt(2 / (2000 + 50)), rel=0.02)


def test_embed_equals_the_graph_forward():
    model = Autoembedder(32, seed=0)
    x = np.random.default_rng(0).normal(size=(10, 32)).astype(np.float32)
    np.testing.assert_allclose(model.embed(x, batch_size=3), model(x).data, rtol=1e-5, atol=1e-6)


def hand_derived_gradient(weight, bias, captions, good, bad, margin):
    """dLoss/dW and dLoss/db of the training step, derived by hand in NumPy."""
    n = len(captions)
    x = np.concatenate([good, bad])
    z = x @ weight + bias
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    e = z / norm
    c = np.concatenate([captions, captions])
    s = np.sum(e * c, axis=1)
    active = (margin - (s[:n] - s[n:])) > 0
    ds = np.concatenate([-1.0 * active, 1.0 * active]) / n
    de = ds[:, None] * c
    dz = (de - e * np.sum(e * de, axis=1, keepdims=True)) / norm
    return x.T @ dz, dz.sum(axis=0, keepdims=True)


def test_training_gradient_matches_hand_derivation_and_finite_differences():
    from semsearch.loss import loss_accuracy

    rng = np.random.default_rng(3)
    model = Autoembedder(6, 4, seed=0)
    model.dense.weight.data = model.dense.weight.data.astype(np.float64)
    model.dense.bias.data = rng.normal(size=(1, 4))
    captions = l2_normalize_rows(rng.normal(size=(5, 4)))
    good, bad = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    margin = 1.0
    gap = model.similarity_gap(np.concatenate([good, bad]), np.arange(5), np.arange(5, 10), captions)  # the fused node
    loss, _ = loss_accuracy(gap, np.zeros(5), margin)
    loss.backward()
    weight, bias = model.dense.weight.data.copy(), model.dense.bias.data.copy()
    hand_w, hand_b = hand_derived_gradient(weight, bias, captions, good, bad, margin)
    np.testing.assert_allclose(model.dense.weight.grad, hand_w, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(model.dense.bias.grad, hand_b, rtol=1e-5, atol=1e-8)

    def loss_at(w):
        e = l2_normalize_rows(np.concatenate([good, bad]) @ w + bias)
        s = np.sum(e * np.concatenate([captions, captions]), axis=1)
        return np.mean(np.maximum(0, margin - (s[:5] - s[5:])))

    eps, numeric = 1e-6, np.zeros_like(weight)
    for idx in np.ndindex(weight.shape):
        step = np.zeros_like(weight)
        step[idx] = eps
        numeric[idx] = (loss_at(weight + step) - loss_at(weight - step)) / (2 * eps)
    np.testing.assert_allclose(hand_w, numeric, atol=1e-7)


def test_save_load_round_trip(tmp_path):
    model = Autoembedder(16, seed=3)
    model.save(tmp_path / "m.npz")
    loaded = Autoembedder.load(tmp_path / "m.npz")
    x = np.random.default_rng(0).normal(size=(4, 16))
    np.testing.assert_array_equal(loaded.embed(x), model.embed(x))
    assert (loaded.input_dim, loaded.output_dim) == (16, 50)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    Autoembedder(16, seed=0).save(path)
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError):
        Autoembedder(16, seed=1).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file"):
        Autoembedder.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a semsearch model"):
        Autoembedder.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "shapes.npz", format="semsearch-autoembedder-1", weight=np.zeros((4, 3)), bias=np.zeros((1, 5)))
    with pytest.raises(ValueError, match="bias"):
        Autoembedder.load(tmp_path / "shapes.npz")


@pytest.mark.parametrize(
    "x, message",
    [(np.zeros((3, 7)), r"shape \(N, 8\)"), (np.zeros((2, 2, 8)), r"shape \(N, 8\)"), (np.full((1, 8), np.nan), "NaN")],
)
def test_bad_descriptors_are_clear_errors(x, message):
    with pytest.raises(ValueError, match=message):
        Autoembedder(8, seed=0)(x)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 20), d=st.integers(1, 30), seed=st.integers(0, 1000))
def test_rows_are_unit_for_any_input(n, d, seed):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    out = Autoembedder(d, 5, seed=seed).embed(x)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, rtol=1e-4)


class TwoLayer:
    """A student's own model: dense -> relu -> dense, then unit rows (no fused path)."""

    def __init__(self, d_in, d_out, hidden=32, seed=0):
        from mynn.initializers import glorot_normal
        from mynn.layers.dense import dense

        np.random.seed(seed)
        self.first = dense(d_in, hidden, weight_initializer=glorot_normal)
        self.second = dense(hidden, d_out, weight_initializer=glorot_normal)

    def __call__(self, x):
        from mygrad.nnet.activations import relu

        return l2_normalize_rows(self.second(relu(self.first(x))))

    @property
    def parameters(self):
        return self.first.parameters + self.second.parameters


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 5), st.integers(0, 10_000))
def test_the_fused_gap_equals_autodiff_in_value_and_gradient(b, d, e, seed):
    """Autoembedder.similarity_gap (one hand-derived node) == two cosines through model(x), to 1e-6."""
    from semsearch.loss import loss_accuracy
    from semsearch.model import similarity_gap

    rng = np.random.default_rng(seed)
    descriptors = rng.normal(size=(b + 3, d))
    good, bad = rng.integers(0, b + 3, size=b), rng.integers(0, b + 3, size=b)
    c = l2_normalize_rows(rng.normal(size=(b, e)))
    bias = rng.normal(size=(1, e))
    results = []
    for fast in (True, False):
        model = Autoembedder(d, e, seed=seed)
        for p in model.parameters:
            p.data = p.data.astype(np.float64)
        model.dense.bias.data = bias.copy()
        gap = similarity_gap(model, descriptors, good, bad, c, fast=fast)
        loss, accuracy = loss_accuracy(gap, np.zeros(b), 0.25)
        loss.backward()
        results.append((gap.data.copy(), loss.item(), accuracy, model.dense.weight.grad.copy(), model.dense.bias.grad.copy()))
    (gap, loss, accuracy, grad_w, grad_b), (gap2, loss2, accuracy2, grad_w2, grad_b2) = results
    np.testing.assert_allclose(gap, gap2, atol=1e-6)
    np.testing.assert_allclose([loss, *grad_w.ravel(), *grad_b.ravel()], [loss2, *grad_w2.ravel(), *grad_b2.ravel()], atol=1e-6)
    assert accuracy == accuracy2 or np.abs(gap).min() < 1e-6  # only a tie at the last bit could flip
    assert gap.shape == (b,)


def test_embed_images_works_for_any_model():
    from semsearch.model import embed_images

    model = TwoLayer(7, 4, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    out = embed_images(model, x)
    assert out.shape == (5, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, model(x).data, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_a_two_layer_model_trains_on_real_data(real_data):
    """Training goes through the model: a hidden layer written in the test is trained, and helps."""
    from semsearch.paths import find_data_files
    from semsearch.training import train
    from semsearch.workflow import load_data, train_validation_ids

    data, text_encoder = load_data(*find_data_files(real_data))
    from semsearch.training import TrainConfig

    train_ids, val_ids = train_validation_ids(data, TrainConfig())
    model = TwoLayer(data.descriptors.dim, text_encoder.dim, hidden=64, seed=0)
    first_before = model.first.weight.data.copy()
    history = train(model, data, text_encoder, train_ids, val_ids, epochs=15, learning_rate=0.5, progress=False)
    assert not np.array_equal(model.first.weight.data, first_before)  # the hidden layer was trained
    assert history.val_accuracy[0] < history.val_accuracy[-1]
    assert history.val_accuracy[-1] >= 0.75, history.val_accuracy


@pytest.mark.parametrize("make_model", [lambda: Autoembedder(6, 3, seed=2), lambda: TwoLayer(6, 3, hidden=5, seed=2)])
def test_batch_similarity_is_every_caption_with_every_image_and_differentiates_the_model(make_model):
    """(B, B) cosines through the model; the gradient reaches its weights (finite differences)."""
    from semsearch.loss import same_image_mask, vse_loss
    from semsearch.model import batch_similarity, caption_similarity

    model = make_model()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    c = l2_normalize_rows(rng.normal(size=(4, 3))).astype(np.float32)
    sims = batch_similarity(model, x, c)
    np.testing.assert_allclose(sims.data, c @ model(x).data.T, atol=1e-6)
    np.testing.assert_allclose(np.diagonal(sims.data), caption_similarity(model, x, c).data, atol=1e-6)
    same = same_image_mask([0, 1, 1, 2])
    loss, _ = vse_loss(sims, same, 0.5)  # margin 0.5: most hinges active, away from kinks
    loss.backward()
    weight = model.parameters[0]
    analytic = np.array(weight.grad, dtype=np.float64)
    original = weight.data.astype(np.float64).copy()

    def loss_at(w):
        weight.data = w.astype(np.float32)
        with mg.no_autodiff:
            value = float(vse_loss(batch_similarity(model, x, c), same, 0.5)[0])
        weight.data = original.astype(np.float32)
        return value

    numeric = np.zeros_like(original)
    for index in np.ndindex(original.shape):
        step = np.zeros_like(original)
        step[index] = 1e-3
        numeric[index] = (loss_at(original + step) - loss_at(original - step)) / 2e-3
    np.testing.assert_allclose(analytic, numeric, atol=2e-3)
    assert np.abs(analytic).max() > 1e-2  # a real gradient, not zeros matching zeros


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(2, 5), st.integers(0, 10_000))
def test_the_fast_path_agrees_with_the_default_forward(b, d, e, seed):
    """Embeddings of 2 dims or more: a unit 1-d embedding is +-1 whatever the weights, so both
    gradients are zero up to float32 round-off (1e-6 against 1e-8), which no tolerance compares."""
    from semsearch.model import fast_path_agrees

    rng = np.random.default_rng(seed)
    x, c = rng.normal(size=(b + 2, d)).astype(np.float32), l2_normalize_rows(rng.normal(size=(b, e))).astype(np.float32)
    model = Autoembedder(d, e, seed=seed)
    assert fast_path_agrees(model, x, np.arange(b), np.arange(b) + 2, c)
    assert all(p.grad is None for p in model.parameters)  # the probe leaves no gradient behind


def test_the_fast_path_is_refused_when_the_forward_changed():
    """A ReLU in __call__ (a subclass, or the same edit made in model.py) disagrees with the fused copy."""
    from mygrad.nnet.activations import relu

    from semsearch.model import fast_path_agrees

    class Relu(Autoembedder):
        def __call__(self, descriptors):
            return l2_normalize_rows(relu(self.dense(self.check_input(descriptors))))

    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(32, 6)).astype(np.float32), l2_normalize_rows(rng.normal(size=(16, 3))).astype(np.float32)
    good, bad = np.arange(16), np.arange(16, 32)
    assert not fast_path_agrees(Relu(6, 3, seed=0), x, good, bad, c)
    assert not fast_path_agrees(TwoLayer(6, 3, hidden=5, seed=2), x, good, bad, c)  # no fast path at all
    original = Autoembedder.__call__
    try:  # an edit in place: the class is the same, its forward is not
        Autoembedder.__call__ = Relu.__call__
        assert not fast_path_agrees(Autoembedder(6, 3, seed=0), x, good, bad, c)
    finally:
        Autoembedder.__call__ = original
    assert fast_path_agrees(Autoembedder(6, 3, seed=0), x, good, bad, c)


def test_similarity_gap_of_any_model_uses_autodiff():
    from semsearch.model import caption_similarity, similarity_gap

    model = TwoLayer(6, 3, hidden=5, seed=2)
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(5, 6)).astype(np.float32), l2_normalize_rows(rng.normal(size=(2, 3))).astype(np.float32)
    gap = similarity_gap(model, x, [0, 4], [3, 3], c)
    expected = caption_similarity(model, x[[0, 4]], c).data - caption_similarity(model, x[[3, 3]], c).data
    np.testing.assert_allclose(gap.data, expected, atol=1e-6)
    np.testing.assert_allclose(caption_similarity(model, x[:2], c).data, np.sum(model(x[:2]).data * c, axis=1), atol=1e-6)
    gap.sum().backward()
    assert model.first.weight.grad is not None  # the gradient reaches the student's layers


def test_similarity_gap_refuses_descriptors_of_another_size():
    with pytest.raises(ValueError, match=r"descriptors must have shape \(N, 4\), got \(3, 5\)"):
        Autoembedder(4, 2).similarity_gap(np.ones((3, 5), np.float32), [0], [1], np.ones((1, 2), np.float32))


def test_the_dense_layer_made_on_first_use_has_the_seeded_weights():
    """Made lazily (a loaded model searches without MyGrad), the layer is what MyNN draws from the seed."""
    from mynn.initializers import glorot_normal
    from mynn.layers.dense import dense

    state = np.random.get_state()
    np.random.seed(7)
    expected = dense(6, 3, weight_initializer=glorot_normal)
    np.random.set_state(state)
    model = Autoembedder(6, 3, seed=7)
    np.random.seed(123)  # the global generator's state between making and using the model does not matter
    np.testing.assert_array_equal(model.dense.weight.data, expected.weight.data)
    np.testing.assert_array_equal(model.dense.bias.data, expected.bias.data)
    assert model.input_dim == 6 and model.output_dim == 3


def test_a_loaded_model_runs_its_forward_to_embed_and_trains_from_its_weights(tmp_path):
    import subprocess
    import sys

    model = Autoembedder(6, 3, seed=1)
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    model.save(tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np; from semsearch.model import Autoembedder; "
            f"m = Autoembedder.load({str(tmp_path / 'm.npz')!r}); print('mygrad' in sys.modules); "
            f"e = m.embed(np.load({str(tmp_path / 'x.npy')!r})); print('mygrad' in sys.modules); np.save(sys.argv[1], e)")
    import semsearch

    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "e.npy")], capture_output=True, text=True, check=True,
                         cwd=Path(semsearch.__file__).parents[1])  # this semsearch, not another installed one
    assert out.stdout.split() == ["False", "True"]  # loading needs no MyGrad; embedding runs the MyGrad forward
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), model.embed(x), atol=1e-7)
    loaded = Autoembedder.load(tmp_path / "m.npz")  # and its MyNN layer, made now, holds the saved weights
    np.testing.assert_array_equal(loaded.dense.weight.data, model.dense.weight.data)
    np.testing.assert_array_equal(loaded.parameters[1].data, model.dense.bias.data)


@pytest.mark.parametrize("size", [2.7, True, 0, -3, "50"])
def test_a_size_that_is_not_a_positive_whole_number_is_refused(size):
    with pytest.raises(ValueError, match=r"input_dim must be a positive whole number \(a size\), got"):
        Autoembedder(size)
    with pytest.raises(ValueError, match=r"output_dim must be a positive whole number"):
        Autoembedder(4, size)
