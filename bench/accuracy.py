"""accuracy_check's overhead over bare inference, measured side by side in one run.

On ../shared/data/wider_val_dev (200 real images) with retinaface-mnet025-v1 (FP32 IR):
1. bare OpenVINO: the same images decoded and resized beforehand (not timed), then only
   inference, throughput hint, f32, as many requests as the device suggests;
2. the `accuracy_check` command as a user runs it; its run (reading and resizing the images,
   inference, RetinaFace decoding, NMS, both WIDER metrics) as it reports it in the JSON
   result, and the whole command with the interpreter's start-up and imports;
3. decoding + NMS + matching per image, from the raw outputs kept in step 1.
Prints the ratio 2/1 (limit 1.15) and the per-image milliseconds of 3 (limit 5 ms), and the CPU
seconds behind them: what bare inference keeps busy, what reading the images costs on its own,
and so the lowest ratio any run that reads the images could reach on this machine.

Run: python bench/accuracy.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WIDER = ROOT.parent / "shared" / "data" / "wider_val_dev"
MIRROR = ROOT.parent / "shared" / "data" / "mirror"
NAME = "retinaface-mnet025-v1"


def _prepare(work: Path) -> Path:
    for module, args in (("facezoo.download.cli", ["--name", NAME, "--mirror", MIRROR, "-o", work / "dl"]),
                         ("facezoo.convert.cli", ["--name", NAME, "-d", work / "dl", "-o", work / "ir",
                                                  "--precisions", "FP32"])):
        subprocess.run([sys.executable, "-m", module, *map(str, args)], check=True, capture_output=True)
    return work / "ir" / "public" / NAME / "FP32" / f"{NAME}.xml"


def _cpu() -> float:
    """CPU seconds this process has used so far, every thread (OpenVINO's included)."""
    t = os.times()
    return t.user + t.system


def _bare(xml: Path, blobs: list[np.ndarray]) -> tuple[float, float, list[dict[str, np.ndarray]]]:
    """Inference only, on ready blobs: the device's number of requests started round-robin.
    Wall seconds, CPU seconds and the outputs."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT",
                                                         "INFERENCE_PRECISION_HINT": "f32"})
    requests = [compiled.create_infer_request()
                for _ in range(int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))]
    names = [o.any_name for o in compiled.outputs]
    outputs: list = [None] * len(blobs)
    cpu = _cpu()
    began = time.perf_counter()
    for i, blob in enumerate(blobs):
        request = requests[i % len(requests)]
        if i >= len(requests):
            request.wait()
            outputs[i - len(requests)] = {n: request.get_tensor(n).data.copy() for n in names}
        request.start_async({0: blob}, share_inputs=True)  # zero-copy, as accuracy_check
    for i in range(max(0, len(blobs) - len(requests)), len(blobs)):
        request = requests[i % len(requests)]
        request.wait()
        outputs[i] = {n: request.get_tensor(n).data.copy() for n in names}
    return time.perf_counter() - began, _cpu() - cpu, outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step; the best is kept")
    args = parser.parse_args()
    from machine import machine_line

    print(machine_line(), flush=True)
    if not WIDER.is_dir() or not MIRROR.is_dir():
        print(f"needs {WIDER} and {MIRROR} (../shared beside the project)")
        return 2
    from facezoo.evaluate.adapters.retinaface import decode, rescale
    from facezoo.evaluate.boxes import xywh_to_corners
    from facezoo.evaluate.datasets.wider import parse_bbx_gt
    from facezoo.evaluate.images import read_image, to_blob
    from facezoo.evaluate.metrics.detection import match_image

    with tempfile.TemporaryDirectory() as tmp:
        xml = _prepare(Path(tmp))
        images = parse_bbx_gt((WIDER / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text())
        reading = []
        for _ in range(args.repeat):
            cpu = _cpu()
            decoded = [read_image(WIDER / "WIDER_val" / "images" / i.path) for i in images]
            blobs = [to_blob(d, (1, 3, 640, 640)) for d in decoded]
            reading.append(_cpu() - cpu)
        config = ROOT / "models" / "public" / NAME / "accuracy-check.yml"
        bare_runs, full, command = [], [], []
        for _ in range(args.repeat):  # interleaved: the machine's load drifts
            bare_runs.append(_bare(xml, blobs))
            began = time.perf_counter()
            subprocess.run([sys.executable, "-m", "facezoo.evaluate.cli", "-c", config, "-m", Path(tmp) / "ir",
                            "-s", WIDER, "--no_progress", "--json_result", Path(tmp) / "r.json"],
                           check=True, capture_output=True)
            command.append(time.perf_counter() - began)
            full.append(json.loads((Path(tmp) / "r.json").read_text())["timings"]["total_s"])
        bare, bare_cpu, outputs = min(bare_runs, key=lambda r: r[0])
        del blobs, bare_runs
        post = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            for image, raw, original in zip(images, outputs, decoded):
                det = rescale(decode(raw, (640, 640)), original.shape[1] / 640, original.shape[0] / 640)
                match_image(det.boxes, det.scores, xywh_to_corners(image.faces),
                            (image.faces[:, 3] < 64) | image.invalid)
            post.append((time.perf_counter() - began) / len(images) * 1000)
    ratio = min(full) / bare
    cores = len(os.sched_getaffinity(0))
    # the least wall time of any run that must also read the images, all cores busy throughout
    floor = max(bare, (bare_cpu + min(reading)) / cores) / bare
    print(f"{NAME} on wider_val_dev, {len(images)} images, CPU f32, best of {args.repeat}")
    print(f"  bare OpenVINO inference on pre-decoded images   {bare:7.2f} s  ({len(images) / bare:.1f} img/s)")
    print(f"  accuracy_check run (read, infer, decode, metrics) {min(full):7.2f} s")
    print(f"  ratio run / bare                                 {ratio:7.2f}   (limit 1.15)")
    print(f"  the whole command, with interpreter start-up     {min(command):7.2f} s  "
          f"(ratio {min(command) / bare:.2f})")
    print(f"  decode + NMS + matching per image                {min(post):7.2f} ms (limit 5 ms)")
    print(f"  CPU seconds: bare inference {bare_cpu:.2f} ({bare_cpu / bare:.2f} of {cores} cores busy), "
          f"reading + resizing the images {min(reading):.2f};")
    print(f"  so no run that reads the images can go below {floor:.2f}x bare inference on this machine")
    return 0 if ratio <= 1.15 and min(post) < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
