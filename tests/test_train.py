import importlib
import warnings

import numpy as np
import pytest

from semsearch.coco import CocoCaptions, ImageInfo
from semsearch.dataset import CaptionedImages, join, kfold_images, split_images
from semsearch.descriptors import Descriptors
from semsearch.evaluation import evaluate
from semsearch.model import Autoembedder
from semsearch.text import TextEmbedder
from semsearch.errors import InputTypeError, TrainingError
from semsearch.training import TrainConfig, train

NOUNS = (
    "dog cat horse cow sheep bird elephant giraffe zebra bear train bus car truck boat airplane "
    "bicycle motorcycle pizza cake banana apple sandwich broccoli carrot donut kite umbrella skateboard "
    "surfboard frisbee laptop phone television clock vase toilet sink oven refrigerator bed couch chair "
    "table bench beach street kitchen bathroom field snow ocean river mountain city park"
).split()
FILLERS = "a the some two small large red white near on with in".split()


def synthetic_data(n_images=500, descriptor_dim=64, noise=0.05, seed=0):
    """Images whose descriptors are a known linear map of their captions' meaning, plus noise.

    Each image has a topic of three nouns; its five captions use the topic nouns with
    random filler words. Its descriptor is ``A @ s + noise``, where ``s`` is the mean
    se_text of its captions: a model that learns to invert ``A`` finds the image again.
    """
    rng = np.random.default_rng(seed)
    images, captions = {}, {}
    for image_id in range(1, n_images + 1):
        images[image_id] = ImageInfo(image_id, f"{image_id:012d}.jpg", "")
        topic = rng.choice(NOUNS, 3, replace=False)
        for _ in range(5):
            words = list(topic) + list(rng.choice(FILLERS, 3))
            rng.shuffle(words)
            captions[len(captions) + 1] = (image_id, " ".join(words))
    coco = CocoCaptions(images, captions)
    embedder = TextEmbedder.fit(coco.captions(coco.caption_ids))
    meaning = np.stack([embedder(coco.captions_of(i)).mean(axis=0) for i in coco.image_ids])
    mixing = rng.normal(size=(50, descriptor_dim))
    vectors = meaning @ mixing + noise * rng.normal(size=(n_images, descriptor_dim))
    descriptors = Descriptors(dict(zip(coco.image_ids, vectors)))
    return CaptionedImages(coco, descriptors), embedder


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_data()


def test_training_recovers_a_known_linear_map(synthetic):
    data, embedder = synthetic
    train_ids, held_out = split_images(data.image_ids, validation_fraction=0.2, seed=0)
    model = Autoembedder(data.descriptors.dim, seed=0)
    before = evaluate(model, data, embedder, held_out)
    history = train(model, data, embedder, train_ids, held_out, epochs=40, progress=False)
    after = evaluate(model, data, embedder, held_out)
    assert before.recall[1] < 0.2
    assert after.recall[1] >= 0.9, str(after)
    assert history.train_loss[-1] < history.train_loss[0] / 3
    assert history.val_accuracy[-1] > 0.97


def test_history_has_one_entry_per_epoch(synthetic):
    data, embedder = synthetic
    train_ids, val_ids = split_images(data.image_ids, seed=1)
    history = train(Autoembedder(data.descriptors.dim), data, embedder, train_ids, val_ids, epochs=3, progress=False)
    for values in history.as_dict().values():
        assert len(values) == 3
        assert all(np.isfinite(values))
    assert all(0 <= a <= 1 for a in history.train_accuracy + history.val_accuracy)
    no_val = train(Autoembedder(data.descriptors.dim), data, embedder, train_ids, epochs=2, progress=False)
    assert len(no_val.train_loss) == 2 and no_val.val_loss == []


@pytest.mark.parametrize("options", [{}, {"negatives": "hard", "n_candidates": 4}, {"optimizer": "adam", "learning_rate": 0.01}])
def test_same_seed_same_weights(synthetic, options):
    data, embedder = synthetic
    train_ids, _ = split_images(data.image_ids, seed=0)
    weights = []
    for seed in (5, 5, 6):
        model = Autoembedder(data.descriptors.dim, seed=0)
        train(model, data, embedder, train_ids, epochs=2, seed=seed, progress=False, **options)
        weights.append(model.dense.weight.data.copy())
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"negatives": "easy"}, "negatives"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"margin": -0.1}, "margin"),
    ],
)
def test_bad_settings_are_clear_errors(synthetic, options, message):
    data, embedder = synthetic
    with pytest.raises(ValueError, match=message):
        train(Autoembedder(data.descriptors.dim), data, embedder, data.image_ids, progress=False, **options)


def test_model_and_data_sizes_must_agree(synthetic):
    data, embedder = synthetic
    with pytest.raises(ValueError, match="64-d"):
        train(Autoembedder(512), data, embedder, data.image_ids, progress=False)
    with pytest.raises(ValueError, match="text encoder 50-d"):
        train(Autoembedder(64, 384), data, embedder, data.image_ids, progress=False)


def test_real_data_five_fold_quality(real_data):
    """The library's defaults on 239 real images with EfficientNet descriptors, 5 folds.

    A hand-written NumPy reference of the same design reaches R@1 0.24 / R@10 0.80 here;
    chance is about 0.02 / 0.21.
    """
    annotations = real_data / "coco" / "annotations"
    coco = CocoCaptions.load(annotations / "captions_val2017.json", annotations / "captions_train2017_mini.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 4,841 val2017 images have no descriptor here
        data = join(coco, Descriptors.load(real_data / "descriptors" / "effnet_lite0_coco_mini.pkl"))
    assert (len(data.image_ids), data.descriptors.dim) == (239, 1280)
    embedder = TextEmbedder.fit(coco.captions(coco.caption_ids))
    results = []
    for train_ids, val_ids in kfold_images(data.image_ids, n_folds=5, seed=0):
        assert not set(train_ids) & set(val_ids)
        model = Autoembedder(data.descriptors.dim, seed=0)
        train(model, data, embedder, train_ids, progress=False)
        results.append(evaluate(model, data, embedder, val_ids))
    recall_1 = np.mean([r.recall[1] for r in results])
    recall_10 = np.mean([r.recall[10] for r in results])
    chance_10 = np.mean([r.chance["recall@10"] for r in results])
    print(f"5-fold: R@1 {recall_1:.3f} R@10 {recall_10:.3f} (chance R@10 {chance_10:.3f}), defaults {TrainConfig()}")
    assert recall_1 >= 0.20
    assert recall_10 >= 0.75


def test_a_leftover_graph_does_not_block_training(synthetic):
    """`out = model(x)` kept alive (as in a notebook cell) locks the weights in MyGrad."""
    data, embedder = synthetic
    model = Autoembedder(data.descriptors.dim, seed=0)
    leftover = model(data.descriptors.vectors[:3])
    before = model.dense.weight.data.copy()
    train(model, data, embedder, data.image_ids, epochs=1, progress=False)
    assert not np.array_equal(model.dense.weight.data, before)
    assert leftover.shape == (3, 50)


def test_config_defaults_are_the_documented_ones():
    config = TrainConfig()
    assert (config.epochs, config.batch_size, config.learning_rate, config.momentum) == (60, 32, 1.0, 0.9)
    assert (config.optimizer, config.margin, config.negatives, config.n_candidates) == ("sgd", 0.25, "random", 10)
    assert (config.validation_fraction, config.seed) == (0.2, 0)
    assert (config.loss, config.directions, config.warmup_epochs, config.temperature) == ("triple", "both", 2, 0.2)
    assert (config.weight_decay, config.lr_schedule) == (0.0, "cosine")
    assert TrainConfig.from_dict(config.as_dict()) == config
    assert config.replace(epochs=3).epochs == 3 and config.epochs == 60


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"epochs": 2.5}, InputTypeError, "epochs must be an integer, got 2.5"),
        ({"epochs": True}, InputTypeError, "epochs must be an integer, got True"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate must be finite"),
        ({"learning_rate": "0.1"}, InputTypeError, "learning_rate must be a number"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"validation_fraction": 1.0}, ValueError, "validation_fraction must lie in"),
        ({"epoch": 3}, InputTypeError, "unknown training settings ['epoch']"),
    ],
)
def test_config_refuses_bad_values(changes, error, message):
    with pytest.raises(error) as info:
        TrainConfig().replace(**changes)
    assert message in str(info.value)


@pytest.mark.parametrize("learning_rate", [1e30, 1e38])  # embeddings overflow to zero; weights to inf/NaN
def test_diverging_training_stops_and_leaves_the_model_unchanged(synthetic, learning_rate):
    data, embedder = synthetic
    model = Autoembedder(data.descriptors.dim, seed=0)
    before = [p.data.copy() for p in model.parameters]
    with pytest.raises(TrainingError, match="diverged .* try a smaller learning rate"):
        with np.errstate(all="ignore"):
            train(model, data, embedder, data.image_ids, epochs=3, learning_rate=learning_rate, progress=False)
    for p, old in zip(model.parameters, before):
        np.testing.assert_array_equal(p.data, old)


def test_an_interrupted_training_leaves_the_model_unchanged(synthetic, monkeypatch):
    train_module = importlib.import_module("semsearch.training")

    data, embedder = synthetic
    model = Autoembedder(data.descriptors.dim, seed=0)
    before = [p.data.copy() for p in model.parameters]
    calls = []
    real_epoch = train_module.train_epoch

    def epoch_then_fail(*args, **kwargs):
        real_epoch(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_epoch", epoch_then_fail)
    with pytest.raises(KeyboardInterrupt):
        train(model, data, embedder, data.image_ids, epochs=5, progress=False)
    for p, old in zip(model.parameters, before):
        np.testing.assert_array_equal(p.data, old)


def test_training_draws_the_triples_make_triples_makes(synthetic, monkeypatch):
    """The function the notebook teaches is the one training calls each epoch."""
    data, embedder = synthetic
    drawn = []
    triples_module = importlib.import_module("semsearch.triples")
    real = triples_module.make_triples
    monkeypatch.setattr(triples_module, "make_triples", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    train(Autoembedder(data.descriptors.dim, seed=0), data, embedder, data.image_ids, epochs=3, progress=False)
    assert len(drawn) == 3
    assert all(np.all(t.good_rows != t.bad_rows) for t in drawn)


IN_BATCH = [{"loss": "vse0"}, {"loss": "vse++", "warmup_epochs": 1}, {"loss": "infonce", "temperature": 0.2},
            {"loss": "vse0", "directions": "caption", "batch_size": 128}]


@pytest.mark.parametrize("options", IN_BATCH)
def test_in_batch_losses_recover_a_known_linear_map(synthetic, options):
    data, embedder = synthetic
    train_ids, held_out = split_images(data.image_ids, validation_fraction=0.2, seed=0)
    model = Autoembedder(data.descriptors.dim, seed=0)
    history = train(model, data, embedder, train_ids, held_out, epochs=20, progress=False, **options)
    after = evaluate(model, data, embedder, held_out)
    assert after.recall[1] >= 0.85, str(after)
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] >= max(history.val_accuracy[0], 0.95)  # in-batch R@1 on held-out batches
    for values in history.as_dict().values():
        assert len(values) == 20 and all(np.isfinite(values))


@pytest.mark.parametrize("options", IN_BATCH[:3])
def test_in_batch_losses_are_deterministic_given_the_seed(synthetic, options):
    data, embedder = synthetic
    train_ids, _ = split_images(data.image_ids, seed=0)
    weights = []
    for seed in (5, 5, 6):
        model = Autoembedder(data.descriptors.dim, seed=0)
        train(model, data, embedder, train_ids, epochs=2, seed=seed, progress=False, **options)
        weights.append(model.dense.weight.data.copy())
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


def test_vse_plus_plus_is_vse0_during_its_warmup(synthetic):
    data, embedder = synthetic
    train_ids, _ = split_images(data.image_ids, seed=0)
    weights = {}
    for options in ({"loss": "vse0"}, {"loss": "vse++", "warmup_epochs": 2}, {"loss": "vse++", "warmup_epochs": 1}):
        model = Autoembedder(data.descriptors.dim, seed=0)
        train(model, data, embedder, train_ids, epochs=2, progress=False, **options)
        weights[options["loss"], options.get("warmup_epochs")] = model.dense.weight.data.copy()
    np.testing.assert_array_equal(weights["vse0", None], weights["vse++", 2])
    assert not np.array_equal(weights["vse0", None], weights["vse++", 1])


def test_a_batch_of_captions_of_one_image_trains_without_nan():
    """Two images with 5 captions each, batch 2: many batches hold two captions of one image (loss 0)."""
    data, embedder = synthetic_data(n_images=2, descriptor_dim=8, seed=3)
    model = Autoembedder(8, seed=0)
    for loss in ("vse0", "vse++", "infonce"):
        history = train(model, data, embedder, data.image_ids, epochs=3, batch_size=2, loss=loss, progress=False)
        assert all(np.isfinite(history.train_loss))


def test_in_batch_losses_train_any_mynn_model(synthetic):
    """Training goes through the model: a two-layer model without a fused path learns with VSE++."""
    from test_model import TwoLayer  # tests/ is on sys.path (rootdir conftest, no package)

    data, embedder = synthetic
    train_ids, held_out = split_images(data.image_ids, seed=0)
    model = TwoLayer(data.descriptors.dim, embedder.dim, hidden=64, seed=0)
    before = model.first.weight.data.copy()
    train(model, data, embedder, train_ids, epochs=15, loss="vse++", warmup_epochs=1, progress=False)
    assert not np.array_equal(model.first.weight.data, before)
    assert evaluate(model, data, embedder, held_out).recall[10] >= 0.9


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"loss": "contrastive"}, "loss must be one of"),
        ({"directions": "image"}, "directions must be one of"),
        ({"temperature": 0.0}, "temperature must be > 0"),
        ({"warmup_epochs": -1}, "warmup_epochs must be >= 0"),
        ({"loss": "vse0", "negatives": "hard"}, "negatives='hard' chooses the triple loss"),
        ({"loss": "infonce", "batch_size": 1}, "needs batch_size >= 2"),
    ],
)
def test_in_batch_settings_refuse_bad_values(changes, message):
    with pytest.raises(ValueError) as info:
        TrainConfig().replace(**changes)
    assert message in str(info.value)


def test_momentum_sgd_is_mynn_sgd_bit_for_bit():
    """The lean step gives exactly MyNN's SGD update, step after step."""
    import mygrad as mg
    from mynn.optimizers.sgd import SGD

    from semsearch.training import MomentumSGD

    rng = np.random.default_rng(0)
    start = [rng.normal(size=(7, 3)), rng.normal(size=(1, 3))]
    ours, theirs = [mg.tensor(a.copy()) for a in start], [mg.tensor(a.copy()) for a in start]
    a, b = MomentumSGD(ours, learning_rate=0.5, momentum=0.9), SGD(theirs, learning_rate=0.5, momentum=0.9)
    for _ in range(5):
        grads = [rng.normal(size=x.shape) for x in start]
        for params, opt in ((ours, a), (theirs, b)):
            sum(mg.sum(param * grad) for param, grad in zip(params, grads)).backward()  # param.grad = grad
            opt.step()
        for x, y in zip(ours, theirs):
            np.testing.assert_array_equal(x.data, y.data)
