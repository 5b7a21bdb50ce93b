"""Hostile WIDER protocol inputs: protocol entries of accuracy-check.yml (names, preprocessing
steps, adapter options), --protocol, the dynamic-size model a scaling protocol needs, images a
scale turns into impossible network inputs, and conversion.dynamic_input in model.yml. Each row
runs the real console script and must end with one line naming the file (and line or field) or
flag and what was expected."""
from __future__ import annotations

import os
import shutil

from cases_accuracy_inputs import run_wider, wider
from cases_convert import checkpoint
from cases_convert import case as convert_case
from harness import Case
from models import converted_root

DETECTOR = "retinaface-mnet025-v1"
HEAD = """models:
  - name: retinaface-mnet025-v1
    launchers:
      - {framework: openvino, adapter: {type: retinaface}}
      - {framework: onnxruntime, adapter: {type: retinaface}}
    datasets:
"""
METRICS = "metrics: [{type: omz_ap64}]"
DEFAULT = f"      - {{name: wider_val_dev, preprocessing: [{{type: resize, size: 640}}], {METRICS}}}\n"


def entry(fields: str) -> str:
    """One dataset entry of wider_val_dev (flow style) with `fields` and the metrics."""
    return f"      - {{name: wider_val_dev, {fields}, {METRICS}}}\n"


def config(*entries: str, default: bool = True):
    """setup: the two-image WIDER root of cases_accuracy_inputs, with a config whose datasets are
    the default entry (unless `default` is False) and `entries`."""
    base = wider()

    def setup(ctx):
        base(ctx)
        ctx.write("config.yml", HEAD + (DEFAULT if default else "") + "".join(entries))
    return setup


ORIGINAL = entry("protocol: original, preprocessing: [{type: scale, factor: 1.0}]")
LINE = r"config\.yml:\d+: "
AT = LINE + r"models\[0\]\.datasets\[1\]"
# (id, entries after the default one, regex of the one error line)
CONFIG_ROWS = [
    ("protocol-twice", [ORIGINAL, ORIGINAL.replace("factor: 1.0", "factor: 0.5")],
     LINE + r"models\[0\]\.datasets\[2\]\.protocol: 'original' is already a protocol of wider_val_dev"),
    ("protocol-default-twice", [entry("protocol: default, preprocessing: [{type: resize, size: 640}]")],
     AT + r"\.protocol: 'default' is already a protocol of wider_val_dev"),
    ("resize-and-scale", [entry("protocol: p, preprocessing: [{type: resize, size: 640}, {type: scale, factor: 1}]")],
     AT + r"\.preprocessing: resize .* and scale .* exclude each other"),
    ("flip-without-scale", [entry("protocol: p, preprocessing: [{type: resize, size: 640}, {type: flip}]")],
     AT + r"\.preprocessing: flip runs each scaled input mirrored too; it needs a scale step"),
    ("scale-factor-and-target", [entry("protocol: p, preprocessing: [{type: scale, factor: 1, target_size: 800}]")],
     AT + r"\.preprocessing\[0\]: scale needs factor .* or target_size .*, exactly one"),
    ("scale-without-size", [entry("protocol: p, preprocessing: [{type: scale, max_size: 800}]")],
     AT + r"\.preprocessing\[0\]: scale needs factor .* or target_size .*, exactly one"),
    ("factor-with-sizes", [entry("protocol: p, preprocessing: [{type: scale, factor: 1, sizes: [500]}]")],
     AT + r"\.preprocessing\[0\]: max_size and sizes go with target_size, not with factor"),
    ("two-scale-steps", [entry("protocol: p, preprocessing: [{type: scale, factor: 1}, {type: scale, factor: 2}]")],
     AT + r"\.preprocessing\[1\]: a second scale step"),
    ("resize-without-size", [entry("protocol: p, preprocessing: [{type: resize}]")],
     AT + r"\.preprocessing\[0\]\.size: resize needs the network input's side"),
    ("voting-after-per-stride-nms",
     [entry("protocol: p, adapter: {box_voting: true, nms_per_stride: true}, preprocessing: [{type: resize, size: 640}]")],
     AT + r": box_voting merges all strides' candidates; it cannot follow nms_per_stride"),
    ("factor-zero", [entry("protocol: p, preprocessing: [{type: scale, factor: 0}]")], LINE + r".*factor"),
    ("factor-negative", [entry("protocol: p, preprocessing: [{type: scale, factor: -1}]")], LINE + r".*factor"),
    ("factor-huge", [entry("protocol: p, preprocessing: [{type: scale, factor: 1e300}]")], LINE + r".*factor"),
    ("factor-text", [entry("protocol: p, preprocessing: [{type: scale, factor: big}]")], LINE + r".*factor"),
    ("factor-nan", [entry("protocol: p, preprocessing: [{type: scale, factor: .nan}]")],
     LINE + r"'\.nan' is not a finite number"),
    ("target-size-fraction", [entry("protocol: p, preprocessing: [{type: scale, target_size: 1600.5}]")],
     LINE + r".*target_size"),
    ("target-size-zero", [entry("protocol: p, preprocessing: [{type: scale, target_size: 0}]")],
     LINE + r".*target_size"),
    ("max-size-huge", [entry("protocol: p, preprocessing: [{type: scale, target_size: 800, max_size: 99999999}]")],
     LINE + r".*max_size"),
    ("sizes-empty", [entry("protocol: p, preprocessing: [{type: scale, target_size: 800, sizes: []}]")],
     LINE + r".*sizes"),
    ("sizes-seventeen", [entry("protocol: p, preprocessing: [{type: scale, target_size: 800, sizes: ["
                               + ", ".join(["500"] * 17) + "]}]")], LINE + r".*sizes"),
    ("sizes-negative", [entry("protocol: p, preprocessing: [{type: scale, target_size: 800, sizes: [500, -1]}]")],
     LINE + r".*sizes"),
    ("sizes-not-a-list", [entry("protocol: p, preprocessing: [{type: scale, target_size: 800, sizes: 500}]")],
     LINE + r".*sizes"),
    ("nine-steps", [entry("protocol: p, preprocessing: [" + ", ".join(["{type: flip}"] * 9) + "]")],
     LINE + r".*preprocessing"),
    ("unknown-step", [entry("protocol: p, preprocessing: [{type: pad}]")], LINE + r".*expected resize .*scale .*flip"),
    ("unknown-step-field", [entry("protocol: p, preprocessing: [{type: scale, factor: 1, mode: bilinear}]")],
     LINE + r".*mode"),
    ("protocol-upper-case", [entry("protocol: MXNet, preprocessing: [{type: scale, factor: 1}]")],
     LINE + r".*protocol.*expected a protocol name"),
    ("protocol-with-space", [entry("protocol: 'a b', preprocessing: [{type: scale, factor: 1}]")],
     LINE + r".*protocol.*expected a protocol name"),
    ("protocol-65-characters", [entry("protocol: " + "a" * 65 + ", preprocessing: [{type: scale, factor: 1}]")],
     LINE + r".*protocol.*expected a protocol name"),
    ("protocol-a-number", [entry("protocol: 1600, preprocessing: [{type: scale, factor: 1}]")],
     LINE + r".*protocol"),
    ("adapter-unknown-option", [entry("protocol: p, adapter: {outputs: [x]}, preprocessing: [{type: scale, factor: 1}]")],
     LINE + r".*adapter.*outputs"),
    ("adapter-voting-not-boolean", [entry("protocol: p, adapter: {box_voting: 1}, preprocessing: [{type: scale, factor: 1}]")],
     LINE + r".*box_voting"),
    ("adapter-threshold-above-one", [entry("protocol: p, adapter: {nms_threshold: 1.5}, "
                                           "preprocessing: [{type: scale, factor: 1}]")], LINE + r".*nms_threshold"),
]
CASES = [Case(f"protocol-config-{name}", "accuracy", "accuracy_check", run_wider("--protocol", "p"), expect,
              setup=config(*entries)) for name, entries, expect in CONFIG_ROWS]
CASES.append(Case("protocol-config-first-entry-not-default", "accuracy", "accuracy_check", run_wider(),
                  LINE + r"models\[0\]\.datasets\[0\]\.protocol: the first entry of wider_val_dev is its default "
                  r"protocol \(no protocol key\); put 'original' after it", setup=config(ORIGINAL, default=False)))


def _fixed_only(ctx) -> None:
    """ir/public/<detector>/FP32/: the fixed-size IR alone (no <name>-dynamic files)."""
    source = converted_root(DETECTOR) / "public" / DETECTOR
    target = ctx.path("ir", "public", DETECTOR, "FP32")
    target.mkdir(parents=True)
    for ext in (".xml", ".bin"):
        shutil.copy(source / "FP32" / f"{DETECTOR}{ext}", target / f"{DETECTOR}{ext}")
    shutil.copy(source / f"{DETECTOR}.onnx", target.parent / f"{DETECTOR}.onnx")


def _then(*steps):
    def setup(ctx):
        for step in steps:
            step(ctx)
    return setup


def _fixed_with_dynamic_fifo(ctx) -> None:
    _fixed_only(ctx)
    os.mkfifo(ctx.path("ir", "public", DETECTOR, "FP32", f"{DETECTOR}-dynamic.xml"))


def _run_local(*more: str, model=lambda c: c.path("ir")):
    return lambda c: ["-c", c.path("config.yml"), "-m", model(c), "-s", c.path("data"), "-d", c.path("defs.yml"),
                      "--no_progress", *more]


FIXED_XML = lambda c: c.path("ir", "public", DETECTOR, "FP32", f"{DETECTOR}.xml")  # noqa: E731
NEEDS = r"not found; --protocol original feeds each image at its own size and needs the model with open height"
BIG = entry("protocol: big, preprocessing: [{type: scale, factor: 16}]")
TINY = entry("protocol: tiny, preprocessing: [{type: scale, factor: 0.0001}]")
CASES += [
    Case("protocol-flag-unknown", "accuracy", "accuracy_check", run_wider("--protocol", "nosuch"),
         r"--protocol nosuch: not a protocol of wider_val_dev in .*config\.yml \(it has: default, original\)",
         setup=config(ORIGINAL)),
    Case("protocol-flag-unknown-without-protocols", "accuracy", "accuracy_check", run_wider("--protocol", "mxnet-1600"),
         r"--protocol mxnet-1600: not a protocol of wider_val_dev in .*config\.yml \(it has: default\)",
         setup=config()),
    Case("protocol-flag-upper-case", "accuracy", "accuracy_check", run_wider("--protocol", "MXNET"),
         r"argument --protocol: expected a protocol name such as mxnet-1600", setup=config(ORIGINAL)),
    Case("protocol-flag-empty", "accuracy", "accuracy_check", run_wider("--protocol", ""),
         r"argument --protocol: expected a protocol name", setup=config(ORIGINAL)),
    Case("protocol-flag-path", "accuracy", "accuracy_check", run_wider("--protocol", "../original"),
         r"argument --protocol: expected a protocol name", setup=config(ORIGINAL)),
    Case("protocol-needs-dynamic-model-folder", "accuracy", "accuracy_check", _run_local("--protocol", "original"),
         rf"{DETECTOR}-dynamic\.xml: {NEEDS}", setup=_then(config(ORIGINAL), _fixed_only)),
    Case("protocol-needs-dynamic-model-file", "accuracy", "accuracy_check",
         _run_local("--protocol", "original", model=FIXED_XML), rf"{DETECTOR}-dynamic\.xml: {NEEDS}",
         setup=_then(config(ORIGINAL), _fixed_only)),
    Case("protocol-needs-dynamic-onnx", "accuracy", "accuracy_check",
         _run_local("--protocol", "original", "--launcher", "onnxruntime"), rf"{DETECTOR}-dynamic\.onnx: {NEEDS}",
         setup=_then(config(ORIGINAL), _fixed_only)),
    Case("protocol-dynamic-model-is-a-fifo", "accuracy", "accuracy_check", _run_local("--protocol", "original"),
         rf"{DETECTOR}-dynamic\.xml: .*regular file, found a FIFO", setup=_then(config(ORIGINAL), _fixed_with_dynamic_fifo)),
    Case("protocol-scale-with-a-batch", "accuracy", "accuracy_check", run_wider("--protocol", "original", "--batch", "2"),
         r"--batch 2: --protocol original feeds each image at its own size, and inputs of different sizes cannot "
         r"share a request; use --batch 1", setup=config(ORIGINAL)),
    Case("protocol-dynamic-model-with-a-batch", "accuracy", "accuracy_check",
         _run_local("--batch", "2", model=lambda c: converted_root(DETECTOR) / "public" / DETECTOR / "FP32" /
                    f"{DETECTOR}-dynamic.xml"),
         rf"{DETECTOR}-dynamic\.xml: --batch 2: the model's input size is open \(a dynamic-size IR\), and a batch "
         r"needs one size; use the fixed-size IR or --batch 1", setup=config()),
    Case("protocol-scale-beyond-the-input-limit", "accuracy", "accuracy_check", run_wider("--protocol", "big"),
         r"images/0--Parade/.*\.jpg: \d+x\d+ scaled by 16 \(scale 16\) gives a \d+x\d+ network input; expected 1 to "
         r"16,777,216 pixels", setup=config(BIG)),
    Case("protocol-scale-to-nothing", "accuracy", "accuracy_check", run_wider("--protocol", "tiny"),
         r"images/0--Parade/.*\.jpg: \d+x\d+ scaled by 0\.0001 \(scale 0\.0001\) gives a 0x0 network input",
         setup=config(TINY)),
    Case("protocol-scale-beyond-with-skip-broken", "accuracy", "accuracy_check",
         run_wider("--protocol", "big", "--skip_broken"), r"no image could be read: all 2 are broken",
         setup=config(BIG)),
]


def _dynamic(value):
    def change(conv: dict) -> None:
        conv["dynamic_input"] = value
    return change


CASES += [
    convert_case("dynamic-input-not-boolean", r"model\.yml:\d+: conversion\.dynamic_input: expected true or false, "
                 r"found the text 'yes'",
                 checkpoint(conversion=_dynamic("yes"))),
    convert_case("dynamic-input-null", r"model\.yml:\d+: conversion\.dynamic_input: expected true or false, found null",
                 checkpoint(conversion=_dynamic(None))),
    convert_case("dynamic-input-fully-connected", r"node '.*' \(FullyConnected\): a fully connected layer needs a "
                 r"fixed input size; dynamic_input is for fully convolutional graphs",
                 checkpoint(conversion=_dynamic(True))),
    convert_case("dynamic-input-fully-connected-dry-run", r"\(FullyConnected\): a fully connected layer needs",
                 checkpoint(conversion=_dynamic(True)), more=("--dry_run",)),
]
