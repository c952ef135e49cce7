"""A student changes a team task where it lives, and that change is what runs.

Each test makes the change as a student would (a subclass, a patched or edited function) and
checks that training, the image database, evaluation and search all run it, on the embedded
sample (154 real COCO images), so no data folder is needed.
"""
from __future__ import annotations

import importlib

import mygrad as mg
import numpy as np
import pytest
from mygrad.nnet.activations import relu

from semsearch import sample
from semsearch.common.vectors import l2_normalize_rows
from semsearch.database import ImageDatabase
from semsearch.evaluation import evaluate
from semsearch.model import Autoembedder
from semsearch.routes.benchmark import SearchAdapter
from semsearch.text import TextEmbedder
from semsearch.training import train

EPOCHS = 3


@pytest.fixture(scope="module")
def sample_data():
    data = sample.load()
    text_encoder = sample.text_encoder()
    ids = data.image_ids
    return data, text_encoder, ids[:120], ids[120:]


class ReluEmbedder(Autoembedder):
    """The student's change: a ReLU after the dense layer."""

    def __call__(self, descriptors):
        return l2_normalize_rows(relu(self.dense(self.check_input(descriptors))))


class PlainReluModel:
    """The same forward written from scratch (no fast path anywhere): the autodiff-only reference."""

    def __init__(self, like: Autoembedder):
        self.dense = like.dense
        self.input_dim, self.output_dim = like.input_dim, like.output_dim

    def __call__(self, descriptors):
        return l2_normalize_rows(relu(self.dense(np.asarray(descriptors, dtype=np.float32))))

    @property
    def parameters(self):
        return self.dense.parameters


def trained(model, sample_data, **kwargs):
    data, text_encoder, train_ids, val_ids = sample_data
    history = train(model, data, text_encoder, train_ids, val_ids, epochs=EPOCHS, progress=False, **kwargs)
    return model, history


def test_a_relu_in_the_forward_pass_is_what_trains(sample_data, capsys):
    student, history = trained(ReluEmbedder(1280, seed=0), sample_data)
    assert "forward pass differs from its fused fast path" in capsys.readouterr().err
    reference, reference_history = trained(PlainReluModel(Autoembedder(1280, seed=0)), sample_data)
    default, _ = trained(Autoembedder(1280, seed=0), sample_data)
    assert capsys.readouterr().err == ""  # the default model keeps its fast path, silently
    np.testing.assert_allclose(student.dense.weight.data, reference.dense.weight.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.val_accuracy, reference_history.val_accuracy, atol=1e-6)
    assert np.abs(student.dense.weight.data - default.dense.weight.data).max() > 1e-3


def test_a_relu_in_the_forward_pass_is_what_the_database_and_evaluation_run(sample_data):
    data, text_encoder, _, val_ids = sample_data
    student = ReluEmbedder(1280, seed=3)
    default = Autoembedder(1280, seed=3)  # the same weights, without the ReLU
    x = data.descriptors.vectors
    expected = l2_normalize_rows(np.maximum(x @ student.dense.weight.data + student.dense.bias.data, 0))
    database = ImageDatabase.build(student, data.descriptors, text_encoder)
    np.testing.assert_allclose(database.vectors, expected, atol=1e-5)
    assert np.abs(ImageDatabase.build(default, data.descriptors, text_encoder).vectors - expected).max() > 1e-2
    scores = evaluate(student, data, text_encoder, val_ids)
    assert scores == evaluate(PlainReluModel(student), data, text_encoder, val_ids)
    assert scores != evaluate(default, data, text_encoder, val_ids)
    adapter = SearchAdapter(student, text_encoder)  # what the course's benchmark runs
    np.testing.assert_allclose(adapter.embed_images(x[:5]), expected[:5], atol=1e-5)


def test_a_loss_that_is_not_a_function_of_the_gap_trains_through_autodiff(sample_data, capsys):
    from semsearch.loss import loss_accuracy

    def weighted(sim_good, sim_bad, margin):  # a student's loss that also rewards sim_good alone
        loss, accuracy = loss_accuracy(sim_good, sim_bad, margin)
        return loss - 0.1 * mg.mean(sim_good), accuracy

    class Autodiff(Autoembedder):
        similarity_gap = None

    fast, _ = trained(Autoembedder(1280, seed=0), sample_data, loss_accuracy=weighted)
    assert "loss_accuracy is not a function of sim_good - sim_bad" in capsys.readouterr().err
    slow, _ = trained(Autodiff(1280, seed=0), sample_data, loss_accuracy=weighted)
    np.testing.assert_allclose(fast.dense.weight.data, slow.dense.weight.data, atol=1e-6)


def test_training_calls_the_loss_in_semsearch_loss_at_every_step(sample_data, monkeypatch):
    """Patch (or edit) semsearch.loss.loss_accuracy: that is what trains."""
    loss_module = importlib.import_module("semsearch.loss")
    original = loss_module.loss_accuracy
    calls = []

    def halved(sim_good, sim_bad, margin):  # a student's edit: half the loss
        calls.append(len(sim_good))
        loss, accuracy = original(sim_good, sim_bad, margin)
        return loss * 0.5, accuracy

    default, default_history = trained(Autoembedder(1280, seed=0), sample_data)
    monkeypatch.setattr(loss_module, "loss_accuracy", halved)
    edited, edited_history = trained(Autoembedder(1280, seed=0), sample_data)
    data, _, train_ids, val_ids = sample_data
    n_captions, n_validation = len(data.split(train_ids).caption_texts), len(data.split(val_ids).caption_texts)
    batches = [32] * (n_captions // 32) + ([n_captions % 32] if n_captions % 32 else [])
    probe = [16, 16]  # depends_only_on_gap tries the loss once on each form before training
    assert sorted(calls) == sorted(probe + EPOCHS * (batches + [n_validation]))  # every step, and validation
    assert edited_history.train_loss[0] < 0.75 * default_history.train_loss[0]  # the halved loss is what was recorded
    assert np.abs(edited.dense.weight.data - default.dense.weight.data).max() > 1e-4


def test_a_team_passes_its_own_loss_and_triples(sample_data):
    seen = {"loss": 0, "triples": 0}
    from semsearch.loss import loss_accuracy as library_loss
    from semsearch.triples import make_triples as library_triples

    def my_loss(sim_good, sim_bad, margin):
        seen["loss"] += 1
        return library_loss(sim_good, sim_bad, margin)

    def my_triples(split, **kwargs):
        seen["triples"] += 1
        return library_triples(split, **kwargs)

    mine, history = trained(Autoembedder(1280, seed=0), sample_data, loss_accuracy=my_loss, make_triples=my_triples)
    default, default_history = trained(Autoembedder(1280, seed=0), sample_data)
    assert seen["triples"] == EPOCHS + 1  # each epoch, and the validation triples once
    assert seen["loss"] > EPOCHS
    np.testing.assert_array_equal(mine.dense.weight.data, default.dense.weight.data)  # same functions, same run
    assert history.val_accuracy == default_history.val_accuracy


def test_a_changed_se_text_changes_the_databases_queries(sample_data, monkeypatch):
    data, text_encoder, _, _ = sample_data
    database = ImageDatabase.build(Autoembedder(1280, seed=0), data.descriptors, text_encoder)
    ids, scores = database.query("a dog on the grass", k=len(data.image_ids))
    original = TextEmbedder.__call__
    monkeypatch.setattr(TextEmbedder, "__call__", lambda self, texts: -original(self, texts))  # an edit in text.py
    reversed_ids, reversed_scores = database.query("a dog on the grass", k=len(data.image_ids))
    np.testing.assert_allclose(reversed_scores, -scores[::-1], atol=1e-6)
    assert reversed_ids[0] == ids[-1] and reversed_ids[-1] == ids[0]


def test_the_fast_path_and_autodiff_train_the_default_model_alike(sample_data):
    """The fused fast path is a speed-up only: the default model trains as through autodiff."""

    class Autodiff(Autoembedder):
        similarity_gap = None  # no fast path: training differentiates __call__

    fast, fast_history = trained(Autoembedder(1280, seed=0), sample_data)
    slow, slow_history = trained(Autodiff(1280, seed=0), sample_data)
    np.testing.assert_allclose(fast.dense.weight.data, slow.dense.weight.data, atol=1e-5)
    np.testing.assert_allclose(fast_history.train_loss, slow_history.train_loss, rtol=1e-5)


def test_mygrad_is_what_the_forward_runs_on():
    out = ReluEmbedder(4, 3, seed=0)(np.eye(4, dtype=np.float32))
    assert isinstance(out, mg.Tensor) and out.shape == (4, 3)


def test_a_model_folder_keeps_weights_and_is_loaded_by_naming_the_class(sample_data, tmp_path):
    from semsearch.bundle import load_bundle, save_bundle

    data, text_encoder, _, _ = sample_data
    student = ReluEmbedder(1280, seed=5)
    save_bundle(tmp_path / "mine", student, text_encoder, ImageDatabase.build(student, data.descriptors, text_encoder))
    loaded, _, database = load_bundle(tmp_path / "mine", model_class=ReluEmbedder)
    assert type(loaded) is ReluEmbedder
    x = data.descriptors.vectors[:4]
    np.testing.assert_allclose(loaded.embed(x), student.embed(x), atol=1e-6)
    np.testing.assert_allclose(database.vectors[:4], student.embed(x), atol=1e-5)
    plain, _, _ = load_bundle(tmp_path / "mine")  # the same weights under the default forward
    assert type(plain) is Autoembedder and np.abs(plain.embed(x) - student.embed(x)).max() > 1e-2
    with pytest.raises(TypeError, match="model_class must be a model class with a load"):
        load_bundle(tmp_path / "mine", model_class=dict)
