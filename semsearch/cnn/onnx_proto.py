"""The few ONNX protobuf messages a convolutional graph needs, written without the ``onnx`` package.

ONNX models are protocol buffers (``onnx.proto``). A graph of Conv, BatchNormalization,
Clip, Add, GlobalAveragePool and Flatten nodes with float32 weights needs only seven of its
messages; this module writes them field by field (varints, length-prefixed fields, fixed32
floats), so ONNX Runtime can run a graph semsearch builds without the 30 MB ``onnx`` package.
The tests check what it writes with ``onnx.checker`` where ``onnx`` is installed.

Example
-------
>>> nodes = [node("Relu", ["x"], ["y"])]
>>> inputs, outputs = [value_info("x", FLOAT, ["batch", 4])], [value_info("y", FLOAT, ["batch", 4])]
>>> data = model(graph(nodes, "tiny", inputs, outputs, []), opset=17)
>>> data[:2]
b'\\x08\\x08'
"""
from __future__ import annotations

import struct
from typing import Iterable, List, Sequence, Union

import numpy as np

#: TensorProto.DataType values used here.
FLOAT, INT64 = 1, 7
_ATTRIBUTE_FLOAT, _ATTRIBUTE_INT, _ATTRIBUTE_INTS = 1, 2, 7
IR_VERSION = 8  # what ONNX Runtime 1.14 and later read


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement, as protobuf writes negative numbers
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(int(value))


def _bytes(field: int, value: Union[bytes, str]) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _key(field, 2) + _varint(len(data)) + data


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def attribute(name: str, value: Union[int, float, Sequence[int]]) -> bytes:
    """An AttributeProto: an int, a float or a list of ints."""
    if isinstance(value, float):
        body = _float(2, value) + _int(20, _ATTRIBUTE_FLOAT)
    elif isinstance(value, (int, np.integer)):
        body = _int(3, value) + _int(20, _ATTRIBUTE_INT)
    else:
        body = b"".join(_int(8, v) for v in value) + _int(20, _ATTRIBUTE_INTS)
    return _bytes(1, name) + body


def node(op: str, inputs: Iterable[str], outputs: Iterable[str], name: str = "", **attributes) -> bytes:
    """A NodeProto of the default domain."""
    return (b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
            + _bytes(3, name or next(iter(outputs))) + _bytes(4, op)
            + b"".join(_bytes(5, attribute(k, v)) for k, v in sorted(attributes.items())))


def tensor(name: str, array: np.ndarray) -> bytes:
    """A TensorProto of a float32 or int64 array, its bytes little-endian in ``raw_data``."""
    array = np.asarray(array)
    kind = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}[array.dtype]
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    return b"".join(_int(1, d) for d in array.shape) + _int(2, kind) + _bytes(8, name) + _bytes(9, raw)


def value_info(name: str, elem_type: int, shape: Sequence[Union[int, str]]) -> bytes:
    """A ValueInfoProto of a tensor; a str in ``shape`` is a named (free) dimension."""
    dims = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in shape)
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def graph(nodes: List[bytes], name: str, inputs: List[bytes], outputs: List[bytes], initializers: List[bytes]) -> bytes:
    """A GraphProto."""
    return (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, name)
            + b"".join(_bytes(5, t) for t in initializers)
            + b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs))


def model(graph_proto: bytes, opset: int, producer: str = "semsearch", version: str = "") -> bytes:
    """A serialised ModelProto, as ``onnx.ModelProto.SerializeToString()`` gives and ONNX Runtime reads."""
    return (_int(1, IR_VERSION) + _bytes(2, producer) + _bytes(3, version) + _bytes(7, graph_proto)
            + _bytes(8, _bytes(1, "") + _int(2, opset)))
