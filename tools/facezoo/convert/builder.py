"""An ONNX graph under construction, with the static shape of every tensor and a FLOP count."""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import ConvertError
from .mxnet.symbol import Node

MAX_ELEMENTS = 2**31 - 1  # per tensor; a 640x640 RetinaFace-R50's largest holds 6.6 million


class Attrs:
    """A node's attributes, already parsed and checked (`attributes.node_attributes`); MXNet's
    "None" and an absent attribute both give the default."""

    def __init__(self, node: Node, values: dict):
        self.node = node
        self.values = values

    def get(self, key: str, default=None):
        value = self.values.get(key)
        return default if value is None else value

    def ints(self, key: str, default: tuple = ()) -> tuple[int, ...]:
        value = self.get(key, default)
        return value if isinstance(value, tuple) else (value,)

    def require(self, key: str):
        value = self.values.get(key)
        if value is None:
            raise ConvertError(f"node '{self.node.name}' ({self.node.op}): attribute '{key}' is required")
        return value


class GraphBuilder:
    """Collects ONNX nodes and initializers; knows each tensor's shape and whether it is a constant."""

    def __init__(self, dynamic: bool = False):
        # dynamic: the inputs' height and width are left open; shapes are tracked at the declared size
        self.dynamic = dynamic
        self.nodes: list[onnx.NodeProto] = []
        self.constants: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.flops = 0
        self._names: set[str] = set()

    def reserve(self, names) -> None:
        """Names that generated tensors must not take (the graph's own node names)."""
        self._names.update(names)

    def fresh(self, hint: str) -> str:
        name, i = hint, 0
        while name in self._names or name in self.shapes:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def const(self, hint: str, value: np.ndarray, exact: bool = False) -> str:
        """A constant tensor named `hint` (exactly, for a graph's own parameter) or a fresh variant."""
        name = hint if exact else self.fresh(hint)
        value = np.asarray(value)
        self.constants[name] = value
        self.shapes[name] = tuple(value.shape)
        return name

    def add(self, op_type: str, inputs: list[str], shape: tuple[int, ...], name: str | None = None,
            output: str | None = None, **attrs) -> str:
        out = output or self.fresh(name or op_type.lower())
        if math.prod(shape) > MAX_ELEMENTS:
            raise ConvertError(f"tensor '{out}' ({op_type}) would have shape {tuple(shape)}: more than "
                               f"{MAX_ELEMENTS:,} elements")
        self._names.add(out)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(f"{out}/{op_type}"), **attrs))
        self.shapes[out] = tuple(int(d) for d in shape)
        return out

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    def model(self, inputs: list[tuple[str, tuple[int, ...]]], outputs: list[str], opset: int,
              graph_name: str) -> onnx.ModelProto:
        """The finished model. Constants move into it one by one (the builder is empty afterwards),
        so the weights exist once in the model and never twice in this process. A dynamic model's
        inputs have open height and width (named `height`, `width`); its outputs, an open shape."""
        def input_dims(shape: tuple[int, ...]) -> list:
            return [*shape[:2], "height", "width"] if self.dynamic else list(shape)

        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, input_dims(s)) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None if self.dynamic else list(self.shapes[n]))
             for n in outputs])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="facezoo", producer_version="0.1")
        del graph  # make_model copied it; the initializers go straight into the model's own graph
        model.ir_version = 10
        for name in list(self.constants):
            model.graph.initializer.append(numpy_helper.from_array(self.constants.pop(name), name))
        return model
