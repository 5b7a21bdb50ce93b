"""facezoo side by side with what users would pick instead, measured in one run on one machine.

Sets up, each in its own virtual environment under --envs (never a dependency of facezoo; made
with uv, itself pip-installed into --envs/_uv, which takes seconds where pip takes minutes):
  mxnet    mxnet==1.9.1 numpy==1.23.5 onnx==1.14.1: MXNet's own forward pass (the reference)
           and its ONNX exporter (`mx.onnx.export_model`);
  mo2024   openvino-dev==2024.4.0 mxnet==1.9.1 numpy==1.23.5: the last Model Optimizer with an
           MXNet frontend (`mo --framework mxnet`);
  omz2023  openvino-dev==2023.3.0 numpy==1.23.5: Open Model Zoo's omz_downloader and its
           accuracy_check.
Then prints one table per section, and the whole run's wall time:
  convert  every real checkpoint in ../shared/data/mirror and ../shared/data/converter-cases and
           the synthetic RetinaFace-R50 (and, as evidence for Model Optimizer's error on it, the
           same graph with bn_data's fix_gamma default written out), by three routes: ours (omz_converter's translation + current
           ov.convert_model), Model Optimizer 2024.4, and MXNet's exporter + current ov.convert_model.
           Each IR runs under current OpenVINO with f32 inference precision on the same real photo
           (resized, fed exactly as MXNet takes it); the table gives success or the error, the
           largest absolute difference from MXNet's own outputs, and the wall time of the route.
  evaluate our accuracy_check (Open Model Zoo-compatible config) against Open Model Zoo's
           accuracy_check (openvino-dev 2023.3, its own venv) on the same FP32 IR of
           retinaface-mnet025-v1 over ../shared/data/wider_val_dev: both APs, wall time, peak
           memory; and bare OpenVINO inference speed for the overhead ratio.
  download our omz_downloader against Open Model Zoo's (openvino-dev 2023.3) on the same files from
           the same local HTTP server (tests/fileserver.py): 8 x 10 MB at 50 ms latency per request
           and 20 MB/s per connection, serially and with -j 4; and four fault cases (connection
           dropped mid-body, 429 then success, wrong bytes served, a tar.gz with a `../` member).
           Their model.yml lives in their package's model folder (sha384, their format); ours in a
           registry folder of ours (sha256). Both get --num_attempts 3.

Run: python bench/compare.py [--envs ~/.cache/facezoo-bench]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_ENVS = Path.home() / ".cache" / "facezoo-bench"

ENVS = {
    "facezoo": ["-e", f"{ROOT}[test]"],  # only when the Python running this script lacks facezoo
    "mxnet": ["mxnet==1.9.1", "numpy==1.23.5", "onnx==1.14.1", "protobuf<4"],
    "mo2024": ["openvino-dev==2024.4.0", "mxnet==1.9.1", "numpy==1.23.5"],
    "omz2023": ["openvino-dev==2023.3.0", "numpy==1.23.5"],
    # bench/official.py's peer, wondervictor/WiderFace-Evaluation: np.float needs numpy < 1.24, its
    # Cython extension Cython 0.29 and setuptools, its evaluation.py imports IPython
    "widerface": ["numpy==1.23.5", "scipy==1.10.1", "Cython<3", "setuptools", "tqdm", "ipython"],
}


def _uv(envs: Path) -> Path:
    """uv, in a small venv of its own: it installs the peers in seconds where pip takes minutes."""
    uv = envs / "_uv" / "bin" / "uv"
    if not uv.is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(envs / "_uv")], check=True)
        subprocess.run([str(envs / "_uv" / "bin" / "python"), "-m", "pip", "install", "-q", "uv"], check=True)
    return uv


def ensure_env(envs: Path, name: str) -> Path:
    """The python of a peer environment, created on first use."""
    python = envs / name / "bin" / "python"
    marker = envs / name / ".complete"
    if not marker.is_file():
        print(f"setting up {name}: uv pip install {' '.join(ENVS[name])}", flush=True)
        uv = _uv(envs)
        subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(envs / name)], check=True)
        subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), *ENVS[name]], check=True)
        marker.write_text("ok\n")
    return python


def _in_facezoo_env() -> None:
    """Go on under a Python that has facezoo: this one, or one made under --envs (a fresh machine)."""
    try:
        import facezoo  # noqa: F401
        import numpy  # noqa: F401
        import openvino  # noqa: F401
        return
    except ImportError:
        pass
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--envs", type=Path, default=DEFAULT_ENVS)
    envs = parser.parse_known_args()[0].envs
    envs.mkdir(parents=True, exist_ok=True)
    python = ensure_env(envs, "facezoo")
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _in_facezoo_env()

import numpy as np  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from synthetic_models import write_retinaface_r50  # noqa: E402

MEASURE = """
import json, resource, subprocess, sys, time
began = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "seconds": time.perf_counter() - began,
                  "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "stdout": proc.stdout[-4000:], "stderr": proc.stderr[-4000:]}))
"""

OMZ_CONFIG = """models:
  - name: retinaface-mnet025-v1
    launchers:
      - framework: openvino
        device: CPU
        model: {xml}
        weights: {bin}
        adapter:
          type: retinaface
          bboxes_outputs: [face_rpn_bbox_pred_stride32, face_rpn_bbox_pred_stride16, face_rpn_bbox_pred_stride8]
          scores_outputs: [face_rpn_cls_prob_reshape_stride32, face_rpn_cls_prob_reshape_stride16,
                           face_rpn_cls_prob_reshape_stride8]
          landmarks_outputs: [face_rpn_landmark_pred_stride32, face_rpn_landmark_pred_stride16,
                              face_rpn_landmark_pred_stride8]
    datasets:
      - name: wider
        data_source: {images}
        annotation_conversion:
          converter: wider
          annotation_file: {annotation}
        preprocessing:
          - type: resize
            size: 640
        postprocessing:
          - type: filter
            apply_to: annotation
            height_range: 64, 1024
            is_empty: True
        metrics:
          - type: map
            ignore_difficult: True
            include_boundaries: False
            allow_multiple_matches_per_ignored: False
            distinct_conf: False
"""

# Our accuracy_check's main thread under cProfile: cumulative seconds of the steps that matter.
PROFILE = """
import cProfile, json, pstats, sys
from facezoo.evaluate import cli
profile = cProfile.Profile()
profile.runcall(cli.main, sys.argv[2:])
stats = pstats.Stats(profile).stats
steps = {"post-processing per image (decode + NMS + rescale)": ("evaluate/wider_task.py", "post"),
         "of which NMS (adapters/nms.py)": ("adapters/nms.py", "nms"),
         "match_image": ("metrics/detection.py", "match_image"),
         "average_precision": ("metrics/detection.py", "average_precision"),
         "whole run": ("evaluate/cli.py", "main")}
out = {}
for label, (file, name) in steps.items():
    out[label] = sum(v[3] for (f, _, n), v in stats.items() if f.endswith(file) and n == name)
json.dump(out, open(sys.argv[1], "w"))
"""

EXPORT = """
import sys, numpy as np, mxnet as mx
shape = tuple(int(x) for x in sys.argv[3].split(","))
mx.onnx.export_model(sys.argv[1], sys.argv[2], in_shapes=[shape], in_types=[np.float32], onnx_file_path=sys.argv[4])
"""


@dataclass
class Case:
    label: str
    symbol: Path
    params: Path
    shape: tuple[int, ...]
    outputs: tuple[str, ...] | None
    mean: float | None = None  # normalisation MXNet's caller applies outside the graph
    scale: float | None = None


def cases(work: Path) -> list[Case]:
    mirror, other = SHARED / "mirror", SHARED / "converter-cases"
    found = []
    for folder in sorted(mirror.iterdir()):
        symbol = next(folder.glob("*-symbol.json"))
        params = next(folder.glob("*-0000.params"))
        if "retinaface" in folder.name:
            found.append(Case(folder.name, symbol, params, (1, 3, 640, 640), None))
        elif folder.name.endswith("v1"):
            found.append(Case(folder.name, symbol, params, (1, 1, 100, 100), ("l2normalization1",), 127.5, 127.5))
        else:
            head = "fc5_bn" if folder.name.endswith("v2") else "batchnorm0"
            found.append(Case(folder.name, symbol, params, (1, 3, 112, 112), (head,)))
    found.append(Case("converter-cases/retinaface-mnet.25", other / "retinaface-mnet.25" / "mnet.25-symbol.json",
                      other / "retinaface-mnet.25" / "mnet.25-0000.params", (1, 3, 640, 640), None))
    symbol, params = write_retinaface_r50(work / "r50", prefix="R50")
    found.append(Case("synthetic RetinaFace-R50", symbol, params, (1, 3, 640, 640), None))
    # the evidence for Model Optimizer's error on it: the same graph with bn_data's default spelled out
    graph = json.loads(symbol.read_text())
    for node in graph["nodes"]:
        if node["name"] == "bn_data":
            node.setdefault("attrs", {})["fix_gamma"] = "True"
    (work / "r50-fix-gamma").mkdir()
    (work / "r50-fix-gamma" / symbol.name).write_text(json.dumps(graph))
    (work / "r50-fix-gamma" / params.name).symlink_to(params)
    found.append(Case("synthetic RetinaFace-R50 with fix_gamma=True on bn_data", work / "r50-fix-gamma" / symbol.name,
                      work / "r50-fix-gamma" / params.name, (1, 3, 640, 640), None))
    return found


def photo_input(case: Case) -> np.ndarray:
    """The real photo, resized, as MXNet takes it: RGB (or grey), normalised where the model says."""
    import cv2
    image = cv2.imread(str(SHARED / "photos" / "friends.jpg"))
    image = cv2.resize(image, (case.shape[3], case.shape[2]), interpolation=cv2.INTER_LINEAR)
    if case.shape[1] == 1:
        planes = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[None]
    else:
        planes = image[:, :, ::-1].transpose(2, 0, 1)
    x = planes[None].astype(np.float32)
    if case.mean is not None:
        x = (x - case.mean) / case.scale
    return np.ascontiguousarray(x)


def _model_for(case: Case):
    from facezoo.registry import Conversion, InputSpec, Model
    conversion = Conversion(case.symbol.name, case.params.name,
                            (InputSpec("data", case.shape, "NCHW", "GRAY" if case.shape[1] == 1 else "RGB"),),
                            reverse_input_channels=False, outputs=case.outputs)
    task = "detection" if case.shape[2] == 640 else "face_recognition"
    return Model(case.label, "public/x", case.symbol.parent, case.label, task, "mxnet", "https://example.invalid", (),
                 conversion=conversion)


def _difference(ir: Path, feed: np.ndarray, reference: dict[str, np.ndarray]) -> float:
    from facezoo.convert.verify import run_ir
    got = {name.split(":")[0]: value for name, value in run_ir(ir, {"data": feed}).items()}
    if set(reference) - set(got):  # names not kept: match in order of the graph's heads
        got = dict(zip(reference, got.values()))
    return max(float(np.abs(got[k].reshape(v.shape) - v).max()) for k, v in reference.items())


def convert_section(envs: Path, work: Path) -> list[tuple[str, str, str, str]]:
    import onnx
    import openvino as ov
    from facezoo.convert.mxnet.ndarray_file import read_ndarray_file
    from facezoo.convert.mxnet.symbol import read_symbol
    from facezoo.convert.to_onnx import mxnet_to_onnx
    from facezoo.convert.verify import mxnet_outputs

    mxnet_python = ensure_env(envs, "mxnet")
    mo = ensure_env(envs, "mo2024").parent / "mo"
    os.environ["FACEZOO_MXNET_PYTHON"] = str(mxnet_python)
    rows = []
    for case in cases(work):
        model = _model_for(case)
        feed = photo_input(case)
        reference = mxnet_outputs(model, case.symbol, case.params, feed)
        tolerance = 1e-4 * (max(float(np.abs(v).max()) for v in reference.values()) + 1)
        out = work / re.sub(r"[^\w.-]", "_", case.label)  # OpenVINO splits paths at commas
        out.mkdir(parents=True)
        results = {}
        began = time.perf_counter()
        graph, _ = mxnet_to_onnx(read_symbol(case.symbol), read_ndarray_file(case.params), model.conversion)
        onnx.save(graph, out / "ours.onnx")
        ov.save_model(ov.convert_model(out / "ours.onnx"), out / "ours.xml", compress_to_fp16=False)
        results["ours"] = (time.perf_counter() - began, out / "ours.xml", None)
        began = time.perf_counter()
        proc = subprocess.run([str(mo), "--framework", "mxnet", "--input_model", str(case.params), "--input_symbol",
                               str(case.symbol), "--input", "data", "--input_shape", str(list(case.shape)),
                               "--output_dir", str(out / "mo"), "--model_name", "mo", "--compress_to_fp16=False"]
                              + (["--output", ",".join(case.outputs)] if case.outputs else []),
                              capture_output=True, text=True)
        error = None if proc.returncode == 0 else _first_error(proc.stdout + proc.stderr)
        results["mo 2024.4"] = (time.perf_counter() - began, out / "mo" / "mo.xml", error)
        began = time.perf_counter()
        proc = subprocess.run([str(mxnet_python), "-c", EXPORT, str(case.symbol), str(case.params),
                               ",".join(map(str, case.shape)), str(out / "mx.onnx")], capture_output=True, text=True)
        error = None
        if proc.returncode == 0:
            try:
                ov.save_model(ov.convert_model(out / "mx.onnx"), out / "mx.xml", compress_to_fp16=False)
            except Exception as exc:  # OpenVINO's own conversion errors
                error = str(exc).strip().splitlines()[0]
        else:
            error = _first_error(proc.stderr)
        results["mxnet exporter"] = (time.perf_counter() - began, out / "mx.xml", error)
        for route, (seconds, ir, error) in results.items():
            if error:
                rows.append((case.label, route, "FAILED: " + error[:90], f"{seconds:.1f}"))
                continue
            try:
                diff = _difference(ir, feed, reference)
                verdict = f"{diff:.2e} ({'exact' if diff <= tolerance else 'WRONG'})"
            except Exception as exc:  # an IR that does not run
                verdict = "FAILED to run: " + str(exc).strip().splitlines()[0][:80]
            rows.append((case.label, route, verdict, f"{seconds:.1f}"))
        print(f"  done: {case.label}", flush=True)
    return rows


def _measure(*command) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, *map(str, command)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def profile_ours(work: Path) -> list[tuple[str, str]]:
    """Where our OMZ-compatible run spends its main thread's time (cProfile, cumulative seconds;
    inference runs in OpenVINO's threads beside it, image reading partly in a reader thread)."""
    name = "retinaface-mnet025-v1"
    out = work / "profile.json"
    subprocess.run([sys.executable, "-c", PROFILE, str(out), "-c",
                    str(ROOT / "accuracy_configs" / "omz-compatible" / f"{name}.yml"), "-m", str(work / "ir"),
                    "-s", str(SHARED / "wider_val_dev"), "--no_progress"], check=True, capture_output=True)
    steps = json.loads(out.read_text())
    return [(label, f"{seconds:.2f}") for label, seconds in steps.items()]


def evaluate_section(envs: Path, work: Path) -> list[tuple[str, str, str, str]]:
    """Both accuracy checkers on the same IR and images, in the Open Model Zoo protocol."""
    import csv
    omz = ensure_env(envs, "omz2023").parent / "accuracy_check"
    name = "retinaface-mnet025-v1"
    for module, extra in (("facezoo.download.cli", ["--mirror", SHARED / "mirror", "-o", work / "dl"]),
                          ("facezoo.convert.cli", ["-d", work / "dl", "-o", work / "ir", "--precisions", "FP32"])):
        subprocess.run([sys.executable, "-m", module, "--name", name, *map(str, extra)], check=True,
                       capture_output=True)
    xml = work / "ir" / "public" / name / "FP32" / f"{name}.xml"
    wider = SHARED / "wider_val_dev"
    (work / "omz.yml").write_text(OMZ_CONFIG.format(xml=xml, bin=xml.with_suffix(".bin"),
                                                    images=wider / "WIDER_val" / "images",
                                                    annotation=wider / "wider_face_split" / "wider_face_val_bbx_gt.txt"))
    (work / "device.json").write_text('{"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}')
    print("  Open Model Zoo accuracy_check (slow: 5 to 17 minutes on the machines tried)", flush=True)
    theirs = _measure(omz, "-c", work / "omz.yml", "-dc", work / "device.json", "--csv_result", work / "omz.csv")
    their_ap = float("nan")  # their console rounds to 4 digits; the CSV keeps the full value
    if (work / "omz.csv").is_file():
        their_ap = float(next(csv.DictReader((work / "omz.csv").open()))["metric_value"])
    print("  facezoo accuracy_check", flush=True)
    ours = _measure(sys.executable, "-m", "facezoo.evaluate.cli", "-c",
                    ROOT / "accuracy_configs" / "omz-compatible" / f"{name}.yml", "-m", work / "ir", "-s", wider,
                    "--no_progress", "--json_result", work / "ours.json")
    our_ap = json.loads((work / "ours.json").read_text())["metrics"][0]["value"]
    sys.path.insert(0, str(ROOT / "bench"))
    from accuracy import _bare
    from facezoo.evaluate.datasets.wider import parse_bbx_gt
    from facezoo.evaluate.images import read_image, to_blob
    images = parse_bbx_gt((wider / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text())
    blobs = [to_blob(read_image(wider / "WIDER_val" / "images" / i.path), (1, 3, 640, 640)) for i in images]
    bare, _, _ = _bare(xml, blobs)
    del blobs
    return [
        ("bare OpenVINO inference, pre-decoded images", f"{len(images) / bare:.1f} img/s", f"{bare:.1f}", ""),
        ("Open Model Zoo accuracy_check 2023.3", f"{their_ap:.7f}", f"{theirs['seconds']:.1f}", f"{theirs['peak_mib']:.0f}"),
        ("facezoo accuracy_check, OMZ-compatible", f"{our_ap:.7f}", f"{ours['seconds']:.1f}", f"{ours['peak_mib']:.0f}"),
        ("difference (ours - theirs) / time ratio", f"{our_ap - their_ap:+.2e}",
         f"{ours['seconds'] / theirs['seconds']:.3f}", ""),
    ]


def _omz_model_root(envs: Path) -> Path:
    python = ensure_env(envs, "omz2023")
    out = subprocess.run([str(python), "-c", "from openvino.model_zoo import _common; print(_common.MODEL_ROOT)"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return Path(out)


def _both_models(envs: Path, work: Path, name: str, files: list[tuple[str, bytes, str]], archive: bool) -> None:
    """The same model in Open Model Zoo's format (in their package) and in ours (in work/models)."""
    import hashlib
    import yaml
    from conftest import write_model
    theirs = _omz_model_root(envs) / "public" / name
    theirs.mkdir(parents=True, exist_ok=True)
    doc = {"description": "facezoo comparison", "task_type": "detection", "framework": "onnx",
           "license": "https://example.invalid/LICENSE",
           "files": [{"name": n, "size": len(d), "checksum": hashlib.sha384(d).hexdigest(), "source": u}
                     for n, d, u in files],
           "model_optimizer_args": [f"--input_model=$dl_dir/{files[0][0]}"]}  # their schema wants a conversion
    extra = {}
    if archive:
        doc["postprocessing"] = [{"$type": "unpack_archive", "file": files[0][0], "format": "gztar"}]
        extra["postprocessing"] = [{"$type": "unpack_archive", "file": files[0][0], "format": "gztar"}]
    (theirs / "model.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    write_model(work / "models", name, [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(),
                                        "sources": [u]} for n, d, u in files], **extra)


def _download(envs: Path, work: Path, tool: str, name: str, out: Path, jobs: int = 1) -> tuple[int, float]:
    if tool == "ours":
        command = [sys.executable, "-m", "facezoo.download.cli", "--models_dir", str(work / "models")]
    else:
        command = [str(ensure_env(envs, "omz2023").parent / "omz_downloader")]
    began = time.perf_counter()
    proc = subprocess.run(command + ["--name", name, "-o", str(out), "-j", str(jobs), "--num_attempts", "3"],
                          capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - began


def _remove_bench_models(envs: Path) -> None:
    """Their downloader loads every model of its folder: no half-written model of ours may stay."""
    import shutil
    for folder in (_omz_model_root(envs) / "public").glob("facezoo-bench-*"):
        shutil.rmtree(folder)


def download_section(envs: Path, work: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    _remove_bench_models(envs)
    try:
        return _download_rows(envs, work)
    finally:
        _remove_bench_models(envs)


def _download_rows(envs: Path, work: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    import io
    import tarfile
    from fileserver import FileServer
    times = []
    with FileServer(latency=0.05, rate=20e6) as server:
        files = []
        for i in range(8):
            data = os.urandom(10_000_000)
            files.append((f"f{i}.bin", data, server.add(f"/f{i}.bin", data)))
        _both_models(envs, work, "facezoo-bench-eight", files, archive=False)
        for jobs in (1, 4):
            row = [f"8 x 10 MB, 50 ms latency, -j {jobs}"]
            for tool in ("omz", "ours"):
                rc, seconds = _download(envs, work, tool, "facezoo-bench-eight", work / f"t-{tool}-{jobs}", jobs)
                row.append(f"{seconds:.2f}" + ("" if rc == 0 else f" (exit {rc})"))
            row.append(f"{float(row[2].split()[0]) / float(row[1].split()[0]):.2f}")
            times.append(tuple(row))
    payload = os.urandom(1_000_000)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, content in (("model.onnx", payload), ("../escaped.txt", b"outside")):
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    archive = buffer.getvalue()
    cases = [("connection dropped mid-body", payload, ["close_mid"], None),
             ("429, then success", payload, ["status:429"], None),
             ("wrong bytes served (checksum mismatch)", payload, [], "wrong"),
             ("tar.gz with a ../ member", archive, [], None)]
    faults = []
    for label, data, queued, always in cases:
        row = [label]
        for tool in ("omz", "ours"):
            name = f"facezoo-bench-fault{len(faults)}"
            with FileServer() as server:
                url = server.add("/f.bin", data, faults=queued, always=always)
                file_name = "a.tar.gz" if "tar.gz" in label else "f.bin"
                _both_models(envs, work, name, [(file_name, data, url)], archive="tar.gz" in label)
                out = work / f"fault-{tool}-{len(faults)}"
                rc, _ = _download(envs, work, tool, name, out)
            target = out / "public" / name / file_name
            if "wrong" in label:
                ok = rc != 0 and not target.exists()
                verdict = "refused, nothing left" if ok else f"MISHANDLED (exit {rc}, file left: {target.exists()})"
            elif "../" in label:
                escaped = (out / "public" / "escaped.txt").exists()
                verdict = "refused" if rc != 0 and not escaped else (
                    "WROTE OUTSIDE the model folder" if escaped else f"exit {rc}, nothing outside")
            else:
                ok = rc == 0 and target.is_file() and target.read_bytes() == data
                verdict = "complete, verified" if ok else f"FAILED (exit {rc})"
            row.append(verdict)
        faults.append(tuple(row))
    return times, faults


def _first_error(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if "Error" in l or "error" in l.lower()]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "failed")


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A markdown table under its title."""
    print(title)
    for row in (header, ("---",) * len(header), *rows):
        print("| " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=Path, default=DEFAULT_ENVS,
                        help="where the peer environments live (made on first use)")
    parser.add_argument("--sections", default="download,convert,evaluate",
                        help="comma-separated: download, convert, evaluate")
    parser.add_argument("--profile", action="store_true",
                        help="evaluate: also run ours once more under cProfile and print where its time goes")
    args = parser.parse_args()
    args.sections = args.sections.split(",")
    from machine import machine_line

    print(machine_line(), flush=True)
    began = time.perf_counter()
    if not SHARED.is_dir():
        print(f"needs {SHARED} (../shared beside the project)")
        return 2
    args.envs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = convert_section(args.envs, Path(tmp) / "convert") if "convert" in args.sections else []
        evaluation = evaluate_section(args.envs, Path(tmp) / "evaluate") if "evaluate" in args.sections else []
        profile = profile_ours(Path(tmp) / "evaluate") if evaluation and args.profile else []
        times, faults = download_section(args.envs, Path(tmp) / "download") if "download" in args.sections else ([], [])
    if times:
        _table("\nDownload: wall seconds, Open Model Zoo's omz_downloader 2023.3 vs ours, same files, same local server",
               ("transfer", "theirs s", "ours s", "ours / theirs"), times)
        _table("", ("fault", "theirs", "ours"), faults)
    if evaluation:
        _table("\nEvaluation: retinaface-mnet025-v1 FP32 IR on wider_val_dev (200 images), f32 inference, "
               "Open Model Zoo's protocol", ("checker", "AP", "wall s", "peak MiB"), evaluation)
    if profile:
        _table("\nOurs under cProfile (main thread, cumulative seconds; the run is slower under the profiler)",
               ("step", "seconds"), profile)
    if rows:
        _table("\nConversion: max |IR - MXNet| on the same real photo (current OpenVINO, f32 inference); "
               "exact = within 1e-4 x (max |reference| + 1)", ("checkpoint", "route", "max abs difference", "wall s"),
               rows)
    minutes, seconds = divmod(time.perf_counter() - began, 60)
    print(f"\nwhole run, setting up any missing environment included: {int(minutes)} min {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
