"""INT8 against FP32, side by side in one run on the same CPU.

For retinaface-mnet025-v1 at 640x640 (WIDER omz_ap64 on ../shared/data/wider_val_dev) and the
MobileFace recognisers (LFW accuracy on ../shared/data/lfw/lfw_aligned_100pair): the FP32 IR
from the ../shared mirror and `omz_converter`, the INT8 IR from the `omz_quantizer` command with
the model's own recipe; then, for each IR:
- throughput: OpenVINO's AsyncInferQueue with the THROUGHPUT hint and the device's number of
  requests, one real input, for --seconds; FP32 and INT8 interleaved, the best of --repeat;
  at batch 1 (the issue's figure; also per CPU-second of this process, which holds where other
  jobs share the cores) and at --batch images per request (the same IR reshaped: what is left
  once the per-request cost, large beside a 0.2 ms recogniser, is shared);
- latency: one request at a time (LATENCY hint, synchronous), the median of --latency_runs;
- size of the IR on disk (.xml + .bin);
- the metric, from the `accuracy_check` command's JSON result (--precision FP32 / FP32-INT8).
Every compile sets the f32 inference-precision hint (the CPU plugin otherwise runs bf16 where
the CPU supports it); the INT8 IR's quantized layers run in INT8 regardless, its float layers in f32.
Prints the machine, the CPU's INT8 instruction sets, each figure, the ratios INT8/FP32 and the
issue's targets beside them; asserts nothing. --profile adds where the time goes, per layer type.

Run: python bench/quantize.py [--models NAME,...] [--repeat 3] [--seconds 3] [--profile]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MIRROR = DATA / "mirror"
WIDER = DATA / "wider_val_dev"
LFW = DATA / "lfw"
DETECTOR = "retinaface-mnet025-v1"
RECOGNISERS = ("mobileface-identification-v1", "mobileface-identification-v2", "mobileface-identification-v3")
INT8_ISA = {"avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI", "amx_int8": "AMX-INT8"}
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


@dataclass(frozen=True)
class Subject:
    """A model of the benchmark: its dataset root, the metric read from accuracy_check, the target."""
    name: str
    dataset: Path
    metric: str
    target_speedup: float
    sample: Path  # the one real input of the timing runs
    batchable: bool  # RetinaFace's graph reshapes with a constant batch of 1


def subjects(names: list[str]) -> list[Subject]:
    """The benchmark's models, in the order given."""
    out = []
    for name in names:
        if name.startswith("retinaface"):
            out.append(Subject(name, WIDER, "omz_ap64", 2.5,
                               next((WIDER / "WIDER_val" / "images").rglob("*.jpg")), False))
        else:
            out.append(Subject(name, LFW, "lfw_accuracy", 2.0,
                               next((LFW / "lfw_aligned_100pair").rglob("*.jpg")), True))
    return out


def _script(name: str) -> str:
    """A console script of the venv this interpreter belongs to."""
    return str(Path(sys.executable).parent / name)


def prepare(subject: Subject, work: Path) -> tuple[Path, Path, float]:
    """FP32 IR (mirror + omz_converter) and INT8 IR (omz_quantizer); the .xml paths and the
    quantizer's wall seconds."""
    name = subject.name
    subprocess.run([_script("omz_downloader"), "--name", name, "--mirror", str(MIRROR), "-o", str(work / "dl")],
                   check=True, capture_output=True)
    subprocess.run([_script("omz_converter"), "--name", name, "-d", str(work / "dl"), "-o", str(work / "ir"),
                    "--precisions", "FP32"], check=True, capture_output=True)
    began = time.perf_counter()
    run = subprocess.run([_script("omz_quantizer"), "--name", name, "-d", str(work / "dl"), "-o", str(work / "ir"),
                          "--precisions", "FP32-INT8", "--dataset_dir", str(subject.dataset)],
                         check=False, capture_output=True, text=True)
    took = time.perf_counter() - began
    if run.returncode != 0:
        raise SystemExit(f"omz_quantizer --name {name} failed ({run.returncode}):\n{run.stdout}{run.stderr}")
    folder = work / "ir" / "public" / name
    return folder / "FP32" / f"{name}.xml", folder / "FP32-INT8" / f"{name}.xml", took


def _blob(xml: Path, sample: Path) -> np.ndarray:
    import openvino as ov
    from facezoo.evaluate.images import read_image, to_blob

    shape = tuple(ov.Core().read_model(str(xml)).inputs[0].shape)
    return to_blob(read_image(sample, gray=shape[1] == 1), shape)


def _cpu() -> float:
    """CPU seconds this process has used so far, every thread (OpenVINO's included)."""
    t = os.times()
    return t.user + t.system


def throughput(core, xml: Path, blob: np.ndarray, seconds: float, batch: int = 1) -> tuple[float, float]:
    """Images per wall second and per CPU-second of this process: AsyncInferQueue over the
    device's number of requests, kept full, each request `batch` images (the IR reshaped to that
    batch). The second figure holds where other jobs take part of the cores."""
    import openvino as ov

    model = core.read_model(str(xml))
    if batch > 1:
        model.reshape({0: [batch, *blob.shape[1:]]})
        blob = np.ascontiguousarray(np.repeat(blob, batch, axis=0))
    compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **F32})
    queue = ov.AsyncInferQueue(compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    for _ in range(2 * len(queue)):  # warm-up
        queue.start_async({0: blob}, share_inputs=True)
    queue.wait_all()
    done, cpu, began = 0, _cpu(), time.perf_counter()
    while time.perf_counter() - began < seconds:
        for _ in range(len(queue)):
            queue.start_async({0: blob}, share_inputs=True)  # waits for an idle request
        done += len(queue) * batch
    queue.wait_all()
    return done / (time.perf_counter() - began), done / (_cpu() - cpu)


def latency(core, xml: Path, blob: np.ndarray, runs: int) -> float:
    """Median milliseconds of one synchronous request (LATENCY hint)."""
    compiled = core.compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY", **F32})
    request = compiled.create_infer_request()
    for _ in range(10):
        request.infer({0: blob}, share_inputs=True)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        request.infer({0: blob}, share_inputs=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def profile(core, xml: Path, blob: np.ndarray, runs: int = 100) -> tuple[float, list[tuple[str, float, int]]]:
    """Where an inference's time goes, on one thread (as each of the throughput run's streams): the
    layers' summed milliseconds per inference, and their share per (layer type, kernel) as
    (label, share, layer count) rows, largest first."""
    compiled = core.compile_model(str(xml), "CPU", {"NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": 1,
                                                    "PERF_COUNT": True, **F32})
    request = compiled.create_infer_request()
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, set[str]] = defaultdict(set)
    for _ in range(runs):
        request.infer({0: blob}, share_inputs=True)
        for info in request.profiling_info:
            us = info.real_time.total_seconds() * 1e6
            if us > 0:
                label = f"{info.node_type} {info.exec_type}"
                totals[label] += us
                counts[label].add(info.node_name)
    whole = sum(totals.values()) or 1.0
    return whole / runs / 1000, sorted(((k, v / whole, len(counts[k])) for k, v in totals.items()),
                                       key=lambda r: -r[1])


def metric(subject: Subject, ir: Path, precision: str, out: Path) -> float:
    """The subject's metric on its dataset, from accuracy_check's JSON result."""
    config = ROOT / "models" / "public" / subject.name / "accuracy-check.yml"
    run = subprocess.run([_script("accuracy_check"), "-c", str(config), "-m", str(ir), "-s", str(subject.dataset),
                          "--precision", precision, "--no_progress", "--json_result", str(out)],
                         check=False, capture_output=True, text=True)
    if run.returncode not in (0, 1):  # 1: a metric outside its reference, still a result
        raise SystemExit(f"accuracy_check {subject.name} {precision} failed:\n{run.stdout}{run.stderr}")
    return next(m["value"] for m in json.loads(out.read_text())["metrics"] if m["name"] == subject.metric)


def size(xml: Path) -> int:
    """Bytes of the IR on disk, .xml + .bin."""
    return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size


def table(rows: list[dict], batch: int) -> str:
    """The markdown table of the run: metric, throughput, latency and size, FP32 beside INT8."""
    header = (f"| model | metric | FP32 | INT8 | drop | FP32 inf/s | INT8 inf/s | INT8/FP32 (target) "
              f"| per CPU-s INT8/FP32 | batch {batch} INT8/FP32 | FP32 ms | INT8 ms | latency FP32/INT8 "
              f"| FP32 MiB | INT8 MiB | size INT8/FP32 |")
    lines = [header, "|---" * 16 + "|"]
    for r in rows:
        f, i = r["fp32"], r["int8"]
        batched = f"{i['tput_b'] / f['tput_b']:.2f}" if f["tput_b"] else "n/a"
        lines.append(f"| {r['name']} | {r['metric_name']} | {f['metric']:.4f} | {i['metric']:.4f} "
                     f"| {f['metric'] - i['metric']:+.4f} | {f['tput']:.1f} | {i['tput']:.1f} "
                     f"| {i['tput'] / f['tput']:.2f} ({r['target']}) "
                     f"| {i['per_cpu'] / f['per_cpu']:.2f} | {batched} | {f['lat']:.2f} | {i['lat']:.2f} "
                     f"| {f['lat'] / i['lat']:.2f} | {f['size'] / 2**20:.2f} | {i['size'] / 2**20:.2f} "
                     f"| {i['size'] / f['size']:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join((DETECTOR, *RECOGNISERS)),
                        help="comma-separated registry names (default: RetinaFace-mnet0.25 V1 and MobileFace V1-V3)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved throughput runs per IR; the best is kept")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput run")
    parser.add_argument("--batch", type=int, default=8, help="images per request of the second throughput figure")
    parser.add_argument("--latency_runs", type=int, default=200, help="single requests timed per IR")
    parser.add_argument("--profile", action="store_true", help="also print where each IR's time goes, per layer type")
    args = parser.parse_args()
    from machine import machine_line

    print(machine_line(), flush=True)
    from facezoo.evaluate.provenance import cpu

    isa = [label for flag, label in INT8_ISA.items() if flag in cpu()["isa"]]
    print(f"INT8 instruction sets: {', '.join(isa) or 'none (no VNNI, no AMX): INT8 runs on plain AVX2/AVX-512'}")
    if not (WIDER.is_dir() and LFW.is_dir() and MIRROR.is_dir()):
        print(f"needs {WIDER}, {LFW} and {MIRROR} (../shared beside the project)")
        return 2
    import openvino as ov

    print(f"OpenVINO {ov.get_version()}, load average at start {os.getloadavg()[0]:.2f}", flush=True)
    core = ov.Core()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for subject in subjects(args.models.split(",")):
            fp32, int8, took = prepare(subject, Path(tmp))
            blob = _blob(fp32, subject.sample)
            tput: dict[tuple[Path, int], list[tuple[float, float]]] = defaultdict(list)
            for _ in range(args.repeat):  # interleaved: the machine's load drifts
                for batch in (1, args.batch) if subject.batchable else (1,):
                    for xml in (fp32, int8):
                        tput[xml, batch].append(throughput(core, xml, blob, args.seconds, batch))
            row = {"name": subject.name, "metric_name": subject.metric, "target": subject.target_speedup}
            for label, xml, precision in (("fp32", fp32, "FP32"), ("int8", int8, "FP32-INT8")):
                row[label] = {"tput": max(r[0] for r in tput[xml, 1]), "per_cpu": max(r[1] for r in tput[xml, 1]),
                              "tput_b": max((r[0] for r in tput[xml, args.batch]), default=None),
                              "lat": latency(core, xml, blob, args.latency_runs), "size": size(xml),
                              "metric": metric(subject, Path(tmp) / "ir", precision,
                                               Path(tmp) / f"{subject.name}-{precision}.json")}
            rows.append(row)
            f, i = row["fp32"], row["int8"]
            batched = (f", at batch {args.batch} {f['tput_b']:.1f} and {i['tput_b']:.1f} images/s "
                       f"({i['tput_b'] / f['tput_b']:.2f}x)" if subject.batchable else "")
            print(f"{subject.name}: quantized in {took:.1f} s; throughput FP32 {f['tput']:.1f} INT8 {i['tput']:.1f} "
                  f"inf/s ({i['tput'] / f['tput']:.2f}x, target {subject.target_speedup}x; per CPU-second "
                  f"{f['per_cpu']:.1f} and {i['per_cpu']:.1f}, {i['per_cpu'] / f['per_cpu']:.2f}x){batched}; "
                  f"{subject.metric} {f['metric']:.4f} -> {i['metric']:.4f}", flush=True)
            if args.profile:
                cores = len(os.sched_getaffinity(0))
                for label, key, xml in (("FP32", "fp32", fp32), ("INT8", "int8", int8)):
                    layers_ms, top = profile(core, xml, blob)
                    print(f"  {label}: layers {layers_ms:.3f} ms per inference on one thread, against {cores} cores x "
                          f"1/throughput = {cores / row[key]['tput'] * 1000:.3f} ms of core time per inference; "
                          + "; ".join(f"{k} {share:.0%} ({n})" for k, share, n in top[:6]))
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    print()
    print(table(rows, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
