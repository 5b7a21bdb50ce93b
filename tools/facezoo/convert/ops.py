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


def _spatial(node: Node, a: Attrs, key: str, n: int, default: int) -> tuple[int, ...]:
    value = a.ints(key)
    if not value:
        return (default,) * n
    if len(value) != n:
        raise _fail(node, f"{key}={value} has {len(value)} values, the kernel has {n}")
    return value


def _kernel(node: Node, a: Attrs, x: tuple[int, ...]) -> tuple[int, ...]:
    """The kernel, with the input's rank checked against it (N, C and one dimension per kernel value)."""
    kernel = a.ints("kernel")
    if not 1 <= len(kernel) <= 3:
        raise _fail(node, f"kernel={kernel} must have 1 to 3 values")
    if len(x) != len(kernel) + 2:
        raise _fail(node, f"input of shape {x} does not fit a {len(kernel)}-d kernel (expected {len(kernel) + 2} "
                          f"dimensions)")
    return kernel


def _axis(node: Node, axis: int, rank: int, key: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise _fail(node, f"{key}={axis} is out of range for an input with {rank} dimensions")
    return axis % rank


def _rank_at_least(node: Node, x: tuple[int, ...], rank: int) -> None:
    if len(x) < rank:
        raise _fail(node, f"input of shape {x} has fewer than {rank} dimensions")


def _groups(node: Node, a: Attrs, channels: int, filters: int) -> int:
    groups = a.get("num_group", 1)
    if channels % groups or filters % groups:
        raise _fail(node, f"{channels} input channels and num_filter={filters} must both be divisible by "
                          f"num_group={groups}")
    return groups


def convolution(b, node, ins, a):
    x = b.shape(ins[0])
    kernel = _kernel(node, a, x)
    n = len(kernel)
    stride, dilate = _spatial(node, a, "stride", n, 1), _spatial(node, a, "dilate", n, 1)
    pad = _spatial(node, a, "pad", n, 0)
    filters = a.require("num_filter")
    groups = _groups(node, a, x[1], filters)
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
    kernel = _kernel(node, a, x)
    n = len(kernel)
    stride, dilate = _spatial(node, a, "stride", n, 1), _spatial(node, a, "dilate", n, 1)
    pad, adj = _spatial(node, a, "pad", n, 0), _spatial(node, a, "adj", n, 0)
    if a.ints("target_shape"):
        raise _fail(node, "target_shape is not supported; give pad and adj instead")
    if any(p >= s for p, s in zip(adj, stride)):
        raise _fail(node, f"adj={adj} must be smaller than stride={stride}")
    filters = a.require("num_filter")
    groups = _groups(node, a, x[1], filters)
    _expect_param(b, node, ins[1], "weight", (x[1], filters // groups) + kernel)
    inputs = ins[:2]
    if not a.get("no_bias", True):  # MXNet's Deconvolution has no bias unless asked
        if len(ins) < 3:
            raise _fail(node, "a bias input is expected (no_bias is False)")
        _expect_param(b, node, ins[2], "bias", (filters,))
        inputs = ins[:3]
    out = tuple((x[2 + i] - 1) * stride[i] - 2 * pad[i] + dilate[i] * (kernel[i] - 1) + 1 + adj[i] for i in range(n))
    if min(out) < 1:
        raise _fail(node, f"input {x} gives an empty output {out} with pad {pad}")
    b.flops += 2 * math.prod(x[2:]) * filters * (x[1] // groups) * math.prod(kernel) * x[0]
    return [b.add("ConvTranspose", inputs, (x[0], filters) + out, output=node.name, kernel_shape=list(kernel),
                  strides=list(stride), dilations=list(dilate), pads=list(pad) * 2, group=groups,
                  output_padding=list(adj))]


def batch_norm(b, node, ins, a):
    x = b.shape(ins[0])
    axis = _axis(node, a.get("axis", 1), len(x))
    channels = x[axis]
    gamma, beta, mean, var = (_expect_param(b, node, t, role, (channels,)).astype(np.float64)
                              for t, role in zip(ins[1:5], ("gamma", "beta", "moving_mean", "moving_var")))
    eps = a.get("eps", 1e-3)
    if not (var + eps > 0).all():
        raise _fail(node, f"moving_var + eps must be positive, found {float((var + eps).min()):g} (the "
                          f"normalisation would divide by zero or take the root of a negative number)")
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
        if len(ins) != 2:
            raise _fail(node, "act_type prelu needs a gamma input")
        _rank_at_least(node, x, 2)
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
        _rank_at_least(node, x, 3)
        return [b.add("GlobalMaxPool" if kind == "max" else "GlobalAveragePool", ins[:1],
                      x[:2] + (1,) * (len(x) - 2), output=node.name)]
    if not a.ints("kernel"):
        raise _fail(node, "attribute 'kernel' is required unless global_pool is True")
    kernel = _kernel(node, a, x)
    n = len(kernel)
    stride, pad = _spatial(node, a, "stride", n, 1), _spatial(node, a, "pad", n, 0)
    full = a.get("pooling_convention", "valid") == "full"
    span = [x[2 + i] + 2 * pad[i] - kernel[i] for i in range(n)]
    out = tuple((-(-s // stride[i]) if full else s // stride[i]) + 1 for i, s in enumerate(span))
    if min(out) < 1:
        raise _fail(node, f"input {x} is too small for kernel {kernel} with pad {pad}")
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), pads=list(pad) * 2, ceil_mode=int(full))
    if kind == "avg":
        attrs["count_include_pad"] = int(a.get("count_include_pad", True))
    return [b.add("MaxPool" if kind == "max" else "AveragePool", ins[:1], x[:2] + out, output=node.name, **attrs)]


def fully_connected(b, node, ins, a):
    x = b.shape(ins[0])
    if b.dynamic:
        raise _fail(node, "a fully connected layer needs a fixed input size; dynamic_input is for fully "
                          "convolutional graphs")
    hidden = a.require("num_hidden")
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
        if len(ins) < 3:
            raise _fail(node, "a bias input is expected (no_bias is False)")
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
    def fail(why: str) -> ConvertError:
        return ConvertError(f"node '{node.name}' (Reshape): cannot reshape {src} with shape={spec}: {why}")

    out: list[int] = []
    i = j = 0
    infer = None
    while j < len(spec):
        s = spec[j]
        if s in (0, -3, -4) and i + (2 if s == -3 else 1) > len(src):
            raise fail(f"{s} refers to input dimensions the input does not have")
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
        else:  # -4
            if j + 2 >= len(spec) or not all(d > 0 or d == -1 for d in spec[j + 1:j + 3]):
                raise fail("-4 must be followed by two sizes (one may be -1)")
            d1, d2 = spec[j + 1], spec[j + 2]
            d1, d2 = (src[i] // d2 if d1 == -1 else d1), (src[i] // d1 if d2 == -1 else d2)
            if d1 * d2 != src[i]:
                raise fail(f"-4 cannot split {src[i]} into {spec[j + 1]} x {spec[j + 2]}")
            out += [d1, d2]; i += 1; j += 2
        j += 1
    if infer is not None:
        known = math.prod(d for k, d in enumerate(out) if k != infer)
        if known == 0 or math.prod(src) % known:
            raise fail("-1 cannot be inferred")
        out[infer] = math.prod(src) // known
    if math.prod(out) != math.prod(src):
        raise fail(f"{tuple(out)} has a different number of elements")
    return tuple(out)


def _open_reshape(node: Node, spec: tuple[int, ...], reverse: bool) -> tuple[int, ...]:
    """shape= for an input of open size: MXNet's positive sizes, 0 (copy) and one -1 (infer) mean
    what ONNX's do, each standing for one input dimension; -2, -3, -4 and reverse have no ONNX form."""
    if reverse or any(s < -1 for s in spec) or list(spec).count(-1) > 1:
        raise _fail(node, f"shape={spec}{' with reverse=True' if reverse else ''} cannot follow an open input "
                          f"size (dynamic_input allows positive sizes, 0 and one -1)")
    return spec


def reshape(b, node, ins, a):
    x = b.shape(ins[0])
    spec = a.ints("shape") or a.ints("target_shape")
    if not spec:
        raise _fail(node, "attribute 'shape' is required")
    if a.get("reverse", False):
        out = tuple(reversed(mxnet_reshape(tuple(reversed(x)), tuple(reversed(spec)), node)))
    else:
        out = mxnet_reshape(x, spec, node)
    target = _open_reshape(node, spec, a.get("reverse", False)) if b.dynamic else out
    return [b.add("Reshape", [ins[0], b.const(f"{node.name}_shape", np.array(target, np.int64))], out,
                  output=node.name)]


def softmax_activation(b, node, ins, a):
    x = b.shape(ins[0])
    if a.get("mode", "instance") == "channel":
        _rank_at_least(node, x, 2)
        return [b.add("Softmax", ins[:1], x, output=node.name, axis=1)]
    flat = b.add("Flatten", ins[:1], (x[0], math.prod(x[1:])), axis=1)
    soft = b.add("Softmax", [flat], b.shape(flat), axis=1)
    back = b.add("Shape", ins[:1], (len(x),)) if b.dynamic else b.const(f"{node.name}_shape", np.array(x, np.int64))
    return [b.add("Reshape", [soft, back], x, output=node.name)]


def softmax(b, node, ins, a):
    x = b.shape(ins[0])
    src = ins[0]
    axis = _axis(node, a.get("axis", -1), len(x))
    temperature = a.get("temperature", 1.0)
    if temperature != 1.0:
        src = b.add("Div", [src, b.const(f"{node.name}_t", np.array(temperature, np.float32))], x)
    return [b.add("Softmax", [src], x, output=node.name, axis=axis)]


def concat(b, node, ins, a):
    shapes = [b.shape(t) for t in ins]
    if a.get("num_args", len(ins)) != len(ins):
        raise _fail(node, f"num_args={a.get('num_args')} but the node has {len(ins)} inputs")
    axis = _axis(node, a.get("dim", 1), len(shapes[0]), "dim")
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
        c = b.const(f"{node.name}_scalar", np.array(a.require("scalar"), np.float32))
        return [b.add(onnx_op, [c, ins[0]] if reverse else [ins[0], c], b.shape(ins[0]), output=node.name)]
    return handler


def clip(b, node, ins, a):
    if a.require("a_min") > a.require("a_max"):
        raise _fail(node, f"a_min={a.get('a_min')} is larger than a_max={a.get('a_max')}")
    lo = b.const(f"{node.name}_min", np.array(a.require("a_min"), np.float32))
    hi = b.const(f"{node.name}_max", np.array(a.require("a_max"), np.float32))
    return [b.add("Clip", [ins[0], lo, hi], b.shape(ins[0]), output=node.name)]


def upsampling(b, node, ins, a):
    x = b.shape(ins[0])
    if len(x) != 4:
        raise _fail(node, f"input of shape {x} is not N x C x H x W")
    s = a.require("scale")
    scales = b.const(f"{node.name}_scales", np.array([1, 1, s, s], np.float32))
    return [b.add("Resize", [ins[0], "", scales], x[:2] + (x[2] * s, x[3] * s), output=node.name,
                  mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")]


def crop(b, node, ins, a):
    x = b.shape(ins[0])
    if a.get("num_args", len(ins)) != len(ins):
        raise _fail(node, f"num_args={a.get('num_args')} but the node has {len(ins)} inputs")
    like = b.shape(ins[1]) if len(ins) == 2 else (0, 0) + a.ints("h_w")
    if len(x) != 4 or len(like) != 4:
        raise _fail(node, f"needs an N x C x H x W input and a 4-d reference or h_w=(h, w); found {x} and "
                          f"{like if len(ins) == 2 else 'h_w=' + str(a.ints('h_w'))}")
    h, w = like[2:4]
    offset = a.ints("offset", (0, 0))
    if len(offset) != 2 or min(h, w) < 1:
        raise _fail(node, f"offset={offset} must be (y, x) and the crop {h}x{w} non-empty")
    if a.get("center_crop", False):
        oy, ox = (x[2] - h) // 2, (x[3] - w) // 2
    else:
        oy, ox = offset
    if oy < 0 or ox < 0 or oy + h > x[2] or ox + w > x[3]:
        raise _fail(node, f"crop of {h}x{w} at ({oy}, {ox}) does not fit in {x[2]}x{x[3]}")
    starts = b.const(f"{node.name}_starts", np.array([oy, ox], np.int64))
    if b.dynamic and len(ins) == 2:  # the size of the reference, read when the graph runs
        if a.get("center_crop", False):
            raise _fail(node, "center_crop with a reference of open size is not supported (dynamic_input)")
        size = b.add("Shape", ins[1:2], (2,), start=2, end=4)
        ends = b.add("Add", [size, starts], (2,))
    else:
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
    _rank_at_least(node, x, 3 if mode == "spatial" else 2)
    reduced = tuple(1 if k in axes else d for k, d in enumerate(x))
    sq = b.add("ReduceSumSquare", [ins[0], b.const(f"{node.name}_axes", np.array(axes, np.int64))], reduced,
               keepdims=1)
    eps = b.const(f"{node.name}_eps", np.array(a.get("eps", 1e-10), np.float32))
    norm = b.add("Sqrt", [b.add("Add", [sq, eps], reduced)], reduced)
    return [b.add("Div", [ins[0], norm], x, output=node.name)]


def transpose(b, node, ins, a):
    x = b.shape(ins[0])
    axes = a.ints("axes") or tuple(reversed(range(len(x))))
    if sorted(axes) != list(range(len(x))):
        raise _fail(node, f"axes={axes} is not a permutation of the input's {len(x)} dimensions")
    return [b.add("Transpose", ins[:1], tuple(x[k] for k in axes), output=node.name, perm=list(axes))]


def slice_axis(b, node, ins, a):
    x = b.shape(ins[0])
    axis = _axis(node, a.require("axis"), len(x))
    begin, end = a.get("begin", 0), a.get("end", x[axis])
    begin, end = (begin + x[axis] if begin < 0 else begin), (end + x[axis] if end < 0 else end)
    if not 0 <= begin < end <= x[axis]:
        raise _fail(node, f"begin={a.get('begin')}, end={a.get('end')} select nothing of dimension {x[axis]}")
    out = list(x)
    out[axis] = end - begin
    if b.dynamic:  # as given: ONNX reads negative and missing bounds against the actual size, as MXNet does
        begin, end = a.get("begin", 0), a.get("end", 2**63 - 1)
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
