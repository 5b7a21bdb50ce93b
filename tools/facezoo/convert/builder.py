"""An ONNX graph under construction, with the static shape of every tensor and a FLOP count."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import ConvertError
from .mxnet.symbol import Node, parse_value


class Attrs:
    """A node's attribute strings, parsed on demand."""

    def __init__(self, node: Node):
        self.node = node

    def get(self, key: str, default=None):
        return parse_value(self.node.attrs[key]) if key in self.node.attrs else default

    def ints(self, key: str, default: tuple = ()) -> tuple[int, ...]:
        value = self.get(key, default)
        if value is None or value == ():
            return tuple(default)
        return tuple(int(v) for v in (value if isinstance(value, tuple) else (value,)))

    def require(self, key: str):
        if key not in self.node.attrs:
            raise ConvertError(f"node '{self.node.name}' ({self.node.op}): attribute '{key}' is required")
        return self.get(key)


class GraphBuilder:
    """Collects ONNX nodes and initializers; knows each tensor's shape and whether it is a constant."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.constants: dict[str, np.ndarray] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.flops = 0
        self._names: set[str] = set()

    def fresh(self, hint: str) -> str:
        name, i = hint, 0
        while name in self._names or name in self.shapes:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def const(self, hint: str, value: np.ndarray) -> str:
        name = self.fresh(hint)
        value = np.asarray(value)
        self.constants[name] = value
        self.shapes[name] = tuple(value.shape)
        return name

    def add(self, op_type: str, inputs: list[str], shape: tuple[int, ...], name: str | None = None,
            output: str | None = None, **attrs) -> str:
        out = output or self.fresh(name or op_type.lower())
        self._names.add(out)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(f"{out}/{op_type}"), **attrs))
        self.shapes[out] = tuple(int(d) for d in shape)
        return out

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    def model(self, inputs: list[tuple[str, tuple[int, ...]]], outputs: list[str], opset: int,
              graph_name: str) -> onnx.ModelProto:
        """The finished model. Constants move into it one by one (the builder is empty afterwards),
        so the weights exist once in the model and never twice in this process."""
        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(self.shapes[n])) for n in outputs])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="facezoo", producer_version="0.1")
        del graph  # make_model copied it; the initializers go straight into the model's own graph
        model.ir_version = 10
        for name in list(self.constants):
            model.graph.initializer.append(numpy_helper.from_array(self.constants.pop(name), name))
        return model
