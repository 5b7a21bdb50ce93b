"""The converter's readers and graph checks under arbitrary input: a result or ConvertError, never
another exception. Inputs are the real MobileFace V3 checkpoint mutated (bytes replaced, cut,
spliced; JSON values replaced), or generated: symbol graphs of random operators, attributes and
edges translated all the way to ONNX, and .params files of random arrays."""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import shared_path
from facezoo.convert.attributes import SPECS, Attr, parse_attr
from facezoo.convert.errors import ConvertError
from facezoo.convert.mxnet.ndarray_file import DTYPES, encode_ndarray_file, parse_ndarray_bytes
from facezoo.convert.mxnet.symbol import parse_symbol
from facezoo.convert.to_onnx import mxnet_to_onnx
from facezoo.registry import Conversion, InputSpec

SOURCE = ("data", "mirror", "mobileface-identification-v3")
SYMBOL, PARAMS = Path("m-symbol.json"), Path("m-0000.params")
REAL_CONVERSION = Conversion("s", "p", (InputSpec("data", (1, 3, 112, 112), "NCHW", "RGB"),),
                             reverse_input_channels=True, outputs=("batchnorm0",))


@cache
def real() -> tuple[bytes, bytes, dict]:
    folder = shared_path(*SOURCE)
    symbol = (folder / "MobileFace_Identification_V3-symbol.json").read_bytes()
    params = (folder / "MobileFace_Identification_V3-0000.params").read_bytes()
    return symbol, params, parse_ndarray_bytes(params, PARAMS)


def mutated(data: bytes, edits: list[tuple[int, bytes]], cut: int | None) -> bytes:
    """`data` with each (position, bytes) written over it, then cut at `cut` when given."""
    out = bytearray(data)
    for at, patch in edits:
        at %= max(len(out), 1)
        out[at:at + len(patch)] = patch
    return bytes(out[:cut] if cut is not None else out)


edits = st.lists(st.tuples(st.integers(0, 1 << 24), st.binary(min_size=1, max_size=8)), max_size=6)
cuts = st.none() | st.integers(0, 1 << 24)


def _convert_or_refuse(text: str, params: dict, conversion: Conversion) -> None:
    try:
        mxnet_to_onnx(parse_symbol(text, SYMBOL), params, conversion)
    except ConvertError:
        pass


@given(edits, cuts)
def test_mutated_symbol_json_converts_or_is_refused(patches, cut):
    symbol, _, params = real()
    _convert_or_refuse(mutated(symbol, patches, cut).decode("utf-8", "replace"), params, REAL_CONVERSION)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=10)
    | st.sampled_from(["(3, 3)", "(3.5, 3)", "4.7", "0", "-1", "(0, -1)", "(-1, -1)", "None", "True", "nan",
                       "1e999", "(2147483648,)", "(3L, 3L)", "[1,2]", "((1,2),)", "prelu", "rrelu", "channel"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def _locations(doc, at=()):
    yield at
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _locations(v, at + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _locations(v, at + (i,))


@given(st.data())
def test_symbol_json_with_a_value_replaced_converts_or_is_refused(data):
    symbol, _, params = real()
    doc = json.loads(symbol)
    where = data.draw(st.sampled_from(list(_locations(doc))))
    value = data.draw(JSON_VALUES)
    edited = copy.deepcopy(doc)
    if where:
        target = edited
        for part in where[:-1]:
            target = target[part]
        target[where[-1]] = value
    else:
        edited = value
    _convert_or_refuse(json.dumps(edited), params, REAL_CONVERSION)


BY_KIND = {
    "int": st.sampled_from(["1", "2", "3", "0", "-1", "4"]),
    "ints": st.sampled_from(["(1, 1)", "(3, 3)", "(2, 2)", "(0, 0)", "(1,)", "(3, 3, 3)", "(2, 1)", "(8, 8)",
                             "(0, 2, 3, 1)", "(1, 0)", "()"]),
    "reshape": st.sampled_from(["(0, -1)", "(0, 2, -1, 0)", "(-2,)", "(-3, 0)", "(0, -4, 2, -1, 0)", "(1, 128)",
                                "(-1,)", "(0, 0, 0, 0)"]),
    "bool": st.sampled_from(["True", "False", "1", "0"]),
    "float": st.sampled_from(["0.5", "1e-5", "0", "-2", "1"]),
    "str": st.sampled_from(["relu", "prelu", "leaky", "elu", "sigmoid", "max", "avg", "full", "valid", "channel",
                            "instance", "spatial", "nearest", "NCHW", "training"]),
}
PLAUSIBLE = st.one_of(*BY_KIND.values())
HOSTILE = st.sampled_from(["None", "nan", "1e999", "(3.5, 3)", "4.7", "-5", "(2147483648,)", "", "((1,2),)"]) | \
    st.text(max_size=8)


def attr_text(attr: Attr):
    """Mostly a value of the attribute's kind (or one of its choices), sometimes anything."""
    typed = st.sampled_from([str(c) for c in attr.choices]) if attr.choices else BY_KIND[attr.kind]
    return st.one_of(typed, typed, typed, PLAUSIBLE, HOSTILE)


@st.composite
def graphs(draw):
    """A symbol document of random supported operators over a 1x2x8x8 input, each fed by the input or
    an earlier operator and by new variables (random shapes, sometimes the ones the operator needs),
    and parameters for those variables."""
    nodes = [{"op": "null", "name": "data", "inputs": []}]
    feeds = [0]  # the input and the operators so far
    params: dict[str, np.ndarray] = {}
    for k in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(sorted(SPECS)))
        low, high = SPECS[op].inputs
        inputs = [[draw(st.sampled_from(feeds)), 0, 0]]
        for j in range(draw(st.integers(max(low - 1, 0), min(high - 1, 5)))):
            name = f"n{k}_p{j}"
            nodes.append({"op": "null", "name": name, "inputs": []})
            shape = tuple(draw(st.lists(st.integers(0, 4), min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=4)))
            params[f"arg:{name}"] = np.full(shape, draw(st.floats(-2, 2)), np.float32)
            inputs.append([len(nodes) - 1, 0, 0])
        spec = SPECS[op].attrs
        required = [key for key, attr in spec.items() if attr.required]
        keys = required + draw(st.lists(st.sampled_from(sorted(spec) or ["x"]), max_size=3, unique=True))
        attrs = {key: draw(attr_text(spec[key]) if key in spec else HOSTILE) for key in keys}
        nodes.append({"op": op, "name": f"n{k}", "attrs": attrs, "inputs": inputs})
        feeds.append(len(nodes) - 1)
    heads = [[draw(st.sampled_from(feeds[1:])), draw(st.sampled_from([0, 0, 0, 1])), 0]]
    return {"nodes": nodes, "heads": heads, "arg_nodes": []}, params


@given(graphs())
def test_generated_graphs_convert_or_are_refused(graph):
    doc, params = graph
    conversion = Conversion("s", "p", (InputSpec("data", (1, 2, 8, 8), "NCHW", "RGB"),))
    _convert_or_refuse(json.dumps(doc), params, conversion)


@given(st.text(max_size=40) | PLAUSIBLE | HOSTILE, st.sampled_from([("int", 1), ("int", 0), ("int", None), ("ints", 1),
                                                           ("ints", 0), ("float", 0), ("float", None),
                                                           ("bool", None), ("str", None), ("reshape", None)]))
def test_attribute_strings_parse_or_say_what_was_expected(text, kind_low):
    kind, low = kind_low
    try:
        parse_attr(text, Attr(kind, low))
    except ValueError as exc:
        assert str(exc)


@given(edits, cuts)
def test_mutated_params_read_or_are_refused(patches, cut):
    _, params, _ = real()
    try:
        parse_ndarray_bytes(mutated(params, patches, cut), PARAMS)
    except ConvertError:
        pass


arrays = st.tuples(st.sampled_from(sorted(DTYPES)), st.lists(st.integers(0, 3), max_size=4)).map(
    lambda t: np.zeros(t[1], DTYPES[t[0]]))


@given(st.lists(st.tuples(st.text(max_size=6), arrays), max_size=5), edits, cuts)
def test_generated_params_files_read_or_are_refused(pairs, patches, cut):
    data = mutated(encode_ndarray_file(pairs), patches, cut) if patches or cut is not None else \
        encode_ndarray_file(pairs)
    try:
        parse_ndarray_bytes(data, PARAMS)
    except ConvertError:
        pass


def test_the_fuzzers_start_from_a_checkpoint_that_converts():
    """The mutations above start from a valid checkpoint: unmutated, it converts."""
    symbol, _, params = real()
    model, report = mxnet_to_onnx(parse_symbol(symbol.decode(), SYMBOL), params, REAL_CONVERSION)
    assert report.outputs == {"batchnorm0": (1, 256)}
    with pytest.raises(ConvertError):
        parse_ndarray_bytes(b"", PARAMS)
