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


# --------------------------------------------------------------------------- in-batch losses
from hypothesis import assume

from semsearch.loss import in_batch_accuracy, info_nce_loss, same_image_mask, vse_loss


def vse_reference(sims, rows, margin, hardest, directions):
    """Loops over every (anchor, bad) pair, written independently of the library."""
    n = len(rows)
    total = 0.0
    for i in range(n):
        caption_side = [max(0.0, margin - sims[i, i] + sims[i, j]) for j in range(n) if rows[j] != rows[i]]
        image_side = [max(0.0, margin - sims[i, i] + sims[j, i]) for j in range(n) if rows[j] != rows[i]]
        for hinges in [caption_side] + ([image_side] if directions == "both" else []):
            total += (max(hinges) if hardest else sum(hinges)) if hinges else 0.0
    return total / n


def info_nce_reference(sims, rows, temperature, directions):
    n = len(rows)
    terms = []
    for view in [sims] + ([sims.T] if directions == "both" else []):
        loss = 0.0
        for i in range(n):
            candidates = [j for j in range(n) if j == i or rows[j] != rows[i]]
            logits = np.array([view[i, j] for j in candidates]) / temperature
            loss += -(view[i, i] / temperature) + np.log(np.sum(np.exp(logits)))
        terms.append(loss / n)
    return float(np.mean(terms))


def numeric_gradient(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def hinge_gaps(sims, rows, margin):
    """Distance of every hinge to its kink, and of the hardest bad image to the next one."""
    bad = rows[:, None] != rows[None, :]
    caption_side = margin - np.diag(sims)[:, None] + sims
    image_side = margin - np.diag(sims)[None, :] + sims
    kinks = np.abs(np.concatenate([caption_side[bad], image_side[bad]]))
    ties = [np.inf]
    for hinges in (np.where(bad, np.maximum(caption_side, 0), -1), np.where(bad, np.maximum(image_side, 0), -1).T):
        for row in hinges:
            top = np.sort(row[row >= 0])[::-1]
            if len(top) >= 2 and top[0] > 0:
                ties.append(top[0] - top[1])
    return (kinks.min() if len(kinks) else np.inf), min(ties)


def test_same_image_mask_by_hand():
    np.testing.assert_array_equal(
        same_image_mask([4, 2, 4, 9]),
        [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]],
    )


def test_vse_by_hand_masks_captions_of_the_same_image():
    # captions 0 and 1 show image A, caption 2 image B; column j is caption j's image
    sims = np.array([[0.9, 0.8, 0.3], [0.6, 0.5, 0.4], [0.2, 0.1, 0.7]])
    same = same_image_mask([0, 0, 1])
    m = 0.2
    # caption -> image: caption 0 vs B: 0.2-0.9+0.3 -> 0; caption 1 vs B: 0.2-0.5+0.4 = 0.1;
    # caption 2 vs A (cols 0, 1): 0.2-0.7+0.2 -> 0, 0.2-0.7+0.1 -> 0. Column 1 is not a bad image
    # for caption 0 although 0.8 is close to 0.9: it is the same image.
    loss, accuracy = vse_loss(sims, same, m, directions="caption")
    assert float(loss) == pytest.approx(0.1 / 3)
    assert accuracy == 1.0
    # image -> caption adds: image of col 0 (A) vs caption 2: 0.2-0.9+0.2 -> 0; col 1 vs caption 2:
    # 0.2-0.5+0.1 -> 0; col 2 (B) vs captions 0, 1: 0.2-0.7+0.3 -> 0 and 0.2-0.7+0.4 = 0.0 -> 0
    loss, _ = vse_loss(sims, same, m, directions="both")
    assert float(loss) == pytest.approx(0.1 / 3)
    # without the mask, caption 0 would pay for column 1: 0.2 - 0.9 + 0.8 = 0.1
    unmasked, _ = vse_loss(sims, np.eye(3, dtype=bool), m, directions="caption")
    assert float(unmasked) > float(loss)


def test_vse_plus_plus_keeps_only_the_hardest_bad_image():
    sims = np.array([[0.5, 0.4, 0.45], [0.0, 0.9, 0.0], [0.0, 0.0, 0.9]])
    same = same_image_mask([0, 1, 2])
    # caption 0: hinges 0.3-0.5+0.4 = 0.2 and 0.3-0.5+0.45 = 0.25; sum 0.45, hardest 0.25
    summed, _ = vse_loss(sims, same, 0.3, directions="caption")
    hardest, _ = vse_loss(sims, same, 0.3, hardest=True, directions="caption")
    assert float(summed) == pytest.approx(0.45 / 3)
    assert float(hardest) == pytest.approx(0.25 / 3)


def test_info_nce_by_hand():
    sims = np.array([[1.0, 0.0], [0.5, 0.5]])
    same = same_image_mask([0, 1])
    # caption 0: log(e^1 + e^0) - 1; caption 1: log(e^.5 + e^.5) - .5 = log 2
    caption_side = (np.log(np.e + 1) - 1 + np.log(2)) / 2
    # image 0 (column 0): log(e^1 + e^.5) - 1; image 1: log(e^0 + e^.5) - .5
    image_side = (np.log(np.e + np.exp(0.5)) - 1 + np.log(1 + np.exp(0.5)) - 0.5) / 2
    loss, accuracy = info_nce_loss(sims, same, 1.0, directions="caption")
    assert float(loss) == pytest.approx(caption_side)
    assert accuracy == 0.5  # caption 1 ties: a tie counts as wrong
    loss, _ = info_nce_loss(sims, same, 1.0)
    assert float(loss) == pytest.approx((caption_side + image_side) / 2)


def test_info_nce_leaves_same_image_captions_out_of_the_softmax():
    sims = np.array([[0.9, 0.9, 0.1], [0.9, 0.9, 0.1], [0.1, 0.1, 0.9]])
    temperature = 0.1
    loss, _ = info_nce_loss(sims, same_image_mask([0, 0, 1]), temperature, directions="caption")
    # each caption's softmax is over its own column and column 2 (or columns 0 and 1 for caption 2)
    one = np.log(np.exp(9.0) + np.exp(1.0)) - 9.0
    three = np.log(np.exp(9.0) + 2 * np.exp(1.0)) - 9.0
    assert float(loss) == pytest.approx((2 * one + three) / 3)


@pytest.mark.parametrize("loss", ["vse0", "vse++", "infonce"])
@pytest.mark.parametrize("directions", ["caption", "both"])
def test_a_batch_of_one_image_has_no_bad_images(loss, directions):
    """Every caption of one image: nothing to rank against, the loss is 0, not NaN."""
    sims = mg.tensor(np.array([[0.3, 0.9, -0.2], [0.1, 0.5, 0.4], [0.8, 0.7, 0.6]]))
    same = same_image_mask([5, 5, 5])
    if loss == "infonce":
        value, accuracy = info_nce_loss(sims, same, 0.05, directions=directions)
    else:
        value, accuracy = vse_loss(sims, same, 0.2, hardest=loss == "vse++", directions=directions)
    value.backward()
    assert float(value) == pytest.approx(0.0, abs=1e-12)
    assert accuracy == 1.0
    np.testing.assert_allclose(sims.grad, 0.0, atol=1e-12)


def random_batch(seed, n, n_images):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n_images, size=n)
    return rng.uniform(-1, 1, size=(n, n)), rows


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 7), n_images=st.integers(1, 5),
       margin=st.floats(0, 1), hardest=st.booleans(), directions=st.sampled_from(["caption", "both"]))
def test_vse_matches_numpy_reference_in_value_and_gradient(seed, n, n_images, margin, hardest, directions):
    values, rows = random_batch(seed, n, n_images)
    kink, tie = hinge_gaps(values, rows, margin)
    assume(kink > 1e-4 and (tie > 1e-4 or not hardest))
    sims = mg.tensor(values)
    loss, accuracy = vse_loss(sims, same_image_mask(rows), margin, hardest=hardest, directions=directions)
    assert float(loss) == pytest.approx(vse_reference(values, rows, margin, hardest, directions), abs=1e-12)
    loss.backward()
    expected = numeric_gradient(lambda x: vse_reference(x, rows, margin, hardest, directions), values)
    np.testing.assert_allclose(sims.grad, expected, atol=1e-7)
    beats_all = [all(values[i, i] > values[i, j] for j in range(n) if rows[j] != rows[i]) for i in range(n)]
    assert accuracy == pytest.approx(np.mean(beats_all))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 7), n_images=st.integers(1, 5),
       temperature=st.floats(0.05, 2), directions=st.sampled_from(["caption", "both"]))
def test_info_nce_matches_numpy_reference_in_value_and_gradient(seed, n, n_images, temperature, directions):
    values, rows = random_batch(seed, n, n_images)
    sims = mg.tensor(values)
    loss, _ = info_nce_loss(sims, same_image_mask(rows), temperature, directions=directions)
    assert float(loss) == pytest.approx(info_nce_reference(values, rows, temperature, directions), rel=1e-10, abs=1e-12)
    loss.backward()
    expected = numeric_gradient(lambda x: info_nce_reference(x, rows, temperature, directions), values)
    np.testing.assert_allclose(sims.grad, expected, rtol=1e-5, atol=1e-7)


def test_info_nce_is_stable_at_a_tiny_temperature():
    sims = mg.tensor(np.array([[1.0, -1.0], [0.9, 0.2]]))
    loss, _ = info_nce_loss(sims, same_image_mask([0, 1]), 1e-3)
    loss.backward()
    assert np.isfinite(float(loss)) and np.isfinite(sims.grad).all()
    # caption 1 prefers image 0 by 0.7: 700 of caption-side loss over 2 captions; the image side is ~0
    # (column 0: 1.0 against 0.9, column 1: 0.2 against -1.0); the two sides averaged
    assert float(loss) == pytest.approx(0.7 / 1e-3 / 2 / 2, rel=1e-6)


def test_in_batch_accuracy_ignores_same_image_columns():
    sims = np.array([[0.5, 0.9, 0.1], [0.9, 0.5, 0.1], [0.2, 0.3, 0.4]])
    assert in_batch_accuracy(sims, same_image_mask([0, 0, 1])) == 1.0
    assert in_batch_accuracy(sims, same_image_mask([0, 1, 2])) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "sims, same, kwargs, message",
    [
        (np.zeros((2, 3)), np.ones((2, 3), bool), {}, "square"),
        (np.zeros((0, 0)), np.ones((0, 0), bool), {}, "square"),
        (np.zeros((2, 2)), np.eye(3, dtype=bool), {}, "same_image must be a bool matrix"),
        (np.zeros((2, 2)), np.eye(2), {}, "same_image must be a bool matrix"),
        (np.zeros((2, 2)), np.zeros((2, 2), bool), {}, "True diagonal"),
        (np.array([[0.0, np.nan], [0, 0]]), np.eye(2, dtype=bool), {}, "NaN"),
        (np.zeros((2, 2)), np.eye(2, dtype=bool), {"directions": "image"}, "directions"),
    ],
)
@pytest.mark.parametrize("which", ["vse", "infonce"])
def test_in_batch_bad_input_is_a_clear_error(sims, same, kwargs, message, which):
    with pytest.raises(ValueError, match=message):
        if which == "vse":
            vse_loss(sims, same, 0.2, **kwargs)
        else:
            info_nce_loss(sims, same, 0.1, **kwargs)


@pytest.mark.parametrize("margin", [-0.1, float("nan")])
def test_vse_refuses_a_bad_margin(margin):
    with pytest.raises(ValueError, match="margin"):
        vse_loss(np.zeros((2, 2)), np.eye(2, dtype=bool), margin)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("inf")])
def test_info_nce_refuses_a_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(np.zeros((2, 2)), np.eye(2, dtype=bool), temperature)
