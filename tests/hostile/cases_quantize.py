"""Hostile omz_quantizer inputs: flags out of range, recipes (quantization.yml) broken in every way
the schema and the YAML reader refuse, FP32 IRs and checkpoints missing or not regular files,
datasets missing, of the wrong kind or too small, output paths that must not be written, an
ignored scope naming nothing; and SIGINT/SIGTERM while the model is measured and quantized. The
FP32 IRs are real (tests/hostile/models.py); nothing may appear at the INT8 folder in any case."""
from __future__ import annotations

import os
import shutil
import signal

from conftest import shared_path
from harness import Case, make_fifo, make_full_device
from models import PROJECT, converted_root

REC = "mobileface-identification-v1"  # small and quick: the cases that reach the model use it
DET = "retinaface-mnet025-v1"  # signal cases: seconds of calibration at 640x640
INT8 = f"out/public/{REC}/FP32-INT8"
RECIPE = f"models/public/{REC}/quantization.yml"
GOOD = "mode: ptq\nmetric: lfw_accuracy\nmax_drop: 0.005\nvalidation_size: 50\nsubset_size: 50\n"


def base(ctx, name: str = REC) -> list[str]:
    return ["--name", name, "--models_dir", "models", "-d", ctx.values["ir"], "-o", "out",
            "--dataset_dir", ctx.values["data"]]


def registry(recipe: str | None = GOOD, name: str = REC, plant=None):
    """setup: the real model's registry folder under models/ (its quantization.yml replaced by
    `recipe`, or removed for None), the converted FP32 IR and ../shared/data located; `plant(ctx)`
    then adds what the case needs."""
    def setup(ctx):
        ctx.values["data"] = shared_path("data")
        ctx.values["ir"] = converted_root(name)
        shutil.copytree(PROJECT / "models" / "public" / name, ctx.path("models", "public", name))
        target = ctx.path("models", "public", name, "quantization.yml")
        if recipe is None:
            target.unlink()
        elif recipe != "keep":
            ctx.write(str(target.relative_to(ctx.root)), recipe)
        if plant:
            plant(ctx)
    return setup


def case(id: str, expect: str, more=(), setup=None, area="quantize", argv=None, **kw) -> Case:
    return Case(f"quantize-{id}", area, "omz_quantizer", argv or (lambda ctx: base(ctx) + list(more)), expect,
                setup=setup or registry(), absent=kw.pop("absent", (INT8,)), **kw)


def flag_cases():
    bad = {"--max_drop": ("-1", "0.51", "nan", "inf", "1e308", "abc", "", "0x1", "1"),
           "--subset_size": ("0", "-3", "1.5", "100001", "1e3", "", "99999999999999999999999"),
           "--precisions": ("FP8-INT8", ",", "FP32", "fp32-int8,INT4"),
           "--mode": ("int4", "PTQ")}
    for flag, values in bad.items():
        for i, value in enumerate(values):
            yield case(f"flag{flag.lstrip('-')}-{i}", rf"{flag}", (flag, value))


RECIPES = {  # id: (quantization.yml text, regex of the error line)
    "mode": (GOOD.replace("ptq", "int4"), r"quantization.yml:1: mode: expected ptq or accuracy_control"),
    "max-drop-high": (GOOD.replace("0.005", "0.9"), r"quantization.yml:3: max_drop:"),
    "max-drop-negative": (GOOD.replace("0.005", "-0.1"), r"quantization.yml:3: max_drop:"),
    "max-drop-text": (GOOD.replace("0.005", "'small'"), r"quantization.yml:3: max_drop:"),
    "max-drop-inf": (GOOD.replace("0.005", ".inf"), r"quantization.yml:3:"),
    "subset-zero": (GOOD.replace("subset_size: 50", "subset_size: 0"), r"quantization.yml:5: subset_size:"),
    "subset-float": (GOOD.replace("subset_size: 50", "subset_size: 5.0"), r"quantization.yml:5: subset_size:"),
    "validation-huge": (GOOD.replace("validation_size: 50", "validation_size: 10000000"),
                        r"quantization.yml:4: validation_size:"),
    "unknown-key": (GOOD + "calibrate_harder: true\n", r"quantization.yml:6: calibrate_harder"),
    "no-metric": (GOOD.replace("metric: lfw_accuracy\n", ""), r"quantization.yml:1: .*metric"),
    "metric-elsewhere": (GOOD.replace("lfw_accuracy", "omz_ap64"), r"metric 'omz_ap64' is not a metric of"),
    "dataset-elsewhere": (GOOD + "dataset: wider\n", r"dataset 'wider' is not a dataset of"),
    "preset": (GOOD + "preset: fastest\n", r"quantization.yml:6: preset: expected performance or mixed"),
    "bad-regex": (GOOD + "ignored_scope:\n  patterns: ['fc5[']\n",
                  r"quantization.yml:7: ignored_scope.patterns\[0\]: not a regular expression"),
    "bad-type": (GOOD + "ignored_scope:\n  types: ['Conv olution']\n", r"quantization.yml:7: ignored_scope.types"),
    "scope-key": (GOOD + "ignored_scope:\n  layers: [fc5]\n", r"quantization.yml:7: ignored_scope.layers"),
    "syntax": ("mode: [ptq\n", r"quantization.yml"),
    "list": ("- mode\n- ptq\n", r"quantization.yml:1: .*expected"),
    "empty": ("", r"quantization.yml"),
    "two-documents": (GOOD + "---\n" + GOOD, r"quantization.yml"),
    "duplicate": (GOOD + "mode: accuracy_control\n", r"quantization.yml:6: .*duplicate"),
    "python-tag": (GOOD.replace("ptq", "!!python/name:os.system ''"), r"quantization.yml:1:"),
    "billion-laughs": ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n" + GOOD, r"quantization.yml:\d+: .*alias"),
    "latin1": (b"mode: ptq\nnotes: caf\xe9\n".decode("latin-1"), r"quantization.yml"),
    "too-big": (GOOD + "notes: '" + "x" * (1 << 20) + "'\n", r"quantization.yml: .*1,?048,?576|quantization.yml: .*MiB"
                                                             r"|quantization.yml: .*bytes"),
}


def recipe_cases():
    for id, (text, expect) in RECIPES.items():
        yield case(f"recipe-{id}", expect, setup=registry(text.encode("latin-1") if id == "latin1" else text))
    yield case("recipe-missing", r"quantization.yml: no quantization recipe for this model", setup=registry(None))
    for kind, plant in (("fifo", lambda ctx: make_fifo(ctx.path(RECIPE))),
                        ("device", lambda ctx: make_full_device(ctx.path(RECIPE))),
                        ("folder", lambda ctx: ctx.path(RECIPE).mkdir())):
        def setup(ctx, plant=plant):
            registry(None)(ctx)
            plant(ctx)
        yield case(f"recipe-{kind}", r"quantization.yml", setup=setup)
    yield case("accuracy-config-broken", r"accuracy-check.yml:\d+",
               setup=registry(plant=lambda ctx: ctx.write(f"models/public/{REC}/accuracy-check.yml", "models: 3\n")))
    yield case("ignored-name-absent", r"quantization.yml: ignored_scope: .*no_such_layer",
               setup=registry(GOOD + "ignored_scope:\n  names: [no_such_layer]\n"), timeout=120)


def _ir_copy(ctx, edit):
    """-d dl holding a copy of the FP32 IR, edited by `edit(folder)`."""
    folder = ctx.path("dl", "public", REC, "FP32")
    shutil.copytree(ctx.values["ir"] / "public" / REC / "FP32", folder)
    ctx.values["ir"] = ctx.path("dl")
    edit(folder / f"{REC}.xml")


def replaced(path, by):
    path.unlink()
    by(path)


def input_cases():
    xml_edits = {
        "xml-fifo": (lambda x: replaced(x, make_fifo), r"FP32 IR \(.xml\)"),
        "xml-device": (lambda x: replaced(x, make_full_device), r"FP32 IR \(.xml\)"),
        "xml-folder": (lambda x: replaced(x, os.mkdir), r"FP32 IR \(.xml\)"),
        "bin-missing": (lambda x: x.with_suffix(".bin").unlink(), r"FP32 IR weights"),
        "bin-fifo": (lambda x: replaced(x.with_suffix(".bin"), make_fifo), r"FP32 IR weights"),
        "no-ir-no-checkpoint": (lambda x: shutil.rmtree(x.parent), r"no FP32 IR at .* and no checkpoint to convert"),
    }
    for id, (edit, expect) in xml_edits.items():
        yield case(id, expect, setup=registry(plant=lambda ctx, edit=edit: _ir_copy(ctx, edit)))
    datasets = {
        "dataset-missing": (lambda ctx: "nowhere", r"nowhere: --dataset_dir not found"),
        "dataset-file": (lambda ctx: ctx.write("d.txt", "x").name, r"d.txt: --dataset_dir is not a folder"),
        "dataset-fifo": (lambda ctx: (make_fifo(ctx.path("d")), "d")[1], r"d: --dataset_dir is not a folder"),
        "dataset-device": (lambda ctx: (make_full_device(ctx.path("d")), "d")[1], r"--dataset_dir is not a folder"),
        "dataset-empty": (lambda ctx: (ctx.path("d").mkdir(), "d")[1], r"holds no LFW dataset"),
        "dataset-wider": (lambda ctx: str(shared_path("data", "wider_val_dev")), r"holds no LFW dataset"),
    }
    for id, (make, expect) in datasets.items():
        def setup(ctx, make=make):
            registry()(ctx)
            ctx.values["data"] = make(ctx)
        yield case(id, expect, setup=setup)
    yield case("dataset-dir-absent", r"give --dataset_dir",
               argv=lambda ctx: base(ctx)[:-2])
    yield case("subset-too-large", r"subset_size 121: lfw_aligned_100pair .* has only 120 images outside",
               ("--subset_size", "121"))
    yield case("validation-whole-dataset", r"validation_size 200: .* has 200 pairs",
               setup=registry(GOOD.replace("validation_size: 50", "validation_size: 200")))
    yield case("unknown-model", r"--name: no model matches 'nope'", argv=lambda ctx: base(ctx, "nope"))


OUTPUTS = {  # id: (plant under ctx.root, regex)
    "out-is-file": (lambda ctx: (shutil.rmtree(ctx.out), ctx.write("out", "x")), r"-o/--output_dir"),
    "public-is-file": (lambda ctx: ctx.write("out/public", "x"), r"out/public: output folder"),
    "int8-folder-is-file": (lambda ctx: ctx.write(INT8, "x"), r"FP32-INT8: INT8 output folder"),
    "int8-folder-is-fifo": (lambda ctx: (ctx.path(INT8).parent.mkdir(parents=True), make_fifo(ctx.path(INT8))),
                            r"FP32-INT8: INT8 output folder"),
    "xml-is-folder": (lambda ctx: ctx.path(INT8, f"{REC}.xml").mkdir(parents=True), r"\.xml: output file"),
    "bin-is-fifo": (lambda ctx: (ctx.path(INT8).mkdir(parents=True), make_fifo(ctx.path(INT8, f"{REC}.bin"))),
                    r"\.bin: output file"),
    "record-is-device": (lambda ctx: (ctx.path(INT8).mkdir(parents=True),
                                      make_full_device(ctx.path(INT8, f"{REC}.quantization.json"))),
                         r"\.quantization\.json: output file"),
}


def output_cases():
    for id, (plant, expect) in OUTPUTS.items():
        absent = () if id.startswith(("out-is", "public-is", "int8-folder")) else (f"{INT8}/{REC}.xml/x",)
        yield case(id, expect, setup=registry(plant=plant), absent=absent)
    # a registry inside the INT8 folder: its recipe would be replaced by the run's outputs
    yield case("int8-holds-the-recipe", r"INT8 output folder holds an input of this run",
               argv=lambda ctx: ["--models_dir", f"{INT8}/models"] + base(ctx)[:2] + base(ctx)[4:],
               setup=registry(plant=lambda ctx: shutil.move(ctx.path("models"), ctx.path(INT8, "models"))),
               absent=(f"{INT8}/{REC}.xml",))


SIGNAL_PHASES = (("fp32", "measuring the FP32", 0.2, (signal.SIGINT, signal.SIGTERM)),
                 ("calibration", r"quantizing \(", 1.0, (signal.SIGINT, signal.SIGTERM)),
                 ("int8", "measuring the INT8", 0.2, (signal.SIGTERM,)))


def signal_cases():
    codes = {signal.SIGINT: 130, signal.SIGTERM: 143}
    for phase, ready, delay, signums in SIGNAL_PHASES:
        for signum in signums:
            name = signal.Signals(signum).name
            yield Case(f"quantize-{phase}-{name}", "signals",
                       "omz_quantizer", lambda ctx: base(ctx, DET) + ["--mode", "ptq"],
                       rf"interrupted by {name}; nothing partial was left at a final path",
                       setup=registry("keep", name=DET), exit=codes[signum],
                       absent=(f"out/public/{DET}/FP32-INT8",), signal=(signum, delay), ready_pattern=ready,
                       timeout=180)


CASES = [*flag_cases(), *recipe_cases(), *input_cases(), *output_cases(), *signal_cases()]
