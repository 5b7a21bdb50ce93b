"""Hostile omz_converter inputs: symbol JSON and .params files derived from the real MobileFace V3
checkpoint of ../shared by editing JSON or bytes, conversion settings in model.yml, output paths
that must not be written, and --verify's environment and photo. Each case is a row: how to edit
the checkpoint (or what to plant), the extra flags, and the one line the converter must print.
Nothing may appear under out/public (a final path) in any case."""
from __future__ import annotations

import copy
import functools
import json
import os
import struct
import subprocess
import zlib

import numpy as np

from conftest import file_entry, shared_path, write_model
from facezoo.convert.mxnet.ndarray_file import encode_ndarray_file, parse_ndarray_bytes
from harness import Case, make_fifo, make_full_device

SOURCE = ("data", "mirror", "mobileface-identification-v3")
REAL_SYMBOL, REAL_PARAMS = "MobileFace_Identification_V3-symbol.json", "MobileFace_Identification_V3-0000.params"
SYMBOL, PARAMS = "m-symbol.json", "m-0000.params"
DL = "dl/public/m"
CONVERSION = {"symbol": SYMBOL, "params": PARAMS,
              "inputs": [{"name": "data", "shape": [1, 3, 112, 112], "layout": "NCHW", "color_order": "RGB"}],
              "reverse_input_channels": True, "outputs": ["batchnorm0"]}
BASE = ["--name", "m", "--models_dir", "models", "-d", "dl", "-o", "out", "--precisions", "FP32"]
FIRST = "arg:conv1_weight"  # put first in rewritten .params files: its header is at a known offset
DIMS_AT, FLAG_AT = 24 + 12, 24 + 12 + 4 * 8 + 8  # its first dimension, its dtype flag (V2 layout, 4-d)


@functools.cache
def _real() -> tuple[str, tuple[tuple[str, np.ndarray], ...]]:
    folder = shared_path(*SOURCE)
    arrays = parse_ndarray_bytes((folder / REAL_PARAMS).read_bytes(), folder / REAL_PARAMS)
    pairs = [(FIRST, arrays.pop(FIRST))] + list(arrays.items())
    return (folder / REAL_SYMBOL).read_text(), tuple(pairs)


def fifo(ctx, rel: str) -> None:
    make_fifo(ctx.path(rel))


def device(ctx, rel: str) -> None:
    make_full_device(ctx.path(rel))


def checkpoint(symbol=None, params=None, conversion=None, precisions=None, plant=None):
    """setup: model 'm' in models/ whose checkpoint in dl/ is the real one with `symbol(doc)`
    (returns a new doc, or str/bytes for the file), `params(pairs)` (returns pairs or bytes) and
    `conversion(dict)` applied; `plant(ctx)` then adds whatever else the case needs."""
    def setup(ctx):
        text, pairs = _real()
        doc = json.loads(text)
        data = symbol(doc) if symbol else doc
        data = data if isinstance(data, (str, bytes)) else json.dumps(data)
        ctx.write(f"{DL}/{SYMBOL}", data)
        edited = params([(k, v.copy()) for k, v in pairs]) if params else list(pairs)
        ctx.write(f"{DL}/{PARAMS}", edited if isinstance(edited, bytes) else encode_ndarray_file(edited))
        conv = copy.deepcopy(CONVERSION)
        if conversion:
            conversion(conv)
        files = [file_entry(n, b"x", ["https://example.invalid/" + n]) for n in (SYMBOL, PARAMS)]
        extra = {"precisions": precisions} if precisions else {}
        write_model(ctx.path("models"), "m", files, conversion=conv, **extra)
        if plant:
            plant(ctx)
    return setup


def case(id: str, expect: str, setup=None, more: tuple = (), env=None, absent=("out/public",)) -> Case:
    """A convert-area case: BASE + `more` on the command line; by default nothing may appear under
    out/public (cases that plant something there name the final paths that must stay absent)."""
    return Case(id, "convert", "omz_converter", lambda ctx: BASE + list(more), expect, setup=setup or checkpoint(),
                absent=tuple(absent), env=env or {})


# --- symbol JSON edits -------------------------------------------------------------------------
def node(doc: dict, name: str) -> dict:
    return next(n for n in doc["nodes"] if n["name"] == name)


def set_attr(name: str, key: str, value: str | None):
    def edit(doc):
        attrs = node(doc, name).setdefault("attrs", {})
        if value is None:
            attrs.pop(key)
        else:
            attrs[key] = value
        return doc
    return edit


def set_field(name: str, key: str, value):
    def edit(doc):
        node(doc, name)[key] = value
        return doc
    return edit


def set_top(key: str, value):
    def edit(doc):
        doc[key] = value
        return doc
    return edit


def no_outputs(conv: dict) -> None:
    conv.pop("outputs")


def as_reshape(shape: str):
    """flatten0 (input 1x128x7x7) turned into a Reshape with `shape`."""
    def edit(doc):
        n = node(doc, "flatten0")
        n["op"], n["attrs"] = "Reshape", {"shape": shape}
        return doc
    return edit


S = rf"{SYMBOL}"
SYMBOL_CASES = [
    ("symbol-not-json", lambda d: "{nodes: [", rf"{S}: not valid JSON"),
    ("symbol-top-level-list", lambda d: [d], rf"{S}: not an MXNet symbol file"),
    ("symbol-deep-nesting", lambda d: "[" * 200_000 + "]" * 200_000, rf"{S}: JSON nested too deeply"),
    ("symbol-huge-integer", lambda d: '{"nodes": [], "heads": [[' + "9" * 5000 + ", 0, 0]]}",
     rf"{S}: not valid JSON.*(digits|limit)"),
    ("symbol-nan-literal", lambda d: json.dumps(d).replace('"heads": [[74, 0, 0]]', '"heads": [[NaN, 0, 0]]'),
     rf"{S}: not valid JSON: NaN is not a JSON number"),
    ("symbol-not-utf8", lambda d: b'{"nodes": [], "heads": [], "x": "\xff\xfe"}', rf"{S}:1: symbol JSON is not UTF-8"),
    ("symbol-nodes-empty", set_top("nodes", []), rf"{S}: 'nodes' is empty"),
    ("symbol-heads-empty", set_top("heads", []), rf"{S}: 'heads' must be a non-empty list"),
    ("symbol-head-out-of-range", set_top("heads", [[999, 0, 0]]), rf"{S}: heads\[0\] refers to node 999, which does not exist"),
    ("symbol-head-negative", set_top("heads", [[-1, 0, 0]]), rf"{S}: heads\[0\] refers to node -1"),
    ("symbol-head-float", set_top("heads", [[74.0, 0, 0]]), rf"{S}: heads\[0\] must be \[node, output\]"),
    ("symbol-input-out-of-range", set_field("conv1", "inputs", [[2, 0, 0], [9999, 0, 0]]),
     rf"{S}: nodes\[4\] \(conv1\): inputs\[1\] refers to node 9999, which does not exist"),
    ("symbol-input-forward-cycle", set_field("conv1", "inputs", [[6, 0, 0], [3, 0, 0]]),
     r"nodes\[4\] \(conv1\): inputs\[0\] refers to node 6, which comes later"),
    ("symbol-input-self-cycle", set_field("conv1", "inputs", [[4, 0, 0], [3, 0, 0]]),
     r"nodes\[4\] \(conv1\): inputs\[0\] refers to the node itself \(a cycle\)"),
    ("symbol-input-bool", set_field("conv1", "inputs", [[True, 0, 0], [3, 0, 0]]),
     r"nodes\[4\] \(conv1\): inputs\[0\] must be \[node, output\]"),
    ("symbol-input-negative-output", set_field("conv1", "inputs", [[2, -1, 0], [3, 0, 0]]),
     r"nodes\[4\] \(conv1\): inputs\[0\] names output -1"),
    ("symbol-duplicate-name", set_field("conv1", "name", "prelu1"),
     rf"{S}: nodes\[6\]: name 'prelu1' is also the name of nodes\[4\]; node names must be unique"),
    ("symbol-node-without-op", set_field("conv1", "op", ""), r"nodes\[4\]: 'op' must be a non-empty string"),
    ("symbol-variable-with-inputs", set_field("conv1_weight", "inputs", [[0, 0, 0]]),
     r"nodes\[3\] \(conv1_weight\): a variable \(op 'null'\) cannot have inputs"),
    ("symbol-arg-nodes-operator", set_top("arg_nodes", [0, 4]), r"arg_nodes lists nodes\[4\] \(conv1\)"),
    ("symbol-attr-not-string", set_attr("conv1", "num_filter", 32),
     r"nodes\[4\] \(conv1\): attribute 'num_filter' must be a string"),
    ("symbol-kernel-fraction", set_attr("conv1", "kernel", "(3.5, 3)"),
     rf"{S}: node 'conv1' \(Convolution\): attribute kernel='\(3\.5, 3\)' must be a tuple of integers"),
    ("symbol-num-filter-fraction", set_attr("conv1", "num_filter", "4.7"),
     r"node 'conv1' \(Convolution\): attribute num_filter='4\.7' must be an integer"),
    ("symbol-num-filter-zero", set_attr("conv1", "num_filter", "0"),
     r"node 'conv1' \(Convolution\): attribute num_filter='0' must be a positive integer"),
    ("symbol-num-filter-huge", set_attr("conv1", "num_filter", "99999999999"),
     r"attribute num_filter='99999999999' must be an integer within"),
    ("symbol-stride-zero", set_attr("conv1", "stride", "(0, 0)"), r"attribute stride='\(0, 0\)' must be positive integers"),
    ("symbol-pad-negative", set_attr("conv1", "pad", "(-1, -1)"), r"attribute pad='\(-1, -1\)' must be integers >= 0"),
    ("symbol-kernel-missing", set_attr("conv1", "kernel", None), r"node 'conv1' \(Convolution\): attribute 'kernel' is required"),
    ("symbol-kernel-3d-on-4d-input", set_attr("conv1", "kernel", "(3, 3, 3)"),
     r"node 'conv1' \(Convolution\): input of shape \(1, 3, 112, 112\) does not fit a 3-d kernel"),
    ("symbol-group-not-dividing", set_attr("stage1_unit1_conv0_1", "num_group", "5"),
     r"node 'stage1_unit1_conv0_1' \(Convolution\): 32 input channels and num_filter=32 must both be divisible by num_group=5"),
    ("symbol-unknown-op", set_field("prelu1", "op", "FancyOp"),
     rf"{S}: node 'prelu1': operator 'FancyOp' is not supported \(supported: .*Convolution"),
    ("symbol-unknown-attribute", set_attr("conv1", "weird", "1"),
     r"node 'conv1' \(Convolution\): attribute 'weird' is not one Convolution takes"),
    ("symbol-scalar-infinite", set_attr("_minusscalar0", "scalar", "1e999"),
     r"node '_minusscalar0' \(_minus_scalar\): attribute scalar='1e999' must be a finite number"),
    ("symbol-scalar-nan", set_attr("_mulscalar0", "scalar", "nan"), r"attribute scalar='nan' must be a finite number"),
    ("symbol-bn-eps-nan", set_attr("batchnorm0", "eps", "nan"), r"node 'batchnorm0' \(BatchNorm\): attribute eps='nan'"),
    ("symbol-bn-output-mean-var", set_attr("batchnorm0", "output_mean_var", "True"),
     r"attribute output_mean_var='True' must be one of False"),
    ("symbol-bool-garbage", set_attr("fc5", "no_bias", "maybe"), r"node 'fc5' \(FullyConnected\): attribute no_bias='maybe' must be True or False"),
    ("symbol-prelu-rrelu", set_attr("prelu1", "act_type", "rrelu"), r"node 'prelu1' \(LeakyReLU\): act_type 'rrelu' is not supported"),
    ("symbol-reshape-two-minus-one", as_reshape("(-1, -1)"), r"node 'flatten0' \(Reshape\): attribute shape='\(-1, -1\)' must be at most one -1"),
    ("symbol-reshape-below-minus-four", as_reshape("(0, -5)"), r"attribute shape='\(0, -5\)' must be values >= -4"),
    ("symbol-reshape-not-divisible", as_reshape("(0, 5, -1)"), r"node 'flatten0' \(Reshape\): cannot reshape \(1, 128, 4, 4\) with shape=\(0, 5, -1\): -1 cannot be inferred"),
    ("symbol-reshape-too-many-copies", as_reshape("(0, 0, 0, 0, 0)"), r"cannot reshape \(1, 128, 4, 4\) .*0 refers to input dimensions the input does not have"),
    ("symbol-too-few-inputs", set_field("conv1", "inputs", [[2, 0, 0]]), r"node 'conv1' \(Convolution\) has 1 inputs, expected 2 to 3"),
]

CONVERSION_HEAD_CASES = [
    ("symbol-head-output-missing", set_top("heads", [[74, 5, 0]]), r"output 5 of node 'batchnorm0' is listed as a graph output but does not exist"),
    ("symbol-head-is-variable", set_top("heads", [[3, 0, 0]]), r"output 'conv1_weight' is a variable, not an operator"),
    ("symbol-head-twice", set_top("heads", [[74, 0, 0], [74, 0, 0]]), r"node 'batchnorm0' is listed twice among the outputs"),
]


# --- .params edits -----------------------------------------------------------------------------
def patch(offset: int, fmt: str, value):
    def edit(pairs):
        data = bytearray(encode_ndarray_file(pairs))
        struct.pack_into(fmt, data, offset, value)
        return bytes(data)
    return edit


def name_count(value: int):
    def edit(pairs):
        data = bytearray(encode_ndarray_file(pairs))
        at = len(data) - sum(8 + len(k.encode()) for k, _ in pairs) - 8
        struct.pack_into("<Q", data, at, value)
        return bytes(data)
    return edit


def poison(value: float):
    def edit(pairs):
        pairs[0][1].reshape(-1)[5] = value
        return pairs
    return edit


def rename(old: str, new: str):
    return lambda pairs: [(new if k == old else k, v) for k, v in pairs]


def reshaped(name: str, shape: tuple):
    return lambda pairs: [(k, np.ones(shape, np.float32) if k == name else v) for k, v in pairs]


P = rf"{PARAMS}"
PARAMS_CASES = [
    ("params-truncated", lambda p: encode_ndarray_file(p)[:100_000], rf"{P}: .*truncated"),
    ("params-empty", lambda p: b"", rf"{P}: truncated file: file header"),
    ("params-bad-magic", lambda p: b"\x13" + encode_ndarray_file(p)[1:], rf"{P}: not an MXNet NDArray file"),
    ("params-lying-huge-dimension", patch(DIMS_AT, "<q", 10**15), rf"{P}: array #0 claims shape \(1000000000000000, 3, 3, 3\), larger than any"),
    ("params-lying-dimension", patch(DIMS_AT, "<q", 10**6), rf"{P}: array #0 data of shape \(1000000, 3, 3, 3\) \(float32\) claims 108000000 bytes"),
    ("params-negative-dimension", patch(DIMS_AT, "<q", -5), rf"{P}: array #0 has a negative dimension"),
    ("params-lying-array-count", patch(16, "<Q", 2**40), rf"{P}: header claims 1099511627776 arrays, more than the file can hold"),
    ("params-lying-ndim", patch(32, "<i", 99), rf"{P}: array #0 claims 99 dimensions"),
    ("params-sparse-storage", patch(28, "<i", 1), rf"{P}: array #0 uses sparse storage"),
    ("params-unknown-dtype", patch(FLAG_AT, "<i", 99), rf"{P}: array #0 has unknown dtype flag 99"),
    ("params-trailing-bytes", lambda p: encode_ndarray_file(p) + b"junk", rf"{P}: 4 unexpected bytes after the last name"),
    ("params-name-count-mismatch", name_count(5), rf"{P}: \d+ arrays but 5 names"),
    ("params-duplicate-name", rename("arg:prelu1_gamma", FIRST), rf"{P}: name '{FIRST}' is given to arrays #0 and #\d+"),
    ("params-name-not-utf8", lambda p: encode_ndarray_file(p).replace(b"arg:conv1_weight", b"arg:conv1_w\xffight"),
     rf"{P}: name #0 is not UTF-8"),
    ("params-nan-weight", poison(float("nan")), rf"{P}: array '{FIRST}' holds 1 NaN or infinite value"),
    ("params-inf-weight", poison(float("inf")), rf"{P}: array '{FIRST}' holds 1 NaN or infinite value"),
    ("params-missing-array", lambda p: [(k, v) for k, v in p if k != "arg:prelu1_gamma"],
     rf"{S}: node 'prelu1_gamma' \(input of 'prelu1'\) is neither in the \.params file nor a declared input"),
    ("params-extra-array", lambda p: p + [("arg:stray_weight", np.ones(3, np.float32))],
     rf"the \.params file holds 1 array\(s\) that are not variables of {S}: stray_weight"),
    ("params-arg-aux-clash", lambda p: p + [("aux:prelu1_gamma", np.ones(32, np.float32))],
     r"the \.params file holds both 'arg:prelu1_gamma' and 'aux:prelu1_gamma'"),
    ("params-shape-mismatch", reshaped("arg:prelu1_gamma", (31,)),
     r"node 'prelu1' \(LeakyReLU\): gamma 'prelu1_gamma' has shape \(31,\) in the \.params file, the graph needs \(32,\)"),
    ("params-negative-variance", lambda p: [(k, -v if k == "aux:batchnorm0_moving_var" else v) for k, v in p],
     r"node 'batchnorm0' \(BatchNorm\): moving_var \+ eps must be positive"),
]


# --- model.yml conversion settings ----------------------------------------------------------------
def setting(key: str, value):
    def edit(conv):
        conv[key] = value
    return edit


def input_field(key: str, value):
    def edit(conv):
        conv["inputs"][0][key] = value
    return edit


SETTINGS_CASES = [
    ("settings-mean-nan", setting("mean_values", [float("nan")] * 3), r"model\.yml:\d+: .*nan.* finite"),
    ("settings-mean-infinite", setting("mean_values", [1.0, float("inf"), 2.0]), r"model\.yml:\d+: .*inf.* finite"),
    ("settings-scale-zero", setting("scale_values", [0]), r"scale_values"),
    ("settings-scale-infinite", setting("scale_values", [float("inf")]), r"model\.yml:\d+: .*inf.* finite"),
    ("settings-mean-count", setting("mean_values", [1.0, 2.0]), r"conversion\.mean_values: expected 1 or 3 values, found 2"),
    ("settings-shape-3d", input_field("shape", [3, 112, 112]), r"conversion\.inputs\[0\]\.shape: \[3, 112, 112\] is not N, C, H, W"),
    ("settings-shape-zero", input_field("shape", [1, 3, 0, 112]), r"shape"),
    ("settings-shape-huge", input_field("shape", [1, 3, 65536, 65536]),
     r"conversion\.inputs\[0\]\.shape: \[1, 3, 65536, 65536\] has more than 268,435,456 elements"),
    ("settings-input-not-in-graph", input_field("name", "image"), rf"{S}: conversion input 'image' is not a variable of the graph"),
    ("settings-output-not-a-node", setting("outputs", ["nope"]), rf"conversion\.outputs: 'nope' is not a node of {S}"),
    ("settings-drop-unknown-output", setting("drop_outputs", ["nope"]), r"conversion\.drop_outputs: 'nope' is not an output"),
    ("settings-channels-not-three", input_field("shape", [1, 1, 112, 112]),
     r"conversion\.reverse_input_channels: input 'data' has 1 channels, not 3"),
]


# --- files that are not files, outputs that must not be written ------------------------------
def link(rel: str, target: str, hard: bool = False):
    def plant(ctx):
        ctx.path(rel).parent.mkdir(parents=True, exist_ok=True)
        (os.link if hard else os.symlink)(ctx.path(target), ctx.path(rel))
    return plant


def stale_leftover(ctx) -> None:
    """What a `kill -9` of an earlier run left in out/: a pid-tagged staging folder of a dead process."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    ctx.write(f"out/.facezoo-tmp-{proc.pid}-convert.x1/m.onnx", b"half")


M_OUT = "out/public/m"
ONNX_OUT, XML_OUT, BIN_OUT = f"{M_OUT}/m.onnx", f"{M_OUT}/FP32/m.xml", f"{M_OUT}/FP32/m.bin"
PLANTED = {  # cases that plant something under out/public: the final paths that must still be absent
    "output-onnx-is-a-folder": (XML_OUT, BIN_OUT), "output-precision-folder-is-a-file": (ONNX_OUT,),
    "output-xml-is-a-fifo": (ONNX_OUT, BIN_OUT), "output-bin-is-a-device": (ONNX_OUT,),
    "output-onnx-hardlinks-the-params": (XML_OUT, BIN_OUT), "output-xml-links-to-model-yml": (ONNX_OUT, BIN_OUT),
    "output-dir-is-a-file": (), "output-dir-is-a-fifo": (), "output-dir-is-a-device": ()}
FILE_CASES = [
    ("symbol-is-a-fifo", checkpoint(plant=lambda c: fifo(c, f"{DL}/{SYMBOL}")), (), rf"{S}: checkpoint file must be a regular file, found a FIFO"),
    ("symbol-is-a-device", checkpoint(plant=lambda c: device(c, f"{DL}/{SYMBOL}")), (), rf"{S}: checkpoint file must be a regular file, found a device"),
    ("params-is-a-fifo", checkpoint(plant=lambda c: fifo(c, f"{DL}/{PARAMS}")), (), rf"{P}: checkpoint file must be a regular file, found a FIFO"),
    ("params-is-a-device", checkpoint(plant=lambda c: device(c, f"{DL}/{PARAMS}")), (), rf"{P}: checkpoint file must be a regular file, found a device"),
    ("symbol-is-a-folder", checkpoint(plant=lambda c: (c.path(DL, SYMBOL).unlink(), c.path(DL, SYMBOL).mkdir())), (),
     rf"{S}: checkpoint file must be a regular file, found a directory"),
    ("symbol-missing", checkpoint(plant=lambda c: c.path(DL, SYMBOL).unlink()), (), rf"{S}: not found; run omz_downloader --name m"),
    ("symbol-over-64-mib", checkpoint(plant=lambda c: os.truncate(c.path(DL, SYMBOL), (64 << 20) + 1)), (),
     rf"{S}: symbol JSON is larger than the 67,108,864-byte limit"),
    ("output-dir-is-a-file", checkpoint(plant=lambda c: (c.out.rmdir(), c.write("out", "kept\n"))), (),
     r"out: -o/--output_dir must be a folder, found a regular file"),
    ("output-dir-is-a-fifo", checkpoint(plant=lambda c: (c.out.rmdir(), fifo(c, "out"))), (),
     r"out: -o/--output_dir must be a folder, found a FIFO"),
    ("output-dir-is-a-device", checkpoint(plant=lambda c: (c.out.rmdir(), device(c, "out"))), (),
     r"out: -o/--output_dir must be a folder, found a device"),
    ("output-onnx-is-a-folder", checkpoint(plant=lambda c: c.path(ONNX_OUT).mkdir(parents=True)), (),
     r"m\.onnx: output file must be a regular file or a new path, found a directory"),
    ("output-precision-folder-is-a-file", checkpoint(plant=lambda c: c.write(f"{M_OUT}/FP32", "kept\n")), (),
     r"FP32: output folder must be a folder, found a regular file"),
    ("output-xml-is-a-fifo", checkpoint(plant=lambda c: fifo(c, XML_OUT)), (),
     r"m\.xml: output file must be a regular file or a new path, found a FIFO"),
    ("output-bin-is-a-device", checkpoint(plant=lambda c: device(c, BIN_OUT)), (),
     r"m\.bin: output file must be a regular file or a new path, found a device"),
    ("output-onnx-hardlinks-the-params", checkpoint(plant=link(ONNX_OUT, f"{DL}/{PARAMS}", hard=True)), (),
     rf"m\.onnx: output file is also an input of this run \(.*{P}\)"),
    ("output-xml-links-to-model-yml", checkpoint(plant=link(XML_OUT, "models/public/m/model.yml")), (),
     r"m\.xml: output file is also an input of this run \(.*model\.yml\)"),
    ("output-onnx-is-the-symbol", checkpoint(conversion=setting("symbol", "m.onnx"),
                                             plant=lambda c: os.rename(c.path(DL, SYMBOL), c.path(DL, "m.onnx"))),
     ("-o", "dl"), r"dl/public/m/m\.onnx: output file is also an input of this run"),
    ("kill-9-leftover-swept", checkpoint(params=reshaped("arg:prelu1_gamma", (31,)), plant=stale_leftover), (),
     r"gamma 'prelu1_gamma' has shape \(31,\)"),
    ("precision-not-offered", checkpoint(precisions=["FP16"]), (), r"m: precision FP32 is not offered"),
]


# --- flags, --verify's environment and photo ---------------------------------------------------
def script(rel: str, body: str):
    def plant(ctx):
        path = ctx.write(rel, body)
        path.chmod(0o755)
    return plant


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height and whose data is a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


FAKE_MXNET = {"FACEZOO_MXNET_PYTHON": lambda ctx: str(ctx.path("fake-python"))}
FAKE = script("fake-python", "#!/bin/sh\nexit 0\n")  # "imports mxnet": the photo is checked next


def photo(rel: str, data=None, kind=None):
    def plant(ctx):
        FAKE(ctx)
        if kind:
            kind(ctx, rel)
        else:
            ctx.write(rel, data)
    return plant


VERIFY = ("--verify", "--verify_image", "photo.jpg")
FLAG_CASES = [
    ("verify-mxnet-unset", checkpoint(), ("--verify",), {"FACEZOO_MXNET_PYTHON": ""},
     r"FACEZOO_MXNET_PYTHON is not set; set one up with: python3 -m venv \.venv-mxnet .*export FACEZOO_MXNET_PYTHON="),
    ("verify-mxnet-missing", checkpoint(), ("--verify",), {"FACEZOO_MXNET_PYTHON": "/nonexistent/python"},
     r"FACEZOO_MXNET_PYTHON=/nonexistent/python is not an executable file; set one up"),
    ("verify-mxnet-not-installed", checkpoint(plant=script("py", "#!/bin/sh\necho 'No module named mxnet' >&2\nexit 1\n")),
     ("--verify",), {"FACEZOO_MXNET_PYTHON": lambda ctx: str(ctx.path("py"))},
     r"cannot import mxnet \(No module named mxnet\); set one up"),
    ("verify-image-fifo", checkpoint(plant=photo("photo.jpg", kind=fifo)), VERIFY, FAKE_MXNET,
     r"photo\.jpg: --verify_image must be a regular file, found a FIFO"),
    ("verify-image-device", checkpoint(plant=photo("photo.jpg", kind=device)), VERIFY, FAKE_MXNET,
     r"photo\.jpg: --verify_image must be a regular file, found a device"),
    ("verify-image-text", checkpoint(plant=photo("photo.jpg", b"not a photo\n")), VERIFY, FAKE_MXNET,
     r"photo\.jpg: --verify_image is not an image"),
    ("verify-image-empty", checkpoint(plant=photo("photo.jpg", b"")), VERIFY, FAKE_MXNET,
     r"photo\.jpg: --verify_image is not an image"),
    ("verify-image-bad-data", checkpoint(plant=photo("photo.jpg", png_header(64, 64))), VERIFY, FAKE_MXNET,
     r"photo\.jpg: --verify_image cannot be decoded"),
    ("verify-image-huge-header", checkpoint(plant=photo("photo.jpg", png_header(30000, 30000))), VERIFY, FAKE_MXNET,
     r"photo\.jpg: --verify_image is 30000x30000, more than 64,000,000 pixels"),
    ("verify-image-over-64-mib", checkpoint(plant=photo("photo.jpg", kind=lambda c, r: os.truncate(c.write(r, b""), (64 << 20) + 1))),
     VERIFY, FAKE_MXNET, r"photo\.jpg: --verify_image is larger than the 67,108,864-byte limit"),
    ("verify-image-without-verify", checkpoint(), ("--verify_image", "photo.jpg"), {}, r"--verify_image .* add --verify"),
    ("verify-with-dry-run", checkpoint(), ("--verify", "--dry_run"), {}, r"--verify .* cannot be combined with --dry_run"),
    ("precisions-unknown", checkpoint(), ("--precisions", "FP8"), {}, r"--precisions: 'FP8'; expected FP32 and/or FP16"),
    ("jobs-zero", checkpoint(), ("-j", "0"), {}, r"--jobs: 0; expected 1 or more"),
]

CASES = (
    [case(i, m, checkpoint(symbol=e)) for i, e, m in SYMBOL_CASES]
    + [case(i, m, checkpoint(symbol=e, conversion=no_outputs)) for i, e, m in CONVERSION_HEAD_CASES]
    + [case(i, m, checkpoint(params=e)) for i, e, m in PARAMS_CASES]
    + [case(i, m, checkpoint(conversion=e)) for i, e, m in SETTINGS_CASES]
    + [case(i, m, s, more, absent=PLANTED.get(i, ("out/public",))) for i, s, more, m in FILE_CASES]
    + [case(i, m, s, more, env=env) for i, s, more, env, m in FLAG_CASES]
)
