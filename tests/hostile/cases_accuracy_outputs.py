"""Hostile accuracy_check command lines: output paths that would clobber an input or are not
files, bad flags, and hostile accuracy configs and dataset definitions. Every case runs against a
real converted model and the real data of ../shared (linked into the case folder), and must be
refused before any inference."""
from __future__ import annotations

import shutil

from conftest import PROJECT, shared_path
from harness import Case, make_fifo, make_full_device
from models import converted_root

DETECTOR, RECOGNISER = "retinaface-mnet025-v1", "mobileface-identification-v1"
ANNOTATION = "data/wider_face_split/wider_face_val_bbx_gt.txt"
XML = f"ir/public/{DETECTOR}/FP32/{DETECTOR}.xml"


def _model(ctx, name: str) -> None:
    """A copy of the converted model inside the case folder (so a wrong write would show)."""
    shutil.copytree(converted_root(name) / "public" / name, ctx.path("ir", "public", name))


def _wider(ctx) -> None:
    """data/: the 200 real WIDER images (linked), a copy of their annotation, the official .mat files."""
    dev = shared_path("data", "wider_val_dev")
    root = ctx.path("data")
    (root / "WIDER_val").mkdir(parents=True)
    (root / "WIDER_val" / "images").symlink_to(dev / "WIDER_val" / "images")
    (root / "wider_face_split").mkdir()
    shutil.copy(dev / "wider_face_split" / "wider_face_val_bbx_gt.txt", root / "wider_face_split")
    (root / "ground_truth").symlink_to(dev / "ground_truth")


def _lfw(ctx) -> None:
    ctx.path("lfw").mkdir()
    ctx.path("lfw", "lfw_aligned_100pair").symlink_to(shared_path("data", "lfw", "lfw_aligned_100pair"))


def fifo(ctx, rel: str) -> None:
    make_fifo(ctx.path(rel))


def device(ctx, rel: str) -> None:
    make_full_device(ctx.path(rel))


def folder(ctx, rel: str, *files: str) -> None:
    ctx.path(rel).mkdir(parents=True, exist_ok=True)
    for name in files:
        ctx.write(f"{rel}/{name}", "kept\n")


def setup(kind: str = "wider", *steps):
    """Copy the model's config and the definitions into the case folder, the model and the data,
    then run each step (a callable of ctx)."""
    def build(ctx):
        name = DETECTOR if kind == "wider" else RECOGNISER
        shutil.copy(PROJECT / "models" / "public" / name / "accuracy-check.yml", ctx.path("config.yml"))
        shutil.copy(PROJECT / "accuracy_configs" / "dataset_definitions.yml", ctx.path("defs.yml"))
        _model(ctx, name)
        (_wider if kind == "wider" else _lfw)(ctx)
        for step in steps:
            step(ctx)
    return build


def argv(kind: str = "wider", *more: str, base: bool = True):
    """The command line: config, definitions, model and data of the case folder (cwd), then `more`."""
    data = "data" if kind == "wider" else "lfw"
    head = ["-c", "config.yml", "-d", "defs.yml", "-m", "ir", "-s", data, "--no_progress"] if base else []
    return lambda ctx: head + list(more)


def edit(rel: str, old: str, new: str):
    def step(ctx):
        path = ctx.path(rel)
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))
    return step


def write(rel: str, text: str | bytes):
    return lambda ctx: ctx.write(rel, text)


def link(rel: str, target: str):
    def step(ctx):
        ctx.path(rel).parent.mkdir(parents=True, exist_ok=True)
        ctx.path(rel).symlink_to(ctx.path(target))
    return step


def case(id: str, expect: str, more: tuple = (), steps: tuple = (), kind: str = "wider", absent=()):
    return Case(id, "accuracy", "accuracy_check", argv(kind, *more), expect, setup=setup(kind, *steps),
                absent=tuple(absent))


# --- output paths: never an input, never a non-file, checked before inference ---
OUTPUTS = [
    case("json-is-the-config", r"config\.yml: --json_result is also an input", ("--json_result", "config.yml")),
    case("json-is-the-definitions", r"defs\.yml: --json_result is also an input", ("--json_result", "defs.yml")),
    case("csv-is-the-annotation", r"bbx_gt\.txt: --csv_result is also an input", ("--csv_result", ANNOTATION)),
    case("json-is-the-ir-xml", r"\.xml: --json_result is also an input", ("--json_result", XML)),
    case("csv-is-the-ir-bin", r"\.bin: --csv_result is also an input", ("--csv_result", XML[:-4] + ".bin")),
    case("json-links-to-the-annotation", r"out/r\.json: --json_result is also an input",
         ("--json_result", "out/r.json"), (link("out/r.json", ANNOTATION),), absent=()),
    case("json-is-a-device", r"out/full: --json_result must be a regular file .*device",
         ("--json_result", "out/full"), (lambda c: device(c, "out/full"),), absent=()),
    case("csv-is-a-fifo", r"out/pipe: --csv_result must be a regular file .*FIFO",
         ("--csv_result", "out/pipe"), (lambda c: fifo(c, "out/pipe"),), absent=()),
    case("json-is-a-folder", r"out: --json_result must be a regular file .*directory", ("--json_result", "out")),
    case("json-in-a-missing-folder", r"--json_result's folder out/no/such does not exist",
         ("--json_result", "out/no/such/r.json"), absent=("out/no",)),
    case("json-inside-the-image-folder", r"--json_result is inside .*images, an input folder",
         ("--json_result", "data/WIDER_val/images/r.json")),
    case("json-and-csv-at-one-path", r"--csv_result and --json_result collide",
         ("--json_result", "out/r", "--csv_result", "out/r")),
    case("json-inside-the-report-folder", r"--json_result and --report collide|--report and --json_result collide",
         ("--report", "out/rep", "--json_result", "out/rep/r.json"), (lambda c: folder(c, "out/rep"),),
         absent=("out/rep/r.json",)),
    case("report-is-a-file", r"--report must be a folder, found not a regular file|--report must be a folder",
         ("--report", "out/r.txt"), (write("out/r.txt", "kept\n"),), absent=()),
    case("report-is-a-fifo", r"out/pipe: --report must be a folder, found a FIFO", ("--report", "out/pipe"),
         (lambda c: fifo(c, "out/pipe"),), absent=()),
    case("report-is-the-image-folder", r"--report holds an input of this run",
         ("--report", "data/WIDER_val/images")),
    case("report-is-the-dataset-root", r"data: --report holds an input of this run", ("--report", "data")),
    case("report-links-to-the-dataset-root", r"out/rep: --report holds an input of this run",
         ("--report", "out/rep"), (link("out/rep", "data"),), absent=()),
    case("report-holds-other-files", r"out/rep: --report is replaced whole, and it holds 'notes\.txt'",
         ("--report", "out/rep"), (lambda c: folder(c, "out/rep", "notes.txt"),), absent=()),
    case("report-parent-missing", r"--report's parent folder out/a does not exist", ("--report", "out/a/b"),
         absent=("out/a",)),
    case("submission-is-a-file", r"out/s: --submission_dir must be a folder", ("--submission_dir", "out/s"),
         (write("out/s", "kept\n"),), absent=()),
    case("submission-is-a-device", r"out/s: --submission_dir must be a folder, found a device",
         ("--submission_dir", "out/s"), (lambda c: device(c, "out/s"),), absent=()),
    case("submission-inside-the-image-folder", r"--submission_dir is inside .*images, an input folder",
         ("--submission_dir", "data/WIDER_val/images/sub")),
    case("submission-holds-other-files", r"--submission_dir is replaced whole, and it holds 'keep\.jpg'",
         ("--submission_dir", "out/s"), (lambda c: folder(c, "out/s/0--Parade", "keep.jpg"),), absent=()),
    case("submission-for-lfw", r"--submission_dir: lfw_aligned_100pair is an LFW dataset",
         ("--submission_dir", "out/s"), kind="lfw", absent=("out/s",)),
    case("predictions-is-a-fifo", r"out/p\.npz: stored predictions must be a regular file, found a FIFO",
         ("--stored_predictions", "out/p.npz"), (lambda c: fifo(c, "out/p.npz"),), absent=()),
    case("predictions-is-a-device", r"out/p\.npz: stored predictions must be a regular file, found a device",
         ("--stored_predictions", "out/p.npz"), (lambda c: device(c, "out/p.npz"),), absent=()),
    case("predictions-is-a-folder", r"out: stored predictions must be a regular file, found a directory",
         ("--stored_predictions", "out")),
    case("predictions-shard-missing", r"out/b\.npz: stored predictions shard not found \(1 of 2 missing\)",
         ("--stored_predictions", "out/a.npz", "out/b.npz"), (write("out/a.npz", b"PK"),), absent=("out/b.npz",)),
    case("predictions-in-a-missing-folder", r"--stored_predictions's folder out/x does not exist",
         ("--stored_predictions", "out/x/p.npz"), absent=("out/x",)),
]

# --- flags ---
FLAGS = [
    case("subsample-zero", r"--subsample_size: expected a whole number from 1", ("--subsample_size", "0")),
    case("subsample-negative", r"--subsample_size: expected a whole number from 1", ("--subsample_size", "-5")),
    case("subsample-not-a-number", r"--subsample_size: expected a whole number from 1", ("--subsample_size", "1e3")),
    case("subsample-unicode-digits", r"--subsample_size: expected a whole number from 1",
         ("--subsample_size", "\u0661\u0662")),
    case("subsample-over-the-images", r"--subsample_size 201: wider_val_dev in data has only 200 images",
         ("--subsample_size", "201")),
    case("subsample-over-the-pairs", r"--subsample_size 5000: lfw_aligned_100pair in lfw has only 200 pairs",
         ("--subsample_size", "5000"), kind="lfw"),
    case("precision-unknown", r"--precision: expected FP32, FP16", ("--precision", "FP8")),
    case("precision-folder-absent", r"no FP16 IR of retinaface-mnet025-v1 \(there is FP32\)", ("--precision", "FP16")),
    case("precision-contradicts-the-file", r"an FP32 IR, but --precision FP16 was given",
         ("-m", XML, "--precision", "FP16")),
    case("launcher-not-configured", r"--launcher onnxruntime: config\.yml configures no onnxruntime launcher",
         ("--launcher", "onnxruntime"), (edit("config.yml", "      - framework: onnxruntime\n        adapter: *retinaface\n",
                                              ""),)),
    case("launcher-unknown", r"--launcher: invalid choice", ("--launcher", "tensorrt")),
    case("device-unknown", r"--target_device FOO: 'FOO' is not an OpenVINO device on this machine",
         ("--target_device", "FOO")),
    case("device-in-a-virtual-list", r"'NPU9' is not an OpenVINO device", ("--target_device", "MULTI:CPU,NPU9")),
    case("device-for-onnxruntime", r"--target_device AUTO: the onnxruntime launcher runs on CPU only",
         ("--launcher", "onnxruntime", "--target_device", "AUTO")),
    case("device-with-shell-characters", r"--target_device: expected a device name", ("--target_device", "CPU;ls")),
    case("dataset-unknown", r"--dataset nope: not a dataset of config\.yml", ("--dataset", "nope")),
    case("detector-on-an-lfw-root", r"lfw: not a WIDER FACE detection dataset root .*looks like lfw_aligned_100pair",
         ("-s", "lfw"), (_lfw,)),
    case("recogniser-on-a-wider-root", r"data: not an LFW verification dataset root .*looks like wider",
         ("-s", "data"), (_wider,), kind="lfw"),
    case("adapter-does-not-fit", r"config\.yml:\d+: models\[0\]\.datasets\[0\] \(wider_val_dev\) is a WIDER FACE "
                                 r"detection dataset; launchers\[0\]'s embedding adapter does not fit",
         (), (edit("config.yml", "type: retinaface\n          score_threshold: 0.02\n          nms_threshold: 0.4",
                   "type: embedding"),)),
    case("source-missing", r"nowhere: dataset root \(-s\) not found", ("-s", "nowhere")),
    case("source-is-a-file", r"config\.yml: dataset root \(-s\) is not a folder", ("-s", "config.yml")),
    case("model-missing", r"none: model folder or file \(-m\) not found", ("-m", "none")),
    case("model-xml-is-a-fifo", r"\.xml: model file must be a regular file, found a FIFO", (),
         (lambda c: fifo(c, XML),)),
    case("model-bin-is-a-device", r"\.bin: IR weights .* must be a regular file, found a device", (),
         (lambda c: device(c, XML[:-4] + ".bin"),)),
    case("aligner-is-a-fifo", r"al\.xml: --aligner_model IR must be a regular file, found a FIFO",
         ("--aligner_model", "al.xml"), (lambda c: fifo(c, "al.xml"),), kind="lfw"),
]

# --- accuracy configs and dataset definitions: the hardened YAML reader, then the schema ---
LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))
YAML_FILES = [
    ("fifo", r"must be a regular file, found a FIFO", lambda rel: lambda c: fifo(c, rel)),
    ("device", r"must be a regular file, found a device", lambda rel: lambda c: device(c, rel)),
    ("folder", r"must be a regular file, found a directory",
     lambda rel: lambda c: (c.path(rel).unlink(), c.path(rel).mkdir())),
    ("over-1-mib", r"larger than the 1,048,576-byte limit", lambda rel: write(rel, "# x\n" * 300_000)),
    ("billion-laughs", r"alias", lambda rel: write(rel, LAUGHS)),
    ("deep-nesting", r"deeper|nest|depth", lambda rel: write(rel, "a: " + "[" * 200 + "]" * 200 + "\n")),
    ("not-utf8", r"not UTF-8", lambda rel: write(rel, b"models:\n  - name: \xff\xfe\n")),
    ("duplicate-key", r"duplicate key", lambda rel: write(rel, "datasets: []\ndatasets: []\n")),
    ("python-tag", r"unsupported YAML type", lambda rel: write(rel, "a: !!python/object:os.system x\n")),
]
CONFIG_YAML = [case(f"config-{name}", rf"config\.yml:?\d*: .*(?:{expect})", (), (make("config.yml"),))
               for name, expect, make in YAML_FILES]
DEFINITIONS_YAML = [case(f"definitions-{name}", rf"defs\.yml:?\d*: .*(?:{expect})", (), (make("defs.yml"),))
                    for name, expect, make in YAML_FILES]
SCHEMA = [
    case("config-unknown-adapter-option", r"config\.yml:\d+: models\[0\]\.launchers\[0\]\.adapter\.beam: unknown key",
         (), (edit("config.yml", "score_threshold: 0.02", "score_threshold: 0.02\n          beam: 4"),)),
    case("config-reference-without-threshold", r"config\.yml:\d+: .*give both reference and threshold",
         (), (edit("config.yml", "reference: 0.8719, threshold: 0.005", "reference: 0.8719"),)),
    case("config-no-models", r"config\.yml:\d+: models: ", (), (write("config.yml", "models: []\n"),)),
    case("config-nan-threshold", r"config\.yml:\d+: .*finite", (),
         (edit("config.yml", "reference: 0.8719, threshold: 0.005,", "reference: 0.8719, threshold: .nan,"),)),
    case("definitions-name-twice", r"defs\.yml:\d+: datasets\[\d\]\.name: 'wider' is defined twice", (),
         (edit("defs.yml", "  - name: wider_val_dev", "  - name: wider"),)),
    case("definitions-zero-image-count", r"defs\.yml:\d+: datasets\[0\]\.image_count", (),
         (edit("defs.yml", "image_count: 3226", "image_count: 0"),)),
    case("definitions-lack-the-configs-dataset", r"dataset 'wider_val_dev' of config\.yml is not in the dataset "
                                                 r"definitions", (),
         (edit("defs.yml", "  - name: wider_val_dev", "  - name: wider_dev_renamed"),)),
    case("definitions-say-lfw-for-a-wider-config", r"config\.yml: dataset wider_val_dev is an LFW verification "
                                                   r"dataset in defs\.yml; its metrics \(omz_ap64, ", (),
         (edit("defs.yml", "    type: wider\n    images: WIDER_val/images\n    annotation: wider_face_split/"
                           "wider_face_val_bbx_gt.txt\n    annotation_sha256",
               "    type: lfw\n    generate_pairs_folds: 10\n    images: WIDER_val/images\n    annotation_sha256"),)),
    case("definitions-bad-checksum-format", r"defs\.yml:\d+: datasets\[1\]\.annotation_sha256: expected 64 lowercase",
         (), (edit("defs.yml", "annotation_sha256: f04a", "annotation_sha256: F04A"),)),
]

CASES = OUTPUTS + FLAGS + CONFIG_YAML + DEFINITIONS_YAML + SCHEMA
