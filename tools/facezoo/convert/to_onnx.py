"""An MXNet checkpoint (symbol + params) translated to an ONNX model, with input preprocessing."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx

from facezoo.registry import Conversion

from .builder import Attrs, GraphBuilder
from .errors import ConvertError
from .mxnet.symbol import Symbol
from .ops import OPS

OPSET = 18


@dataclass(frozen=True)
class GraphReport:
    """What a conversion produced: inputs, outputs, operator counts, parameters, GFLOPs."""

    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    ops: dict[str, int]
    parameters: int
    gflops: float


def strip_prefixes(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`arg:`/`aux:` prefixes dropped from checkpoint names."""
    out = {}
    for key, value in params.items():
        name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
        out[name] = value
    return out


def _output_nodes(symbol: Symbol, conversion: Conversion) -> list[int]:
    by_name = {n.name: n.index for n in symbol.nodes}
    if conversion.outputs:
        missing = [o for o in conversion.outputs if o not in by_name]
        if missing:
            raise ConvertError(f"conversion.outputs: {missing[0]!r} is not a node of {symbol.path.name}")
        chosen = [by_name[o] for o in conversion.outputs]
    else:
        chosen = [h[0] for h in symbol.heads]
    heads = {symbol.nodes[i].name for i in chosen}
    for name in conversion.drop_outputs:
        if name not in heads:
            raise ConvertError(f"conversion.drop_outputs: {name!r} is not an output of {symbol.path.name}")
    return [i for i in chosen if symbol.nodes[i].name not in conversion.drop_outputs]


def _reachable(symbol: Symbol, outputs: list[int]) -> set[int]:
    seen, stack = set(), list(outputs)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(j for j, _ in symbol.nodes[i].inputs)
    return seen


def _preprocess(b: GraphBuilder, name: str, shape: tuple[int, ...], conversion: Conversion) -> str:
    tensor = name
    channels = shape[1]
    if conversion.reverse_input_channels:
        if channels != 3:
            raise ConvertError(f"conversion.reverse_input_channels: input {name!r} has {channels} channels, not 3")
        tensor = b.add("Gather", [tensor, b.const(f"{name}_bgr_to_rgb", np.array([2, 1, 0], np.int64))], shape,
                       name=f"{name}_rgb", axis=1)
    for key, op in (("mean_values", "Sub"), ("scale_values", "Div")):
        values = getattr(conversion, key)
        if values is None:
            continue
        if len(values) not in (1, channels):
            raise ConvertError(f"conversion.{key}: expected 1 or {channels} values, found {len(values)}")
        const = np.array(values, np.float32).reshape((1, len(values), 1, 1))
        tensor = b.add(op, [tensor, b.const(f"{name}_{key[:-7]}", const)], shape, name=f"{name}_{key[:-7]}ed")
    return tensor


def mxnet_to_onnx(symbol: Symbol, params: dict[str, np.ndarray], conversion: Conversion,
                  graph_name: str = "model") -> tuple[onnx.ModelProto, GraphReport]:
    """Translate the part of the graph the outputs need. The ONNX model takes the converted input
    (BGR when reverse_input_channels is set, before mean/scale) under the original input name."""
    params = strip_prefixes(params)
    declared = {i.name: tuple(i.shape) for i in conversion.inputs}
    outputs = _output_nodes(symbol, conversion)
    needed = _reachable(symbol, outputs)
    b = GraphBuilder()
    for name, shape in declared.items():
        b.shapes[name] = shape
    tensors: dict[tuple[int, int], str] = {}
    used_params: set[str] = set()
    op_counts: Counter = Counter()
    for node in symbol.nodes:
        if node.index not in needed:
            continue
        if node.op == "null":
            if node.name in declared:
                tensors[(node.index, 0)] = _preprocess(b, node.name, declared[node.name], conversion)
            elif node.name in params:
                value = params[node.name]
                if value.dtype != np.float32:
                    value = value.astype(np.float32)
                tensors[(node.index, 0)] = b.const(node.name, value)
                used_params.add(node.name)
            else:
                users = [n.name for n in symbol.nodes if any(j == node.index for j, _ in n.inputs)]
                raise ConvertError(f"{symbol.path.name}: node '{node.name}' (input of '{users[0] if users else '?'}') "
                                   f"is neither in the .params file nor a declared input "
                                   f"({', '.join(declared)})")
            continue
        handler = OPS.get(node.op)
        if handler is None:
            raise ConvertError(f"{symbol.path.name}: node '{node.name}': operator '{node.op}' is not supported "
                               f"(supported: {', '.join(sorted(OPS))})")
        inputs = []
        for j, k in node.inputs:
            if (j, k) not in tensors:
                raise ConvertError(f"{symbol.path.name}: node '{node.name}' uses output {k} of "
                                   f"'{symbol.nodes[j].name}', which does not exist")
            inputs.append(tensors[(j, k)])
        results = handler(b, node, inputs, Attrs(node))
        for k, tensor in enumerate(results):
            tensors[(node.index, k)] = tensor
        op_counts[node.op] += 1
    out_names = [tensors[(i, 0)] for i in outputs]
    report = GraphReport(
        inputs=declared, outputs={n: b.shape(n) for n in out_names}, ops=dict(sorted(op_counts.items())),
        parameters=int(sum(params[n].size for n in used_params)), gflops=b.flops / 1e9)
    del params, tensors
    return b.model(list(declared.items()), out_names, OPSET, graph_name), report
