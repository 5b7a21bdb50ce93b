"""One small function per MXNet operator: emits ONNX nodes and computes output shapes.

Each function takes the graph builder, the MXNet node, its input tensor names and its attributes,
and returns the names of the node's outputs.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .builder import Attrs, GraphBuilder
from .errors import ConvertError
from .mxnet.symbol import Node

Handler = Callable[[GraphBuilder, Node, list[str], Attrs], list[str]]


def _fail(node: Node, message: str) -> ConvertError:
    return ConvertError(f"node '{node.name}' ({node.op}): {message}")


def _expect_param(b: GraphBuilder, node: Node, tensor: str, role: str, shape: tuple[int, ...]) -> np.ndarray:
    if tensor not in b.constants:
        raise _fail(node, f"{role} '{tensor}' must be a parameter from the .params file")
    value = b.constants[tensor]
    if tuple(value.shape) != tuple(shape):
        raise _fail(node, f"{role} '{tensor}' has shape {tuple(value.shape)} in the .params file, "
                          f"the graph needs {tuple(shape)}")
    return value


def _spatial(a: Attrs, key: str, n: int, default: int) -> tuple[int, ...]:
    value = a.ints(key)
    return value if value else (default,) * n


def convolution(b, node, ins, a):
    x = b.shape(ins[0])
    kernel = a.ints("kernel")
    if not kernel:
        raise _fail(node, "attribute 'kernel' is required")
    n = len(kernel)
    stride, dilate, pad = _spatial(a, "stride", n, 1), _spatial(a, "dilate", n, 1), _spatial(a, "pad", n, 0)
    groups, filters = int(a.get("num_group", 1)), int(a.require("num_filter"))
    if x[1] % groups:
        raise _fail(node, f"{x[1]} input channels are not divisible by num_group={groups}")
    _expect_param(b, node, ins[1], "weight", (filters, x[1] // groups) + kernel)
    inputs = ins[:2]
    if not a.get("no_bias", False):
        if len(ins) < 3:
            raise _fail(node, "a bias input is expected (no_bias is False)")
        _expect_param(b, node, ins[2], "bias", (filters,))
        inputs = ins[:3]
    out = tuple((x[2 + i] + 2 * pad[i] - dilate[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(n))
    if min(out) < 1:
        raise _fail(node, f"input {x} is too small for kernel {kernel}")
    b.flops += 2 * math.prod(out) * filters * (x[1] // groups) * math.prod(kernel) * x[0]
    return [b.add("Conv", inputs, (x[0], filters) + out, output=node.name, kernel_shape=list(kernel),
                  strides=list(stride), dilations=list(dilate), pads=list(pad) * 2, group=groups)]


def deconvolution(b, node, ins, a):
    x = b.shape(ins[0])
    kernel = a.ints("kernel")
    n = len(kernel)
    stride, dilate, pad = _spatial(a, "stride", n, 1), _spatial(a, "dilate", n, 1), _spatial(a, "pad", n, 0)
    adj = _spatial(a, "adj", n, 0)
    if a.ints("target_shape"):
        raise _fail(node, "target_shape is not supported; give pad and adj instead")
    groups, filters = int(a.get("num_group", 1)), int(a.require("num_filter"))
    _expect_param(b, node, ins[1], "weight", (x[1], filters // groups) + kernel)
    inputs = ins[:2]
    if not a.get("no_bias", True):  # MXNet's Deconvolution has no bias unless asked
        _expect_param(b, node, ins[2], "bias", (filters,))
        inputs = ins[:3]
    out = tuple((x[2 + i] - 1) * stride[i] - 2 * pad[i] + dilate[i] * (kernel[i] - 1) + 1 + adj[i] for i in range(n))
    b.flops += 2 * math.prod(x[2:]) * filters * (x[1] // groups) * math.prod(kernel) * x[0]
    return [b.add("ConvTranspose", inputs, (x[0], filters) + out, output=node.name, kernel_shape=list(kernel),
                  strides=list(stride), dilations=list(dilate), pads=list(pad) * 2, group=groups,
                  output_padding=list(adj))]


def batch_norm(b, node, ins, a):
    x = b.shape(ins[0])
    axis = int(a.get("axis", 1)) % len(x)
    channels = x[axis]
    gamma, beta, mean, var = (_expect_param(b, node, t, role, (channels,)).astype(np.float64)
                              for t, role in zip(ins[1:5], ("gamma", "beta", "moving_mean", "moving_var")))
    eps = float(a.get("eps", 1e-3))
    if a.get("fix_gamma", True):  # MXNet's default: gamma is taken as 1 whatever the file holds
        gamma = np.ones_like(gamma)
    if axis == 1:
        consts = [b.const(f"{node.name}_{r}", v.astype(np.float32))
                  for r, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
        return [b.add("BatchNormalization", [ins[0]] + consts, x, output=node.name, epsilon=eps)]
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    bshape = [1] * len(x)
    bshape[axis] = channels
    mul = b.add("Mul", [ins[0], b.const(f"{node.name}_scale", scale.reshape(bshape).astype(np.float32))], x)
    return [b.add("Add", [mul, b.const(f"{node.name}_shift", shift.reshape(bshape).astype(np.float32))], x,
                  output=node.name)]


def activation(b, node, ins, a):
    kinds = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softrelu": "Softplus", "softsign": "Softsign"}
    act = a.require("act_type")
    if act not in kinds:
        raise _fail(node, f"act_type '{act}' is not supported (supported: {', '.join(sorted(kinds))})")
    return [b.add(kinds[act], ins[:1], b.shape(ins[0]), output=node.name)]


def leaky_relu(b, node, ins, a):
    x = b.shape(ins[0])
    act = a.get("act_type", "leaky")
    if act == "leaky":
        return [b.add("LeakyRelu", ins[:1], x, output=node.name, alpha=float(a.get("slope", 0.25)))]
    if act == "elu":
        return [b.add("Elu", ins[:1], x, output=node.name, alpha=float(a.get("slope", 0.25)))]
    if act == "prelu":
        gamma = _expect_param(b, node, ins[1], "gamma", (x[1],))
        slope = b.const(f"{node.name}_slope", gamma.reshape((x[1],) + (1,) * (len(x) - 2)).astype(np.float32))
        return [b.add("PRelu", [ins[0], slope], x, output=node.name)]
    raise _fail(node, f"act_type '{act}' is not supported (supported: elu, leaky, prelu)")


def pooling(b, node, ins, a):
    x = b.shape(ins[0])
    kind = a.get("pool_type", "max")
    if kind not in ("max", "avg"):
        raise _fail(node, f"pool_type '{kind}' is not supported (supported: avg, max)")
    if a.get("global_pool", False):
        return [b.add("GlobalMaxPool" if kind == "max" else "GlobalAveragePool", ins[:1],
                      x[:2] + (1,) * (len(x) - 2), output=node.name)]
    kernel = a.ints("kernel")
    n = len(kernel)
    stride, pad = _spatial(a, "stride", n, 1), _spatial(a, "pad", n, 0)
    full = a.get("pooling_convention", "valid") == "full"
    rnd = math.ceil if full else math.floor
    out = tuple(int(rnd((x[2 + i] + 2 * pad[i] - kernel[i]) / stride[i])) + 1 for i in range(n))
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), pads=list(pad) * 2, ceil_mode=int(full))
    if kind == "avg":
        attrs["count_include_pad"] = int(a.get("count_include_pad", True))
    return [b.add("MaxPool" if kind == "max" else "AveragePool", ins[:1], x[:2] + out, output=node.name, **attrs)]


def fully_connected(b, node, ins, a):
    x = b.shape(ins[0])
    hidden = int(a.require("num_hidden"))
    flatten = a.get("flatten", True)
    if flatten:
        features = math.prod(x[1:])
        if len(x) != 2:
            ins = [b.add("Flatten", ins[:1], (x[0], features), axis=1)] + ins[1:]
        out = (x[0], hidden)
    else:
        features, out = x[-1], x[:-1] + (hidden,)
    weight = _expect_param(b, node, ins[1], "weight", (hidden, features))
    no_bias = a.get("no_bias", False)
    if not no_bias:
        _expect_param(b, node, ins[2], "bias", (hidden,))
    b.flops += 2 * math.prod(out) * features
    if flatten:
        return [b.add("Gemm", ins[:2] if no_bias else ins[:3], out, output=node.name, transB=1)]
    wt = b.const(f"{node.name}_weight_t", np.ascontiguousarray(weight.T))
    if no_bias:
        return [b.add("MatMul", [ins[0], wt], out, output=node.name)]
    mm = b.add("MatMul", [ins[0], wt], out)
    return [b.add("Add", [mm, ins[2]], out, output=node.name)]


def flatten(b, node, ins, a):
    x = b.shape(ins[0])
    return [b.add("Flatten", ins[:1], (x[0], math.prod(x[1:])), output=node.name, axis=1)]


def mxnet_reshape(src: tuple[int, ...], spec: tuple[int, ...], node: Node) -> tuple[int, ...]:
    """MXNet's reshape rules: 0 copies a dimension, -1 infers one, -2 copies the rest, -3 merges two,
    -4 splits one into the next two values (one of which may be -1)."""
    out: list[int] = []
    i = j = 0
    infer = None
    while j < len(spec):
        s = spec[j]
        if s > 0:
            out.append(s); i += 1
        elif s == 0:
            out.append(src[i]); i += 1
        elif s == -1:
            infer = len(out); out.append(1); i += 1
        elif s == -2:
            out.extend(src[i:]); i = len(src)
        elif s == -3:
            out.append(src[i] * src[i + 1]); i += 2
        elif s == -4:
            d1, d2 = spec[j + 1], spec[j + 2]
            if d1 == -1:
                d1 = src[i] // d2
            if d2 == -1:
                d2 = src[i] // d1
            out += [d1, d2]; i += 1; j += 2
        else:
            raise ConvertError(f"node '{node.name}' (Reshape): unsupported shape value {s}")
        j += 1
    if infer is not None:
        known = math.prod(d for k, d in enumerate(out) if k != infer)
        out[infer] = math.prod(src) // max(known, 1)
    if math.prod(out) != math.prod(src):
        raise ConvertError(f"node '{node.name}' (Reshape): cannot reshape {src} to {tuple(out)}")
    return tuple(out)


def reshape(b, node, ins, a):
    x = b.shape(ins[0])
    spec = a.ints("shape") or a.ints("target_shape")
    if a.get("reverse", False):
        out = tuple(reversed(mxnet_reshape(tuple(reversed(x)), tuple(reversed(spec)), node)))
    else:
        out = mxnet_reshape(x, spec, node)
    return [b.add("Reshape", [ins[0], b.const(f"{node.name}_shape", np.array(out, np.int64))], out,
                  output=node.name)]


def softmax_activation(b, node, ins, a):
    x = b.shape(ins[0])
    if a.get("mode", "instance") == "channel":
        return [b.add("Softmax", ins[:1], x, output=node.name, axis=1)]
    flat = b.add("Flatten", ins[:1], (x[0], math.prod(x[1:])), axis=1)
    soft = b.add("Softmax", [flat], b.shape(flat), axis=1)
    return [b.add("Reshape", [soft, b.const(f"{node.name}_shape", np.array(x, np.int64))], x, output=node.name)]


def softmax(b, node, ins, a):
    x = b.shape(ins[0])
    src = ins[0]
    temperature = a.get("temperature", None)
    if temperature not in (None, 1, 1.0):
        src = b.add("Div", [src, b.const(f"{node.name}_t", np.array(float(temperature), np.float32))], x)
    return [b.add("Softmax", [src], x, output=node.name, axis=int(a.get("axis", -1)))]


def concat(b, node, ins, a):
    shapes = [b.shape(t) for t in ins]
    axis = int(a.get("dim", 1)) % len(shapes[0])
    for s in shapes[1:]:
        if len(s) != len(shapes[0]) or any(p != q for k, (p, q) in enumerate(zip(s, shapes[0])) if k != axis):
            raise _fail(node, f"cannot concatenate shapes {shapes} along axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [b.add("Concat", ins, tuple(out), output=node.name, axis=axis)]


def _broadcast(node, s1, s2):
    try:
        return tuple(np.broadcast_shapes(s1, s2))
    except ValueError:
        raise _fail(node, f"shapes {s1} and {s2} do not broadcast") from None


def binary(onnx_op: str, same_shape: bool) -> Handler:
    def handler(b, node, ins, a):
        s1, s2 = b.shape(ins[0]), b.shape(ins[1])
        if same_shape and s1 != s2:
            raise _fail(node, f"element-wise inputs differ in shape: {s1} and {s2}")
        return [b.add(onnx_op, ins[:2], _broadcast(node, s1, s2), output=node.name)]
    return handler


def scalar(onnx_op: str, reverse: bool = False) -> Handler:
    def handler(b, node, ins, a):
        c = b.const(f"{node.name}_scalar", np.array(float(a.require("scalar")), np.float32))
        return [b.add(onnx_op, [c, ins[0]] if reverse else [ins[0], c], b.shape(ins[0]), output=node.name)]
    return handler


def clip(b, node, ins, a):
    lo = b.const(f"{node.name}_min", np.array(float(a.require("a_min")), np.float32))
    hi = b.const(f"{node.name}_max", np.array(float(a.require("a_max")), np.float32))
    return [b.add("Clip", [ins[0], lo, hi], b.shape(ins[0]), output=node.name)]


def upsampling(b, node, ins, a):
    x = b.shape(ins[0])
    if a.get("sample_type", "nearest") != "nearest":
        raise _fail(node, "only sample_type=nearest is supported")
    if int(a.get("num_args", 1)) != 1:
        raise _fail(node, "only num_args=1 is supported")
    s = int(a.require("scale"))
    scales = b.const(f"{node.name}_scales", np.array([1, 1, s, s], np.float32))
    return [b.add("Resize", [ins[0], "", scales], x[:2] + (x[2] * s, x[3] * s), output=node.name,
                  mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")]


def crop(b, node, ins, a):
    x = b.shape(ins[0])
    if len(ins) >= 2:
        h, w = b.shape(ins[1])[2:4]
    else:
        h, w = a.ints("h_w")
    if a.get("center_crop", False):
        oy, ox = (x[2] - h) // 2, (x[3] - w) // 2
    else:
        oy, ox = a.ints("offset", (0, 0))
    if oy < 0 or ox < 0 or oy + h > x[2] or ox + w > x[3]:
        raise _fail(node, f"crop of {h}x{w} at ({oy}, {ox}) does not fit in {x[2]}x{x[3]}")
    starts = b.const(f"{node.name}_starts", np.array([oy, ox], np.int64))
    ends = b.const(f"{node.name}_ends", np.array([oy + h, ox + w], np.int64))
    axes = b.const(f"{node.name}_axes", np.array([2, 3], np.int64))
    return [b.add("Slice", [ins[0], starts, ends, axes], x[:2] + (h, w), output=node.name)]


def identity(b, node, ins, a):
    return [b.add("Identity", ins[:1], b.shape(ins[0]), output=node.name)]


def l2_normalization(b, node, ins, a):
    x = b.shape(ins[0])
    mode = a.get("mode", "instance")
    axes = {"instance": list(range(1, len(x))), "channel": [1], "spatial": list(range(2, len(x)))}.get(mode)
    if axes is None:
        raise _fail(node, f"mode '{mode}' is not supported (supported: channel, instance, spatial)")
    reduced = tuple(1 if k in axes else d for k, d in enumerate(x))
    sq = b.add("ReduceSumSquare", [ins[0], b.const(f"{node.name}_axes", np.array(axes, np.int64))], reduced,
               keepdims=1)
    eps = b.const(f"{node.name}_eps", np.array(float(a.get("eps", 1e-10)), np.float32))
    norm = b.add("Sqrt", [b.add("Add", [sq, eps], reduced)], reduced)
    return [b.add("Div", [ins[0], norm], x, output=node.name)]


def transpose(b, node, ins, a):
    x = b.shape(ins[0])
    axes = a.ints("axes") or tuple(reversed(range(len(x))))
    return [b.add("Transpose", ins[:1], tuple(x[k] for k in axes), output=node.name, perm=list(axes))]


def slice_axis(b, node, ins, a):
    x = b.shape(ins[0])
    axis = int(a.require("axis")) % len(x)
    begin = int(a.get("begin", 0) or 0)
    end = a.get("end", None)
    end = x[axis] if end is None else int(end)
    begin, end = (begin + x[axis] if begin < 0 else begin), (end + x[axis] if end < 0 else end)
    out = list(x)
    out[axis] = end - begin
    consts = [b.const(f"{node.name}_{k}", np.array([v], np.int64)) for k, v in
              (("starts", begin), ("ends", end), ("axes", axis))]
    return [b.add("Slice", [ins[0]] + consts, tuple(out), output=node.name)]


OPS: dict[str, Handler] = {
    "Convolution": convolution, "Deconvolution": deconvolution, "BatchNorm": batch_norm,
    "Activation": activation, "LeakyReLU": leaky_relu, "Pooling": pooling, "FullyConnected": fully_connected,
    "Flatten": flatten, "flatten": flatten, "Reshape": reshape, "reshape": reshape,
    "SoftmaxActivation": softmax_activation, "softmax": softmax, "Concat": concat, "concat": concat,
    "elemwise_add": binary("Add", True), "elemwise_sub": binary("Sub", True), "elemwise_mul": binary("Mul", True),
    "_Plus": binary("Add", True), "broadcast_add": binary("Add", False), "broadcast_mul": binary("Mul", False),
    "_plus_scalar": scalar("Add"), "_minus_scalar": scalar("Sub"), "_rminus_scalar": scalar("Sub", True),
    "_mul_scalar": scalar("Mul"), "_div_scalar": scalar("Div"), "_rdiv_scalar": scalar("Div", True),
    "_maximum_scalar": scalar("Max"), "_minimum_scalar": scalar("Min"), "clip": clip,
    "UpSampling": upsampling, "Crop": crop, "Dropout": identity, "_copy": identity, "identity": identity,
    "BlockGrad": identity, "L2Normalization": l2_normalization, "transpose": transpose, "slice_axis": slice_axis,
}
