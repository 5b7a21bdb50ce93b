"""What produced a result: software versions and the CPU (model name and the instruction sets
that change how inference computes: AVX2, AVX-512, AMX, ...)."""
from __future__ import annotations

import os
import platform
from importlib import metadata

# instruction-set flags of /proc/cpuinfo that select different inference kernels
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16", "neon", "asimd")


def versions() -> dict[str, str]:
    """Versions of the software that produced a result."""
    out = {"python": platform.python_version()}
    for package in ("facezoo", "openvino", "onnxruntime", "numpy", "opencv-python-headless", "scipy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return out


def parse_cpuinfo(text: str) -> dict[str, str | list[str]]:
    """The CPU model name and its ISA_FLAGS present, from /proc/cpuinfo's first processor."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    present = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or fields.get("cpu model") or fields.get("hardware") or ""
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in present]}


def cpu() -> dict[str, str | list[str]]:
    """This machine's CPU: model name, instruction-set flags, logical core count."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            info = parse_cpuinfo(f.read(1 << 20))
    except OSError:
        info = {"model": "", "isa": []}
    if not info["model"]:
        info["model"] = platform.processor() or platform.machine()
    info["machine"] = platform.machine()
    info["usable_cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return info
