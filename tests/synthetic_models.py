"""The two mission models with synthetic weights, in MXNet's own file formats.

Their real checkpoints are not available offline. RetinaFace-R50: the tests and
`bench/convert.py` build its published architecture here: MXNet's pre-activation ResNet-50
(`bn_data` first, bottleneck units `stageS_unitU_{bn,relu,conv}{1,2,3}` with `_sc` projections,
final `bn1`/`relu1`), then insightface's FPN (1x1 laterals, nearest `UpSampling` x2, `Crop` to
the lateral, add, 3x3 aggregation) and an SSH context module per stride (32, 16, 8), each with
2 anchors: `face_rpn_{cls_prob_reshape,bbox_pred,landmark_pred}_stride{32,16,8}`.
The SSH modules are 512 wide (conv 256 + context 128 + 128) on a 256-wide FPN: the widths that
give the model card's 29.4 M parameters and 100.8 GFLOPs at 640x640.
MobileFaceNet-ArcFace: the real graph from `../shared/data/converter-cases`, with parameter shapes
from MXNet's own shape inference.
Weights are random but well-scaled: BatchNorm variances positive, gammas deliberately not 1
(so a converter that reads the gamma of a `fix_gamma` BatchNorm is caught).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

FPN_FILTERS = 256  # insightface's HEAD_FILTER_NUM for the ResNet backbones
SSH_FILTERS = 512  # SSH output: conv 256 + context 128 + 128 (matches the card's 29.4 M params, 100.8 GFLOPs)
UNITS = (3, 4, 6, 3)
STAGE_FILTERS = (256, 512, 1024, 2048)
STRIDES = (32, 16, 8)
OUTPUTS = tuple(f"face_rpn_{kind}_stride{s}" for s in STRIDES
                for kind in ("cls_prob_reshape", "bbox_pred", "landmark_pred"))


class _SymbolWriter:
    """Appends MXNet nodes; remembers the shape of every parameter it declares."""

    def __init__(self):
        self.nodes: list[dict] = [{"op": "null", "name": "data", "inputs": []}]
        self.arg_nodes = [0]
        self.outputs_per_node = [1]
        self.params: dict[str, tuple[int, ...]] = {}
        self.channels: dict[int, int] = {0: 3}

    def _param(self, name: str, shape: tuple[int, ...], aux: bool = False) -> int:
        self.nodes.append({"op": "null", "name": name, "inputs": []})
        self.arg_nodes.append(len(self.nodes) - 1)
        self.outputs_per_node.append(1)
        self.params[("aux:" if aux else "arg:") + name] = shape
        return len(self.nodes) - 1

    def _op(self, op: str, name: str, inputs: list[int], attrs: dict, channels: int, outputs: int = 1) -> int:
        node = {"op": op, "name": name, "inputs": [[i, 0, 0] for i in inputs]}
        if attrs:
            node["attrs"] = {k: str(v) for k, v in attrs.items()}
        self.nodes.append(node)
        self.outputs_per_node.append(outputs)
        self.channels[len(self.nodes) - 1] = channels
        return len(self.nodes) - 1

    def conv(self, x: int, name: str, filters: int, kernel: int, stride: int = 1, bias: bool = False) -> int:
        cin = self.channels[x]
        inputs = [x, self._param(f"{name}_weight", (filters, cin, kernel, kernel))]
        if bias:
            inputs.append(self._param(f"{name}_bias", (filters,)))
        pad = kernel // 2
        return self._op("Convolution", name, inputs,
                        {"kernel": f"({kernel}, {kernel})", "num_filter": filters, "pad": f"({pad}, {pad})",
                         "stride": f"({stride}, {stride})", "no_bias": not bias}, filters)

    def bn(self, x: int, name: str, fix_gamma: bool | None) -> int:
        c = self.channels[x]
        inputs = [x, self._param(f"{name}_gamma", (c,)), self._param(f"{name}_beta", (c,)),
                  self._param(f"{name}_moving_mean", (c,), aux=True),
                  self._param(f"{name}_moving_var", (c,), aux=True)]
        attrs = {"eps": "2e-05", "momentum": "0.9"}
        if fix_gamma is not None:  # absent means MXNet's default: fix_gamma=True
            attrs["fix_gamma"] = fix_gamma
        return self._op("BatchNorm", name, inputs, attrs, c, outputs=3)

    def relu(self, x: int, name: str) -> int:
        return self._op("Activation", name, [x], {"act_type": "relu"}, self.channels[x])

    def conv_bn(self, x: int, name: str, filters: int, kernel: int, relu: bool = True) -> int:
        y = self.bn(self.conv(x, name, filters, kernel, bias=True), f"{name}_bn", False)
        return self.relu(y, f"{name}_relu") if relu else y

    def json(self, heads: list[int]) -> dict:
        return {"nodes": self.nodes, "arg_nodes": self.arg_nodes,
                "node_row_ptr": [int(v) for v in np.concatenate([[0], np.cumsum(self.outputs_per_node)])],
                "heads": [[h, 0, 0] for h in heads], "attrs": {"mxnet_version": ["int", 10901]}}


def _backbone(w: _SymbolWriter) -> dict[int, int]:
    """Pre-activation ResNet-50; returns the last node of each stride 8/16/32 (insightface's taps)."""
    x = w.bn(0, "bn_data", None)
    x = w.conv(x, "conv0", 64, 7, stride=2)
    x = w.relu(w.bn(x, "bn0", False), "relu0")
    x = w._op("Pooling", "pooling0", [x], {"kernel": "(3, 3)", "pad": "(1, 1)", "pool_type": "max",
                                            "stride": "(2, 2)"}, 64)
    taps, stride = {}, 4
    for s, (units, filters) in enumerate(zip(UNITS, STAGE_FILTERS), start=1):
        for u in range(1, units + 1):
            p = f"stage{s}_unit{u}"
            first = u == 1
            step = 2 if first and s > 1 else 1
            act1 = w.relu(w.bn(x, f"{p}_bn1", False), f"{p}_relu1")
            y = w.conv(act1, f"{p}_conv1", filters // 4, 1)
            act2 = w.relu(w.bn(y, f"{p}_bn2", False), f"{p}_relu2")
            if step == 2:
                taps[stride] = act2  # the last layer computed at the previous stride
                stride *= 2
            y = w.conv(act2, f"{p}_conv2", filters // 4, 3, stride=step)
            y = w.relu(w.bn(y, f"{p}_bn3", False), f"{p}_relu3")
            y = w.conv(y, f"{p}_conv3", filters, 1)
            shortcut = w.conv(act1, f"{p}_sc", filters, 1, stride=step) if first else x
            x = w._op("elemwise_add", f"_plus_{p}", [y, shortcut], {}, filters)
    taps[32] = w.relu(w.bn(x, "bn1", False), "relu1")
    return taps


def _ssh_and_heads(w: _SymbolWriter, x: int, stride: int) -> list[int]:
    f, p = SSH_FILTERS, f"rf_head_stride{stride}"
    conv1 = w.conv_bn(x, f"{p}_conv1", f // 2, 3, relu=False)
    ctx1 = w.conv_bn(x, f"{p}_context_conv1", f // 4, 3)
    ctx2 = w.conv_bn(ctx1, f"{p}_context_conv2", f // 4, 3, relu=False)
    ctx3 = w.conv_bn(w.conv_bn(ctx1, f"{p}_context_conv3_1", f // 4, 3), f"{p}_context_conv3_2", f // 4, 3,
                     relu=False)
    cat = w._op("Concat", f"{p}_concat", [conv1, ctx2, ctx3], {"dim": 1, "num_args": 3}, f)
    cat = w.relu(cat, f"{p}_concat_relu")
    score = w.conv(cat, f"face_rpn_cls_score_stride{stride}", 4, 1, bias=True)
    score = w._op("Reshape", f"face_rpn_cls_score_reshape_stride{stride}", [score], {"shape": "(0, 2, -1, 0)"}, 2)
    prob = w._op("SoftmaxActivation", f"face_rpn_cls_prob_stride{stride}", [score], {"mode": "channel"}, 2)
    prob = w._op("Reshape", f"face_rpn_cls_prob_reshape_stride{stride}", [prob], {"shape": "(0, 4, -1, 0)"}, 4)
    bbox = w.conv(cat, f"face_rpn_bbox_pred_stride{stride}", 8, 1, bias=True)
    landmark = w.conv(cat, f"face_rpn_landmark_pred_stride{stride}", 20, 1, bias=True)
    return [prob, bbox, landmark]


def retinaface_r50_symbol() -> tuple[dict, dict[str, tuple[int, ...]]]:
    """The symbol JSON and the shape of every `arg:`/`aux:` parameter."""
    w = _SymbolWriter()
    taps = _backbone(w)
    c3 = w.conv_bn(taps[32], "rf_c3_lateral", FPN_FILTERS, 1)
    heads = _ssh_and_heads(w, c3, 32)
    upper = c3
    for level, stride in ((2, 16), (1, 8)):
        lateral = w.conv_bn(taps[stride], f"rf_c{level}_lateral", FPN_FILTERS, 1)
        up = w._op("UpSampling", f"rf_c{level + 1}_upsampling", [upper],
                   {"num_args": 1, "sample_type": "nearest", "scale": 2, "workspace": 512}, FPN_FILTERS)
        up = w._op("Crop", f"crop{2 - level}", [up, lateral], {"num_args": 2}, FPN_FILTERS)
        merged = w._op("elemwise_add", f"_plus_c{level}", [lateral, up], {}, FPN_FILTERS)
        upper = w.conv_bn(merged, f"rf_c{level}_aggr", FPN_FILTERS, 3)
        heads += _ssh_and_heads(w, upper, stride)
    return w.json(heads), w.params


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 parameters that keep activations of a 50-layer net in a sane range."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for key, shape in shapes.items():
        name = key.split(":", 1)[1]
        if name == "bn_data_moving_var":  # pixel statistics: bn_data brings 0..255 input to about unit scale
            value = rng.uniform(2500, 4500, shape)
        elif name == "bn_data_moving_mean":
            value = rng.uniform(100, 140, shape)
        elif name.endswith("_moving_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("_moving_mean"):
            value = rng.normal(0, 0.1, shape)
        elif name.endswith("_gamma"):
            value = rng.uniform(0.5, 1.5, shape)  # never 1: fix_gamma must be honoured
        elif name.endswith("_weight"):
            fan_in = int(np.prod(shape[1:]))
            gain = 0.3 if name.endswith(("_conv3_weight", "_sc_weight")) else 1.0  # tame the residual sums
            value = rng.normal(0, gain * np.sqrt(2.0 / fan_in), shape)
        else:
            value = rng.normal(0, 0.1, shape)
        arrays[key] = value.astype(np.float32)
    return arrays


def write_retinaface_r50(folder: Path, prefix: str = "R50", seed: int = 0) -> tuple[Path, Path]:
    """Write `<prefix>-symbol.json` and `<prefix>-0000.params` into `folder`."""
    from facezoo.convert.mxnet.ndarray_file import write_ndarray_file

    folder.mkdir(parents=True, exist_ok=True)
    symbol, shapes = retinaface_r50_symbol()
    symbol_path, params_path = folder / f"{prefix}-symbol.json", folder / f"{prefix}-0000.params"
    symbol_path.write_text(json.dumps(symbol, indent=1))
    write_ndarray_file(params_path, random_weights(shapes, seed))
    return symbol_path, params_path


_SHAPES_SCRIPT = """
import json, sys, mxnet as mx
sym = mx.sym.load(sys.argv[1])
args, _, aux = sym.infer_shape(data=(1, 3, 112, 112))
shapes = {"arg:" + k: v for k, v in zip(sym.list_arguments(), args) if k != "data"}
shapes.update({"aux:" + k: v for k, v in zip(sym.list_auxiliary_states(), aux)})
print(json.dumps(shapes))
"""


def write_mobilefacenet_arcface(folder: Path, real_symbol: Path, mxnet_python: str, seed: int = 7) -> tuple[Path, Path]:
    """Copy the real MobileFaceNet symbol into `folder` and write random parameters of MXNet's shapes."""
    from facezoo.convert.mxnet.ndarray_file import write_ndarray_file

    folder.mkdir(parents=True, exist_ok=True)
    shapes = json.loads(subprocess.run([mxnet_python, "-c", _SHAPES_SCRIPT, str(real_symbol)],
                                       check=True, capture_output=True, text=True).stdout)
    symbol_path, params_path = folder / "model-symbol.json", folder / "model-0000.params"
    symbol_path.write_bytes(real_symbol.read_bytes())
    write_ndarray_file(params_path, random_weights({k: tuple(v) for k, v in shapes.items()}, seed))
    return symbol_path, params_path


def deep_chain_symbol(blocks: int, channels: int = 8) -> tuple[dict, dict[str, tuple[int, ...]]]:
    """A plain chain of `blocks` 3x3 convolution + BatchNorm + ReLU units on a 3-channel input: a
    checkpoint whose conversion takes seconds (thousands of nodes) for signal tests, not megabytes."""
    w = _SymbolWriter()
    x = w.conv(0, "stem", channels, 3, bias=True)
    for k in range(blocks):
        x = w.conv_bn(x, f"unit{k}", channels, 3)
    return w.json([x]), w.params


def write_deep_chain(folder: Path, blocks: int, prefix: str = "chain", seed: int = 0) -> tuple[Path, Path]:
    """Write `<prefix>-symbol.json` and `<prefix>-0000.params` of `deep_chain_symbol(blocks)` into `folder`."""
    from facezoo.convert.mxnet.ndarray_file import write_ndarray_file

    folder.mkdir(parents=True, exist_ok=True)
    symbol, shapes = deep_chain_symbol(blocks)
    symbol_path, params_path = folder / f"{prefix}-symbol.json", folder / f"{prefix}-0000.params"
    symbol_path.write_text(json.dumps(symbol))
    write_ndarray_file(params_path, random_weights(shapes, seed))
    return symbol_path, params_path
