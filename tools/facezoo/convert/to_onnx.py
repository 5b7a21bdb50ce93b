"""An MXNet checkpoint (symbol + params) translated to an ONNX model, with input preprocessing."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx

from facezoo.registry import Conversion

from .attributes import node_attributes
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


MAX_INPUT_ELEMENTS = 1 << 28  # per declared input: 1 GiB of float32


def strip_prefixes(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`arg:`/`aux:` prefixes dropped from checkpoint names; two arrays that then share a name are an error."""
    out: dict[str, np.ndarray] = {}
    original: dict[str, str] = {}
    for key, value in params.items():
        name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
        if name in out:
            raise ConvertError(f"the .params file holds both '{original[name]}' and '{key}'; a variable has "
                               f"one value")
        out[name] = value
        original[name] = key
    return out


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_conversion(conversion: Conversion, where: str) -> None:
    """The conversion settings of model.yml (`where` names it): input names and shapes, mean and
    scale values. Raises ConvertError naming the field."""
    names = [i.name for i in conversion.inputs]
    if not names:
        raise ConvertError(f"{where}: conversion.inputs is empty")
    for k, spec in enumerate(conversion.inputs):
        field = f"{where}: conversion.inputs[{k}]"
        if names.count(spec.name) > 1:
            raise ConvertError(f"{field}.name: input '{spec.name}' is declared twice")
        if not spec.shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in spec.shape):
            raise ConvertError(f"{field}.shape: {list(spec.shape)} must be positive integers")
        if len(spec.shape) != 4:
            raise ConvertError(f"{field}.shape: {list(spec.shape)} is not N, C, H, W (layout NCHW)")
        if math.prod(spec.shape) > MAX_INPUT_ELEMENTS:
            raise ConvertError(f"{field}.shape: {list(spec.shape)} has more than {MAX_INPUT_ELEMENTS:,} elements")
    for key in ("mean_values", "scale_values"):
        values = getattr(conversion, key)
        if values is None:
            continue
        if not values:
            raise ConvertError(f"{where}: conversion.{key} is empty (omit it instead)")
        for k, v in enumerate(values):
            if not _finite_number(v):
                raise ConvertError(f"{where}: conversion.{key}[{k}]: {v!r} is not a finite number")
            if key == "scale_values" and v == 0:
                raise ConvertError(f"{where}: conversion.{key}[{k}]: 0 would divide by zero")


def _output_nodes(symbol: Symbol, conversion: Conversion) -> list[tuple[int, int]]:
    """The (node, output) pairs the ONNX model returns: conversion.outputs or the graph's heads,
    without conversion.drop_outputs."""
    by_name = {n.name: n.index for n in symbol.nodes}
    if conversion.outputs:
        missing = [o for o in conversion.outputs if o not in by_name]
        if missing:
            raise ConvertError(f"conversion.outputs: {missing[0]!r} is not a node of {symbol.path.name}")
        chosen = [(by_name[o], 0) for o in conversion.outputs]
    else:
        chosen = list(symbol.heads)
    heads = {symbol.nodes[i].name for i, _ in chosen}
    for name in conversion.drop_outputs:
        if name not in heads:
            raise ConvertError(f"conversion.drop_outputs: {name!r} is not an output of {symbol.path.name}")
    kept = [(i, k) for i, k in chosen if symbol.nodes[i].name not in conversion.drop_outputs]
    if not kept:
        raise ConvertError(f"conversion.drop_outputs: no output of {symbol.path.name} is left")
    for n, (i, _) in enumerate(kept):
        node = symbol.nodes[i]
        if node.op == "null":
            raise ConvertError(f"{symbol.path.name}: output '{node.name}' is a variable, not an operator")
        if any(j == i for j, _ in kept[:n]):
            raise ConvertError(f"{symbol.path.name}: node '{node.name}' is listed twice among the outputs")
    return kept


def _reachable(symbol: Symbol, outputs: list[int]) -> set[int]:
    seen, stack = set(), list(outputs)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(j for j, _ in symbol.nodes[i].inputs)
    return seen


def check_graph(symbol: Symbol, params: dict[str, np.ndarray], declared: dict[str, tuple[int, ...]],
                needed: set[int]) -> dict[int, dict]:
    """Everything about the graph that can be known before building it: each needed operator is
    supported and its attributes valid; each needed variable is a declared input or a parameter;
    each declared input and each parameter is a variable of the graph. Returns the parsed
    attributes of the needed operators."""
    where = symbol.path.name
    variables = {n.name for n in symbol.nodes if n.op == "null"}
    for name in declared:
        if name not in variables:
            raise ConvertError(f"{where}: conversion input '{name}' is not a variable of the graph")
    extra = sorted(set(params) - variables)
    if extra:
        raise ConvertError(f"the .params file holds {len(extra)} array(s) that are not variables of {where}: "
                           f"{', '.join(extra[:5])}{', ...' if len(extra) > 5 else ''}")
    attrs = {}
    for node in symbol.nodes:
        if node.index not in needed:
            continue
        if node.op != "null":
            attrs[node.index] = node_attributes(node, where)
        elif node.name not in declared and node.name in params and params[node.name].ndim == 0:
            raise ConvertError(f"{where}: parameter '{node.name}' is a 0-d scalar; a checkpoint's parameters "
                               f"have at least one dimension")
        elif node.name not in declared and node.name not in params:
            users = [n.name for n in symbol.nodes if any(j == node.index for j, _ in n.inputs)]
            raise ConvertError(f"{where}: node '{node.name}' (input of '{users[0] if users else '?'}') "
                               f"is neither in the .params file nor a declared input ({', '.join(declared)})")
    return attrs


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
                  graph_name: str = "model", dynamic: bool = False) -> tuple[onnx.ModelProto, GraphReport]:
    """Translate the part of the graph the outputs need. The ONNX model takes the converted input
    (BGR when reverse_input_channels is set, before mean/scale) under the original input name.
    `dynamic`: the inputs' height and width are open (shapes are checked at the declared size);
    a graph that needs a fixed size (a fully connected layer, a reshape ONNX cannot express
    without sizes) is refused."""
    check_conversion(conversion, graph_name)
    params = strip_prefixes(params)
    declared = {i.name: tuple(i.shape) for i in conversion.inputs}
    outputs = _output_nodes(symbol, conversion)
    needed = _reachable(symbol, [i for i, _ in outputs])
    attrs = check_graph(symbol, params, declared, needed)
    b = GraphBuilder(dynamic)
    b.reserve(n.name for n in symbol.nodes)
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
            else:
                value = params[node.name]
                if value.dtype != np.float32:
                    value = value.astype(np.float32)
                tensors[(node.index, 0)] = b.const(node.name, value, exact=True)
                used_params.add(node.name)
            continue
        inputs = []
        for j, k in node.inputs:
            if (j, k) not in tensors:
                raise ConvertError(f"{symbol.path.name}: node '{node.name}' uses output {k} of "
                                   f"'{symbol.nodes[j].name}', which does not exist")
            inputs.append(tensors[(j, k)])
        results = OPS[node.op](b, node, inputs, Attrs(node, attrs[node.index]))
        for k, tensor in enumerate(results):
            tensors[(node.index, k)] = tensor
        op_counts[node.op] += 1
    missing = [(i, k) for i, k in outputs if (i, k) not in tensors]
    if missing:
        i, k = missing[0]
        raise ConvertError(f"{symbol.path.name}: output {k} of node '{symbol.nodes[i].name}' is listed as a "
                           f"graph output but does not exist")
    out_names = [tensors[pair] for pair in outputs]
    report = GraphReport(
        inputs=declared, outputs={n: b.shape(n) for n in out_names}, ops=dict(sorted(op_counts.items())),
        parameters=int(sum(params[n].size for n in used_params)), gflops=b.flops / 1e9)
    del params, tensors
    return b.model(list(declared.items()), out_names, OPSET, graph_name), report
