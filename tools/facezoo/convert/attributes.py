"""What each supported MXNet operator takes, and its attribute strings parsed by MXNet's rules.

MXNet stores every attribute as a string and parses it by the parameter's declared type: an
integer attribute such as `num_filter=4.7` or `kernel=(3.5, 3)` is an error there, never truncated,
and so it is here. Each supported operator lists its attributes with a kind and a lower bound;
an attribute an operator does not take (other than MXNet's `__hidden__` ones) is an error, since
ignoring it could change what the graph computes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import ConvertError
from .mxnet.symbol import Node

INT_LIMIT = 2**31 - 1  # MXNet's operator parameters are 32-bit integers
_INT = re.compile(r"[+-]?\d{1,12}[lL]?")  # Python 2 wrote longs as 3L; MXNet still reads them
_TRUE, _FALSE = ("true", "1"), ("false", "0")


@dataclass(frozen=True)
class Attr:
    """One attribute: its kind (int, ints, bool, float, str, reshape), lowest allowed value, whether
    it must be present, and for strings the accepted values."""

    kind: str
    low: float | None = None
    required: bool = False
    choices: tuple[str, ...] = ()
    nonzero: bool = False


@dataclass(frozen=True)
class OpSpec:
    """An operator's number of inputs (min, max) and its attributes."""

    inputs: tuple[int, int]
    attrs: dict[str, Attr] = field(default_factory=dict)


def _int(text: str) -> int:
    if not _INT.fullmatch(text):
        raise ValueError("an integer")
    value = int(text.rstrip("lL"))
    if abs(value) > INT_LIMIT:
        raise ValueError(f"an integer within +-{INT_LIMIT}")
    return value


def _ints(text: str) -> tuple[int, ...]:
    body = text
    if body[:1] and body[:1] in "([":
        if body[-1:] != {"(": ")", "[": "]"}[body[0]]:
            raise ValueError("a tuple of integers such as (3, 3)")
        body = body[1:-1].strip()
    items = [s.strip() for s in body.split(",")] if body else []
    if items and items[-1] == "":
        items.pop()  # "(3,)"
    try:
        return tuple(_int(s) for s in items)
    except ValueError:
        raise ValueError("a tuple of integers such as (3, 3)") from None


def _bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("True or False")


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("a number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


_PARSERS = {"int": _int, "ints": _ints, "reshape": _ints, "bool": _bool, "float": _float, "str": str}


def parse_attr(text: str, spec: Attr):
    """`text` as the attribute's value (None for MXNet's "None"); ValueError says what was expected."""
    text = text.strip()
    if text == "None":
        if spec.required:
            raise ValueError("a value (it is required)")
        return None
    value = _PARSERS[spec.kind](text)
    values = value if isinstance(value, tuple) else (value,)
    if spec.kind == "reshape":
        if any(v < -4 for v in values):
            raise ValueError("values >= -4 (MXNet's special values are 0, -1, -2, -3, -4)")
        if values.count(-1) > 1:
            raise ValueError("at most one -1")
    elif spec.low is not None and any(v < spec.low for v in values):
        if spec.low == 1:
            raise ValueError({"int": "a positive integer", "ints": "positive integers"}[spec.kind])
        raise ValueError(f"{ {'int': 'an integer', 'ints': 'integers', 'float': 'a number'}[spec.kind]} >= {spec.low:g}")
    if spec.nonzero and value == 0:
        raise ValueError("a non-zero number")
    if spec.choices and value not in spec.choices:
        raise ValueError(f"one of {', '.join(map(str, spec.choices))}")
    return value


def _conv(deconv: bool) -> OpSpec:
    attrs = {"kernel": Attr("ints", 1, required=True), "stride": Attr("ints", 1), "dilate": Attr("ints", 1),
             "pad": Attr("ints", 0), "num_filter": Attr("int", 1, required=True), "num_group": Attr("int", 1),
             "no_bias": Attr("bool"), "workspace": Attr("int", 0), "cudnn_tune": Attr("str"),
             "cudnn_off": Attr("bool"), "layout": Attr("str", choices=("NCW", "NCHW", "NCDHW"))}
    if deconv:
        attrs.update(adj=Attr("ints", 0), target_shape=Attr("ints", 0))
    return OpSpec((2, 3), attrs)


def _scalar() -> OpSpec:
    return OpSpec((1, 1), {"scalar": Attr("float", required=True), "is_int": Attr("bool")})


_IDENTITY = OpSpec((1, 1))
_BINARY = OpSpec((2, 2))
_FLATTEN = OpSpec((1, 1))
_RESHAPE = OpSpec((1, 1), {"shape": Attr("reshape"), "target_shape": Attr("ints", 0), "reverse": Attr("bool"),
                           "keep_highest": Attr("bool")})
_SOFTMAX = OpSpec((1, 1), {"axis": Attr("int"), "temperature": Attr("float", nonzero=True),
                           "use_length": Attr("bool", choices=(False,)), "dtype": Attr("str")})
_CONCAT = OpSpec((1, 1 << 16), {"num_args": Attr("int", 1), "dim": Attr("int")})

SPECS: dict[str, OpSpec] = {
    "Convolution": _conv(False),
    "Deconvolution": _conv(True),
    "BatchNorm": OpSpec((5, 5), {"eps": Attr("float", 0), "momentum": Attr("float"), "fix_gamma": Attr("bool"),
                                 "use_global_stats": Attr("bool"), "axis": Attr("int"), "cudnn_off": Attr("bool"),
                                 "output_mean_var": Attr("bool", choices=(False,))}),
    "Activation": OpSpec((1, 1), {"act_type": Attr("str", required=True)}),
    "LeakyReLU": OpSpec((1, 2), {"act_type": Attr("str"), "slope": Attr("float"), "lower_bound": Attr("float"),
                                 "upper_bound": Attr("float")}),
    "Pooling": OpSpec((1, 1), {"kernel": Attr("ints", 1), "stride": Attr("ints", 1), "pad": Attr("ints", 0),
                               "pool_type": Attr("str"), "global_pool": Attr("bool"), "cudnn_off": Attr("bool"),
                               "pooling_convention": Attr("str", choices=("valid", "full")),
                               "count_include_pad": Attr("bool"), "p_value": Attr("int", 1),
                               "layout": Attr("str", choices=("NCW", "NCHW", "NCDHW"))}),
    "FullyConnected": OpSpec((2, 3), {"num_hidden": Attr("int", 1, required=True), "no_bias": Attr("bool"),
                                      "flatten": Attr("bool")}),
    "Flatten": _FLATTEN, "flatten": _FLATTEN,
    "Reshape": _RESHAPE, "reshape": _RESHAPE,
    "SoftmaxActivation": OpSpec((1, 1), {"mode": Attr("str", choices=("instance", "channel"))}),
    "softmax": _SOFTMAX,
    "Concat": _CONCAT, "concat": _CONCAT,
    **{op: _BINARY for op in ("elemwise_add", "elemwise_sub", "elemwise_mul", "_Plus", "broadcast_add",
                              "broadcast_mul")},
    **{op: _scalar() for op in ("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
                                "_rdiv_scalar", "_maximum_scalar", "_minimum_scalar")},
    "clip": OpSpec((1, 1), {"a_min": Attr("float", required=True), "a_max": Attr("float", required=True)}),
    "UpSampling": OpSpec((1, 1), {"scale": Attr("int", 1, required=True), "num_filter": Attr("int", 0),
                                  "sample_type": Attr("str", choices=("nearest",)),
                                  "multi_input_mode": Attr("str"), "num_args": Attr("int", 1, choices=(1,)),
                                  "workspace": Attr("int", 0)}),
    "Crop": OpSpec((1, 2), {"num_args": Attr("int", 1), "offset": Attr("ints", 0), "h_w": Attr("ints", 0),
                            "center_crop": Attr("bool")}),
    "Dropout": OpSpec((1, 1), {"p": Attr("float", 0), "mode": Attr("str", choices=("training",)),
                               "axes": Attr("ints"), "cudnn_off": Attr("bool")}),
    "_copy": _IDENTITY, "identity": _IDENTITY, "BlockGrad": _IDENTITY,
    "L2Normalization": OpSpec((1, 1), {"eps": Attr("float", 0), "mode": Attr("str")}),
    "transpose": OpSpec((1, 1), {"axes": Attr("ints", 0)}),
    "slice_axis": OpSpec((1, 1), {"axis": Attr("int", required=True), "begin": Attr("int"), "end": Attr("int")}),
}


def node_attributes(node: Node, where: str) -> dict:
    """A supported operator's attributes parsed and checked; ConvertError names the node, the
    attribute and what was expected."""
    spec = SPECS.get(node.op)
    if spec is None:
        raise ConvertError(f"{where}: node '{node.name}': operator '{node.op}' is not supported "
                           f"(supported: {', '.join(sorted(SPECS))})")
    low, high = spec.inputs
    if not low <= len(node.inputs) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise ConvertError(f"{where}: node '{node.name}' ({node.op}) has {len(node.inputs)} inputs, "
                           f"expected {expected}")
    values = {}
    for key, text in node.attrs.items():
        if key.startswith("__") and key.endswith("__"):
            continue  # MXNet's hidden attributes (__lr_mult__, __mirror_stage__...) do not change inference
        attr = spec.attrs.get(key)
        if attr is None:
            raise ConvertError(f"{where}: node '{node.name}' ({node.op}): attribute '{key}' is not one "
                               f"{node.op} takes ({', '.join(sorted(spec.attrs)) or 'none'})")
        try:
            values[key] = parse_attr(text, attr)
        except ValueError as exc:
            raise ConvertError(f"{where}: node '{node.name}' ({node.op}): attribute {key}={text[:40]!r} "
                               f"must be {exc}") from None
    for key, attr in spec.attrs.items():
        if attr.required and values.get(key) is None:
            raise ConvertError(f"{where}: node '{node.name}' ({node.op}): attribute '{key}' is required")
    return values
