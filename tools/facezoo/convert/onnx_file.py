"""Writing an ONNX model to one file without holding a second copy of its weights in memory.

`onnx.save` serialises the whole model into one bytes object first, so the weights briefly exist
twice (three times, counting the serialiser's own buffer). Protobuf lets a message be written
as the concatenation of its fields in any order, so here the model without its graph, then
the graph's header fields, then each initializer are written one after another; only one
tensor is ever serialised at a time. The file is byte-for-byte a valid ModelProto.
"""
from __future__ import annotations

from pathlib import Path

import onnx

_MODEL_GRAPH_TAG = b"\x3a"  # ModelProto.graph: field 7, length-delimited
_GRAPH_INITIALIZER_TAG = b"\x2a"  # GraphProto.initializer: field 5, length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _copy_except(message, skip: str):
    """A new message of the same type with every field but `skip` (a shallow job: no big fields)."""
    copy = type(message)()
    for field, value in message.ListFields():
        if field.name == skip:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
        if repeated:
            getattr(copy, field.name).extend(value)
        elif field.message_type is not None:
            getattr(copy, field.name).CopyFrom(value)
        else:
            setattr(copy, field.name, value)
    return copy


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Write `model` to `path`, one initializer at a time."""
    head = _copy_except(model, "graph")
    graph_head = _copy_except(model.graph, "initializer")
    sizes = [t.ByteSize() for t in model.graph.initializer]
    graph_size = graph_head.ByteSize() + sum(1 + len(_varint(n)) + n for n in sizes)
    with open(path, "wb") as f:
        f.write(head.SerializeToString())
        f.write(_MODEL_GRAPH_TAG + _varint(graph_size))
        f.write(graph_head.SerializeToString())
        for tensor, size in zip(model.graph.initializer, sizes):
            f.write(_GRAPH_INITIALIZER_TAG + _varint(size))
            f.write(tensor.SerializeToString())
