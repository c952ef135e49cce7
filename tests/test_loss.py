import mygrad as mg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semsearch.loss import loss_accuracy


def numpy_reference(sim_good, sim_bad, margin):
    return np.mean(np.maximum(0.0, margin - (sim_good - sim_bad)))


def test_hand_computed_values():
    # triple 1: 0.9 - 0.1 = 0.8 > margin -> 0;  triple 2: 0.25 - (0.2 - 0.4) = 0.45
    loss, accuracy = loss_accuracy(np.array([0.9, 0.2]), np.array([0.1, 0.4]), margin=0.25)
    assert float(loss) == pytest.approx(0.225)
    assert accuracy == 0.5


def test_good_image_ranked_higher_means_low_loss_not_high():
    # the classic y=0 / y=-1 mistake would reward the bad image
    good_first, _ = loss_accuracy(np.array([0.8]), np.array([0.1]), margin=0.1)
    bad_first, _ = loss_accuracy(np.array([0.1]), np.array([0.8]), margin=0.1)
    assert float(good_first) == 0.0
    assert float(bad_first) == pytest.approx(0.8)


sims = arrays(np.float64, st.integers(1, 40), elements=st.floats(-1, 1))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), margin=st.floats(0, 2))
def test_matches_numpy_reference(data, margin):
    sim_good = data.draw(sims)
    sim_bad = data.draw(arrays(np.float64, sim_good.shape, elements=st.floats(-1, 1)))
    loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
    assert float(loss) == pytest.approx(numpy_reference(sim_good, sim_bad, margin), abs=1e-12)
    assert accuracy == pytest.approx(np.mean(sim_good > sim_bad))


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    good = rng.uniform(-1, 1, 16)
    bad = rng.uniform(-1, 1, 16)
    margin = 0.3
    # keep away from the kink at margin == good - bad, where the derivative jumps
    assert np.min(np.abs(margin - (good - bad))) > 1e-3
    sim_good, sim_bad = mg.tensor(good), mg.tensor(bad)
    loss, _ = loss_accuracy(sim_good, sim_bad, margin)
    loss.backward()
    eps = 1e-6
    for analytic, x, which in ((sim_good.grad, good, 0), (sim_bad.grad, bad, 1)):
        numeric = np.empty_like(x)
        for i in range(len(x)):
            step = np.zeros_like(x)
            step[i] = eps
            args_plus = (x + step, bad) if which == 0 else (good, x + step)
            args_minus = (x - step, bad) if which == 0 else (good, x - step)
            numeric[i] = (numpy_reference(*args_plus, margin) - numpy_reference(*args_minus, margin)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, atol=1e-8)


def test_ties_count_as_wrong_and_cost_the_margin():
    loss, accuracy = loss_accuracy(np.full(4, 0.5), np.full(4, 0.5), margin=0.2)
    assert accuracy == 0.0
    assert float(loss) == pytest.approx(0.2)


def test_margin_zero():
    loss, accuracy = loss_accuracy(np.array([0.5, 0.1, 0.3]), np.array([0.2, 0.4, 0.3]), margin=0.0)
    assert float(loss) == pytest.approx(0.3 / 3)
    assert accuracy == pytest.approx(1 / 3)


def test_float32_tensors_keep_their_gradient_path():
    sim_good = mg.tensor(np.array([0.1, 0.9], dtype=np.float32))
    sim_bad = mg.tensor(np.array([0.3, 0.0], dtype=np.float32))
    loss, _ = loss_accuracy(sim_good, sim_bad, margin=0.5)
    loss.backward()
    np.testing.assert_allclose(sim_good.grad, [-0.5, 0.0])
    np.testing.assert_allclose(sim_bad.grad, [0.5, 0.0])


@pytest.mark.parametrize(
    "good, bad, margin, message",
    [
        (np.zeros(3), np.zeros(4), 0.1, "same shape"),
        (np.zeros((3, 2)), np.zeros((3, 2)), 0.1, "same shape"),
        (np.zeros(3), np.zeros(3), -0.1, "margin"),
        (np.zeros(3), np.zeros(3), float("nan"), "margin"),
        (np.array([0.1, np.nan]), np.zeros(2), 0.1, "NaN"),
        (np.zeros(0), np.zeros(0), 0.1, "no similarities"),
    ],
)
def test_bad_input_is_a_clear_error(good, bad, margin, message):
    with pytest.raises(ValueError, match=message):
        loss_accuracy(good, bad, margin)
