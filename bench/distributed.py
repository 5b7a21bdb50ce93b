"""accuracy_check in one process against the same run on a Dask LocalCluster of this machine
(--workers 1, --workers 2, and --workers 2 --ship_images): same images, same numbers, and what
the cluster costs.

On ../shared/data/wider_val_dev (200 real images) with retinaface-mnet025-v1 (FP32 IR, converted
from the ../shared mirror into a temporary folder). Every configuration uses all the usable cores
for inference: one process with OpenVINO's default threads; N workers with cores/N threads each
(CPU pinning off). Printed per configuration, best of --repeat runs (interleaved):
- wall: the whole command, interpreter start-up included; run: accuracy_check's own total_s;
- cluster start: LocalCluster and client up (scale_out.cluster_start_s); first shard: from then
  to the first shard's result (the workers import facezoo and compile the model on it); shards:
  from then to the last result;
- overhead: wall against the single process's wall (target <= 10%); shards img/s: the images
  over the shards' time (from the cluster being up to the last result: the workers' import and
  compile included, the cluster's start left out) against the single process's inference
  images/s (its inference_s: decoding, inference and post-processing, the model compiled before).
Then the per-shard figures behind the README's scaling estimate: worker-seconds per image,
stored prediction and image bytes per image, the client's merge + metrics time. Every run's
metrics must equal the single process's (asserted).

The machine's cores are shared with other jobs: the load average is printed before and after.

Run: python bench/distributed.py [--repeat 3] [--shard_size 16] [--protocol mxnet-1600] [--runs LABELS]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDER = ROOT.parent / "shared" / "data" / "wider_val_dev"
MIRROR = ROOT.parent / "shared" / "data" / "mirror"
NAME = "retinaface-mnet025-v1"
CONFIG = ROOT / "models" / "public" / NAME / "accuracy-check.yml"
RUNS = (("single process", ()), ("--workers 1", ("--workers", "1")), ("--workers 2", ("--workers", "2")),
        ("--workers 2 --ship_images", ("--workers", "2", "--ship_images")))


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _prepare(work: Path) -> Path:
    for module, args in (("facezoo.download.cli", ["--name", NAME, "--mirror", MIRROR, "-o", work / "dl"]),
                         ("facezoo.convert.cli", ["--name", NAME, "-d", work / "dl", "-o", work / "ir",
                                                  "--precisions", "FP32"])):
        subprocess.run([sys.executable, "-m", module, *map(str, args)], check=True, capture_output=True, cwd=work)
    return work / "ir"


def _run(models: Path, out: Path, more: tuple[str, ...], shard_size: int) -> tuple[float, dict]:
    """(the command's wall, its JSON result)."""
    sharding = ("--shard_size", str(shard_size)) if "--workers" in more else ()
    command = [sys.executable, "-m", "facezoo.evaluate.cli", "-c", str(CONFIG), "-m", str(models), "-s", str(WIDER),
               "--no_progress", "--json_result", str(out), *more, *sharding]
    began = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr}")
    return wall, json.loads(out.read_text())


def _per_image_bytes(models: Path, work: Path) -> tuple[float, float]:
    """(a prediction's pickled bytes, an image file's bytes), averaged over wider_val_dev: what a
    shard sends back per image, and what --ship_images sends per image."""
    import numpy as np

    from facezoo.evaluate.adapters.retinaface import Detections

    stored = work / "p.npz"
    subprocess.run([sys.executable, "-m", "facezoo.evaluate.cli", "-c", str(CONFIG), "-m", str(models), "-s",
                    str(WIDER), "--no_progress", "--stored_predictions", str(stored)], capture_output=True, cwd=work)
    with np.load(stored) as z:
        ends = np.cumsum(z["counts"])
        starts = ends - z["counts"]
        predictions = {str(n): Detections(z["boxes"][s:e], z["scores"][s:e], z["landmarks"][s:e])
                       for n, s, e in zip(z["names"], starts, ends)}
    images = list((WIDER / "WIDER_val" / "images").rglob("*.jpg"))
    return (len(pickle.dumps(predictions)) / len(predictions),
            sum(p.stat().st_size for p in images) / len(images))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each configuration; the best wall is kept")
    parser.add_argument("--shard_size", type=int, default=16, help="images per shard for the Dask runs")
    parser.add_argument("--protocol", help="a WIDER protocol of the model's config (e.g. original, mxnet-1600): a "
                                           "longer run, over which the cluster's fixed cost spreads")
    parser.add_argument("--runs", default=None, help="comma list of configurations to run (default: all), e.g. "
                                                     "'single process,--workers 2'")
    args = parser.parse_args()
    runs = [(label, more + (("--protocol", args.protocol) if args.protocol else ()))
            for label, more in RUNS if args.runs is None or label in args.runs.split(",")]
    if not runs or runs[0][0] != "single process":
        parser.error("--runs must include 'single process' (every figure is against it)")
    from machine import machine_line

    print(machine_line(), flush=True)
    if not WIDER.is_dir() or not MIRROR.is_dir():
        print(f"needs {WIDER} and {MIRROR} (../shared beside the project)")
        return 2
    try:  # not imported: this script's own name would shadow it (the runs start in a temporary folder)
        dask_version = metadata.version("distributed")
    except metadata.PackageNotFoundError:
        print("needs the dask extra: pip install 'facezoo[dask]'")
        return 2
    print(f"distributed {dask_version}; load average before: {_load()}", flush=True)
    best: dict[str, tuple[float, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = _prepare(work)
        for r in range(args.repeat):
            for label, more in runs:
                wall, result = _run(models, work / "r.json", more, args.shard_size)
                if label in best:
                    assert result["metrics"] == best[label][1]["metrics"], f"{label}: run {r} gave other numbers"
                if label not in best or wall < best[label][0]:
                    best[label] = (wall, result)
        per_prediction, per_image = _per_image_bytes(models, work)
    single_wall, single = best["single process"]
    images = single["images"]
    single_rate = images / single["timings"]["inference_s"]
    assert all(result["metrics"] == single["metrics"] for _, result in best.values()), "the numbers differ"
    values = ", ".join(f"{m['name']} {m['value']:.4f}" for m in single["metrics"])
    protocol = f", protocol {args.protocol}" if args.protocol else ""
    print(f"\n{images} images{protocol}, shards of {args.shard_size}; every configuration's metrics equal the single "
          f"process's: yes ({values})")
    print(f"best of {args.repeat}; load average after: {_load()}\n")
    print("| configuration | wall s | run s | cluster start s | first shard s | shards s | overhead (wall) "
          "| shards img/s vs single |")
    print("|---|---|---|---|---|---|---|---|")
    for label, _ in runs:
        wall, result = best[label]
        run = result["timings"]["total_s"]
        scale = result["run"].get("scale_out")
        if scale is None:
            print(f"| {label} | {wall:.2f} | {run:.2f} | - | - | - | - | {single_rate:.1f} img/s |")
            continue
        rate = images / scale["shards_s"]
        print(f"| {label} | {wall:.2f} | {run:.2f} | {scale['cluster_start_s']:.2f} | {scale['first_shard_s']:.2f} | "
              f"{scale['shards_s']:.2f} | {100 * (wall / single_wall - 1):+.1f}% | {rate:.1f} img/s "
              f"({100 * (rate / single_rate - 1):+.1f}%) |")
    if "--workers 2" not in best:
        return 0
    two = best["--workers 2"][1]["run"]["scale_out"]
    worker_s = two["shards_s"] * two["workers"] / images
    print(f"\nper image: {1000 * worker_s:.1f} worker-ms (2 workers x 1 thread, first compile included), "
          f"prediction {per_prediction:.0f} B pickled, image file {per_image / 1024:.0f} KiB; "
          f"per shard of {args.shard_size}: {1000 * worker_s * args.shard_size:.0f} worker-ms, "
          f"{per_prediction * args.shard_size / 1024:.1f} KiB back, "
          f"{per_image * args.shard_size / 1024:.0f} KiB out with --ship_images; "
          f"client merge + metrics {1000 * single['timings']['metrics_s'] / images:.2f} ms per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
