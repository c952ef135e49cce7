"""EfficientNet-Lite0 as an ONNX graph, built from its PyTorch state dict without torch or onnx.

The network of ``efficientnet-lite-pytorch`` (``EfficientNet.from_name("efficientnet-lite0")``,
a fixed 224 x 224 input, TensorFlow's "same" padding computed for that size), written node
by node: a 3 x 3 stride-2 stem, 16 inverted-residual blocks (1 x 1 expansion, depthwise
k x k, 1 x 1 projection, each followed by batch norm; ReLU6 after the first two; a skip
connection when the block keeps its size), a 1 x 1 head to 1280 channels, and the global
average pool that :class:`semsearch.cnn.pooled.PooledFeatures` takes in torch. The
graph's input is ``images`` ``(B, 3, 224, 224)`` float32, its output ``descriptors``
``(B, 1280)``; ONNX Runtime fuses each batch norm and ReLU6 into its convolution.

:func:`build_efficientnet_lite0` needs only the weights as NumPy arrays
(:func:`semsearch.routes.torch_weights.read_state_dict`): the protobuf is written by
:mod:`semsearch.cnn.onnx_proto`, without the ``onnx`` package.

Example
-------
>>> state = read_state_dict(weights_file)           # doctest: +SKIP
>>> data = build_efficientnet_lite0(state)                 # doctest: +SKIP
>>> onnxruntime.InferenceSession(data).get_outputs()[0].name   # doctest: +SKIP
'descriptors'
"""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Tuple

import numpy as np

from semsearch.cnn import onnx_proto
from semsearch.errors import InputError

#: Bump when the graph changes: cached graphs of another version are rebuilt.
GRAPH_VERSION = 2
INPUT_SIZE = 224
BN_EPSILON = 1e-3  # efficientnet-lite-pytorch's batch_norm_epsilon
OPSET = 17


class Stage(NamedTuple):
    """One row of EfficientNet-Lite0's block table (``r1_k3_s11_e1_i32_o16`` ...)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    inputs: int
    outputs: int


#: EfficientNet-Lite0's stages (depth and width multipliers 1.0; first and last not scaled).
STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """(before, after) padding of TensorFlow's "same" convolution on ``size`` pixels.

    As ``Conv2dStaticSamePadding``: the output has ``ceil(size / stride)`` pixels and the
    odd pixel of padding goes after.

    >>> same_padding(224, 3, 2), same_padding(112, 5, 1), same_padding(28, 5, 2)
    ((0, 1), (2, 2), (1, 2))
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Graph:
    """Collects nodes and initializers; each method adds one layer and returns its output's name."""

    def __init__(self, state: Dict[str, np.ndarray]):
        self.state, self.used = state, set()
        self.nodes: List = []
        self.initializers: List = []

    def weight(self, name: str, shape=None) -> str:
        if name not in self.state:
            raise InputError(f"the EfficientNet-Lite0 weights lack {name}")
        array = np.asarray(self.state[name], dtype=np.float32)
        if shape is not None and array.shape != tuple(shape):
            raise InputError(f"the EfficientNet-Lite0 weight {name} has shape {array.shape}, expected {tuple(shape)}")
        self.used.add(name)
        self.initializers.append(onnx_proto.tensor(name, array))
        return name

    def node(self, op: str, inputs: List[str], output: str, **attributes) -> str:
        self.nodes.append(onnx_proto.node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, prefix: str, size: int, shape, stride: int = 1, groups: int = 1) -> str:
        kernel = shape[-1]
        before, after = same_padding(size, kernel, stride)
        weight = self.weight(f"{prefix}.weight", shape)
        return self.node("Conv", [x, weight], f"{prefix}", kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[before, before, after, after], group=groups)

    def batch_norm(self, x: str, prefix: str, channels: int) -> str:
        names = [self.weight(f"{prefix}.{p}", (channels,)) for p in ("weight", "bias", "running_mean", "running_var")]
        self.used.add(f"{prefix}.num_batches_tracked")
        return self.node("BatchNormalization", [x, *names], f"{prefix}", epsilon=BN_EPSILON)

    def relu6(self, x: str) -> str:
        return self.node("Clip", [x, "zero", "six"], f"{x}.relu6")

    def conv_bn(self, x: str, conv: str, bn: str, size: int, shape, stride: int = 1, groups: int = 1,
                activate: bool = True) -> str:
        y = self.batch_norm(self.conv(x, conv, size, shape, stride, groups), bn, shape[0])
        return self.relu6(y) if activate else y


def _block(graph: _Graph, x: str, index: int, stage: Stage, inputs: int, stride: int, size: int) -> str:
    """One inverted-residual block (MBConvBlock without squeeze-excitation); returns its output."""
    prefix = f"_blocks.{index}"
    hidden = inputs * stage.expand
    y = x
    if stage.expand != 1:
        y = graph.conv_bn(y, f"{prefix}._expand_conv", f"{prefix}._bn0", size, (hidden, inputs, 1, 1))
    y = graph.conv_bn(y, f"{prefix}._depthwise_conv", f"{prefix}._bn1", size,
                      (hidden, 1, stage.kernel, stage.kernel), stride=stride, groups=hidden)
    y = graph.conv_bn(y, f"{prefix}._project_conv", f"{prefix}._bn2", math.ceil(size / stride),
                      (stage.outputs, hidden, 1, 1), activate=False)
    if stride == 1 and inputs == stage.outputs:
        y = graph.node("Add", [y, x], f"{prefix}.add")
    return y


def build_efficientnet_lite0(state: Dict[str, np.ndarray]) -> bytes:
    """The ONNX model of EfficientNet-Lite0's pooled features, from its weights, serialised.

    Parameters
    ----------
    state : dict of str -> numpy.ndarray
        The state dict of ``EfficientNet.from_name("efficientnet-lite0")`` (names as
        ``_blocks.3._depthwise_conv.weight``); the classifier ``_fc`` is not used.

    Returns
    -------
    bytes
        A serialised ``onnx.ModelProto`` (opset 17): input ``images`` ``(B, 3, 224, 224)``
        float32, output ``descriptors`` ``(B, 1280)``.

    Raises
    ------
    InputError
        A weight is missing, has another shape, or is left over (another network's weights).
    """
    graph = _Graph(state)
    graph.initializers += [onnx_proto.tensor("zero", np.float32(0)), onnx_proto.tensor("six", np.float32(6))]
    size = INPUT_SIZE
    x = graph.conv_bn("images", "_conv_stem", "_bn0", size, (32, 3, 3, 3), stride=2)
    size = math.ceil(size / 2)
    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            inputs, stride = (stage.inputs, stage.stride) if repeat == 0 else (stage.outputs, 1)
            x = _block(graph, x, index, stage, inputs, stride, size)
            size, index = math.ceil(size / stride), index + 1
    x = graph.conv_bn(x, "_conv_head", "_bn1", size, (1280, 320, 1, 1))
    x = graph.node("GlobalAveragePool", [x], "pooled")
    graph.node("Flatten", [x], "descriptors", axis=1)
    leftover = sorted(set(state) - graph.used - {"_fc.weight", "_fc.bias"})
    if leftover:
        raise InputError(f"the weights hold {len(leftover)} tensors EfficientNet-Lite0 does not use, e.g. {leftover[:3]}")
    proto = onnx_proto.graph(
        graph.nodes, "efficientnet_lite0_pooled",
        [onnx_proto.value_info("images", onnx_proto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
        [onnx_proto.value_info("descriptors", onnx_proto.FLOAT, ["batch", 1280])],
        graph.initializers,
    )
    return onnx_proto.model(proto, OPSET, version=str(GRAPH_VERSION))
