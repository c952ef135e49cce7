import math

import mygrad as mg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mynn.optimizers.sgd import SGD

import importlib
from semsearch.coco import CocoCaptions, ImageInfo
from semsearch.dataset import CaptionedImages
from semsearch.descriptors import Descriptors
from semsearch.errors import InputError, InputTypeError
from semsearch.model import Autoembedder
from semsearch.regularisation import SCHEDULES, add_weight_decay, decayed_parameters, scheduled_learning_rate
from semsearch.training import TrainConfig, train
from semsearch.common.vectors import l2_normalize_rows


# ------------------------------------------------------------------ weight decay


def test_weight_decay_is_the_gradient_of_the_l2_penalty_by_finite_differences():
    """grad of f(W, b) + lam/2 |W|^2, checked entry by entry against central differences."""
    rng = np.random.default_rng(0)
    w0, b0, x = rng.normal(size=(4, 3)), rng.normal(size=(1, 3)), rng.normal(size=(5, 4))
    lam = 0.3

    def f(w, b):  # any smooth loss of the parameters
        return mg.sum(mg.tanh(mg.matmul(x, w) + b) ** 2)

    w, b = mg.tensor(w0), mg.tensor(b0)
    f(w, b).backward()
    add_weight_decay((w, b), lam)

    def total(wv, bv):
        return f(wv, bv).item() + lam / 2 * np.sum(wv ** 2)

    h = 1e-6
    numeric_w = np.zeros_like(w0)
    for index in np.ndindex(w0.shape):
        step = np.zeros_like(w0)
        step[index] = h
        numeric_w[index] = (total(w0 + step, b0) - total(w0 - step, b0)) / (2 * h)
    numeric_b = np.zeros_like(b0)
    for index in np.ndindex(b0.shape):
        step = np.zeros_like(b0)
        step[index] = h
        numeric_b[index] = (f(w0, b0 + step).item() - f(w0, b0 - step).item()) / (2 * h)
    np.testing.assert_allclose(w.grad, numeric_w, atol=1e-6)
    np.testing.assert_allclose(b.grad, numeric_b, atol=1e-6)  # the bias carries no penalty


def test_weight_decay_by_hand_and_what_it_leaves_alone():
    w, b, unused = mg.tensor([[1.0, -2.0], [0.5, 0.0]]), mg.tensor([[3.0, 3.0]]), mg.tensor([[1.0, 1.0], [1.0, 1.0]])
    mg.sum(w * 2 + b).backward()  # grad w = 2 everywhere, grad b = 2 (one row)
    add_weight_decay((w, b, unused), 0.5)
    assert w.grad.tolist() == [[2.5, 1.0], [2.25, 2.0]]  # 2 + 0.5 * w
    assert b.grad.tolist() == [[2.0, 2.0]]
    assert unused.grad is None  # not in the loss: no gradient to add to


def test_zero_weight_decay_changes_no_gradient():
    w = mg.tensor([[1.0, -2.0], [0.5, 0.0]])
    mg.sum(w * 3).backward()
    add_weight_decay((w,), 0.0)
    assert w.grad.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_decayed_parameters_are_the_dense_weight_not_its_bias():
    model = Autoembedder(6, 4, seed=0)
    assert decayed_parameters(model.parameters) == (model.dense.weight,)
    assert decayed_parameters((mg.tensor([1.0, 2.0]), mg.tensor(3.0))) == ()


# ------------------------------------------------------------------ schedule


def test_cosine_schedule_by_hand():
    assert [round(scheduled_learning_rate(0.5, e, 4, "cosine"), 6) for e in range(4)] == [
        0.5, round(0.25 * (1 + math.sqrt(0.5)), 6), 0.25, round(0.25 * (1 - math.sqrt(0.5)), 6)]
    assert [scheduled_learning_rate(0.5, e, 4, "constant") for e in range(4)] == [0.5] * 4


@settings(max_examples=50, deadline=None)
@given(lr=st.floats(1e-4, 10), epochs=st.integers(1, 200))
def test_cosine_schedule_starts_at_the_rate_and_only_falls(lr, epochs):
    rates = np.array([scheduled_learning_rate(lr, e, epochs, "cosine") for e in range(epochs)])
    assert rates[0] == pytest.approx(lr)
    assert np.all(np.diff(rates) <= 1e-12) and np.all(rates > 0)
    np.testing.assert_allclose(rates, lr * (1 + np.cos(np.pi * np.arange(epochs) / epochs)) / 2)


def test_unknown_schedule_is_one_clear_line():
    with pytest.raises(InputError, match=r"^lr_schedule must be one of \('constant', 'cosine'\), got 'linear'$"):
        scheduled_learning_rate(0.5, 0, 3, "linear")


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"weight_decay": -0.001}, InputError, "weight_decay must be >= 0, got -0.001"),
        ({"weight_decay": float("inf")}, InputError, "weight_decay must be finite, got inf"),
        ({"weight_decay": "0.1"}, InputTypeError, "weight_decay must be a number, got '0.1'"),
        ({"lr_schedule": "linear"}, InputError, "lr_schedule must be one of ('constant', 'cosine'), got 'linear'"),
    ],
)
def test_config_refuses_bad_regularisation_values(changes, error, message):
    with pytest.raises(error) as info:
        TrainConfig().replace(**changes)
    assert str(info.value) == message and "\n" not in str(info.value)


def test_regularisation_settings_survive_a_saved_configuration():
    config = TrainConfig(weight_decay=1e-4, lr_schedule="cosine")
    assert TrainConfig.from_dict(config.as_dict()) == config
    assert set(SCHEDULES) == set(dict(TrainConfig.__dataclass_fields__["lr_schedule"].metadata)["choices"])


# ------------------------------------------------------------------ through train()


class LookupEncoder:
    """``se_text`` of ``"caption <id>"``: a fixed unit vector per caption id."""

    def __init__(self, vectors, dim):
        self.vectors, self.dim = vectors, dim

    def __call__(self, texts):
        return np.stack([self.vectors[int(t.split()[1])] for t in texts]).astype(np.float32)


def tiny_data(n_images=24, dim=6, seed=0):
    """Images whose captions' vectors are their descriptor plus noise (no GloVe needed)."""
    rng = np.random.default_rng(seed)
    descriptors = rng.normal(size=(n_images, dim)).astype(np.float32)
    images = {i + 1: ImageInfo(i + 1, f"{i + 1:012d}.jpg", "") for i in range(n_images)}
    captions, vectors = {}, {}
    for row in range(n_images):
        for _ in range(3):
            cid = len(captions) + 1
            captions[cid] = (row + 1, f"caption {cid}")
            vectors[cid] = l2_normalize_rows((descriptors[row] + rng.normal(scale=0.5, size=dim))[None])[0]
    data = CaptionedImages(CocoCaptions(images, captions), Descriptors({i + 1: d for i, d in enumerate(descriptors)}))
    return data, LookupEncoder(vectors, dim)


@pytest.fixture(scope="module")
def tiny():
    return tiny_data()


def trained(tiny, **settings_):
    data, encoder = tiny
    model = Autoembedder(data.descriptors.dim, encoder.dim, seed=3)
    train(model, data, encoder, data.image_ids[:18], config=TrainConfig(seed=3, **settings_), progress=False)
    return model


@pytest.mark.parametrize("loss", ["triple", "infonce"])
def test_one_sgd_step_with_weight_decay_subtracts_lr_lam_w(tiny, loss):
    """One step, no momentum: the decayed weight differs from the plain one by exactly -lr * lam * W0."""
    start = Autoembedder(tiny[0].descriptors.dim, tiny[1].dim, seed=3).dense.weight.data.copy()
    one_step = dict(epochs=1, batch_size=64, momentum=0.0, learning_rate=0.5, loss=loss)  # 54 captions: one batch
    plain, decayed = trained(tiny, **one_step), trained(tiny, weight_decay=0.2, **one_step)
    np.testing.assert_allclose(decayed.dense.weight.data - plain.dense.weight.data, -0.5 * 0.2 * start, atol=1e-6)
    np.testing.assert_array_equal(decayed.dense.bias.data, plain.dense.bias.data)


def test_weight_decay_shrinks_the_trained_weight(tiny):
    plain = np.linalg.norm(trained(tiny, epochs=5).dense.weight.data)
    decayed = np.linalg.norm(trained(tiny, epochs=5, weight_decay=0.05).dense.weight.data)
    assert decayed < 0.9 * plain


@pytest.mark.parametrize("settings_", [dict(weight_decay=1e-3), dict(lr_schedule="cosine"), dict(loss="vse++", weight_decay=1e-3, lr_schedule="cosine")])
def test_regularised_training_is_deterministic_given_a_seed(tiny, settings_):
    first, second = trained(tiny, epochs=4, **settings_), trained(tiny, epochs=4, **settings_)
    np.testing.assert_array_equal(first.dense.weight.data, second.dense.weight.data)
    np.testing.assert_array_equal(first.dense.bias.data, second.dense.bias.data)


def test_training_steps_with_the_scheduled_rate_of_each_epoch(tiny, monkeypatch):
    rates = []

    class RecordingSGD(SGD):
        def step(self):
            rates.append(self.learning_rate)
            super().step()

    monkeypatch.setattr(importlib.import_module("semsearch.training"), "make_optimizer", lambda config, parameters: RecordingSGD(
        parameters, learning_rate=config.learning_rate, momentum=config.momentum))
    trained(tiny, epochs=4, batch_size=64, learning_rate=0.8, lr_schedule="cosine")  # one step per epoch
    np.testing.assert_allclose(rates, [0.8 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])


def test_one_epoch_of_cosine_is_the_constant_rate(tiny):
    constant, cosine = trained(tiny, epochs=1, lr_schedule="constant"), trained(tiny, epochs=1, lr_schedule="cosine")
    np.testing.assert_array_equal(constant.dense.weight.data, cosine.dense.weight.data)
    three = [trained(tiny, epochs=3, lr_schedule=schedule).dense.weight.data for schedule in SCHEDULES]
    assert not np.array_equal(*three)
