"""Converter speed and memory on the synthetic RetinaFace-R50 (about 118 MB of parameters).

Each step runs in its own process, so its peak resident memory is its own (omz_converter hands
OpenVINO's IR writing to a child process: that process's peak is printed too, and the limit applies
to the larger of the two):
1. omz_converter's work: MXNet files -> ONNX -> FP32 and FP16 IR (read, translate, save).
2. OpenVINO's own `ov.convert_model` on the ONNX file step 1 produced, alone, for scale.
Prints wall time and peak memory of each, our peak as a multiple of the .params file, and our
time as a multiple of OpenVINO's. The issue's limits: at most 30 s and 4x the params file.

Run: python bench/convert.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from synthetic_models import write_retinaface_r50  # noqa: E402

CHILD = """
import json, resource, sys, time
from pathlib import Path
began = time.perf_counter()
if sys.argv[1] == "ours":
    from facezoo.convert import convert_model
    from facezoo.registry import load_registry
    model = {m.name: m for m in load_registry()}["retinaface-resnet50"]
    convert_model(model, Path(sys.argv[2]), Path(sys.argv[3]), ["FP32", "FP16"])
else:
    import openvino as ov
    ov.convert_model(sys.argv[2])
seconds = time.perf_counter() - began
# omz_converter runs OpenVINO's IR writing in a child process, whose peak is reported beside its own
# VmHWM is this process image's own peak (getrusage's ru_maxrss can start from the parent's at fork)
hwm_kib = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
print(json.dumps({"seconds": seconds, "peak_mib": hwm_kib / 1024,
                  "child_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def _run(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    from machine import machine_line

    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, params = write_retinaface_r50(tmp / "dl" / "public" / "retinaface-resnet50", prefix="R50")
        params_mib = params.stat().st_size / 2**20
        ours = _run("ours", str(tmp / "dl"), str(tmp / "ir"))
        onnx_path = tmp / "ir" / "public" / "retinaface-resnet50" / "retinaface-resnet50.onnx"
        theirs = _run("ov", str(onnx_path))
    print(f"synthetic RetinaFace-R50: .params {params_mib:.1f} MiB")
    print(f"{'step':48} {'wall s':>8} {'peak MiB':>9}")
    print(f"{'omz_converter (ONNX + FP32 + FP16 IR)':48} {ours['seconds']:8.2f} {ours['peak_mib']:9.0f}")
    print(f"{'  its IR-writing child process (OpenVINO)':48} {'':8} {ours['child_peak_mib']:9.0f}")
    print(f"{'ov.convert_model on our ONNX (no saving)':48} {theirs['seconds']:8.2f} {theirs['peak_mib']:9.0f}")
    ratio_mem = max(ours["peak_mib"], ours["child_peak_mib"]) / params_mib
    print(f"ours: {ours['seconds']:.1f} s (limit 30 s), peak {ratio_mem:.2f}x the params file (limit 4x); "
          f"time {ours['seconds'] / theirs['seconds']:.2f}x ov.convert_model alone")
    return 0 if ours["seconds"] <= 30 and ratio_mem <= 4 else 1


if __name__ == "__main__":
    sys.exit(main())
