"""Numerical verification of converted models against MXNet's own outputs."""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facezoo.registry import Model

from .errors import ConvertError

REFERENCE_SCRIPT = Path(__file__).with_name("mxnet_reference.py")


@dataclass(frozen=True)
class Comparison:
    """One output of one IR compared with the reference."""

    output: str
    max_abs_error: float
    tolerance: float
    cosine: float

    @property
    def ok(self) -> bool:
        return self.max_abs_error <= self.tolerance


def mxnet_python() -> str:
    """The interpreter of the separate MXNet environment ($FACEZOO_MXNET_PYTHON)."""
    path = os.environ.get("FACEZOO_MXNET_PYTHON")
    if not path or not Path(path).exists():
        raise ConvertError("verification needs real MXNet: set FACEZOO_MXNET_PYTHON to the python of an "
                           "environment with mxnet==1.9.1 and numpy==1.23.5 (.ci/run makes .venv-mxnet)")
    return path


def fixed_inputs(model: Model, image: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """A raw 0..255 input in the original model's colour order: an image resized to the input, or noise."""
    import cv2

    shape = model.conversion.inputs[0].shape
    if image is None:
        return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    h, w = shape[2], shape[3]
    resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)  # image is BGR, as OpenCV reads it
    if shape[1] == 1:
        planes = cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)[None]
    else:
        planes = resized[:, :, ::-1].transpose(2, 0, 1)  # RGB planes, the original's order
    return np.broadcast_to(planes[None].astype(np.float32), shape).copy()


def original_input(model: Model, raw: np.ndarray) -> np.ndarray:
    """What the original graph is fed: raw values with the model's mean/scale applied outside it."""
    c = model.conversion
    x = raw.astype(np.float32)
    if c.mean_values is not None:
        x = x - np.array(c.mean_values, np.float32).reshape(1, -1, 1, 1)
    if c.scale_values is not None:
        x = x / np.array(c.scale_values, np.float32).reshape(1, -1, 1, 1)
    return x


def converted_input(model: Model, raw: np.ndarray) -> np.ndarray:
    """What the converted model is fed: raw values, channels reversed (BGR) when the conversion says so."""
    return np.ascontiguousarray(raw[:, ::-1]) if model.conversion.reverse_input_channels else raw


def mxnet_outputs(model: Model, symbol: Path, params: Path, original: np.ndarray) -> dict[str, np.ndarray]:
    """Run the checkpoint in real MXNet (separate environment) and return its outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", **{model.conversion.inputs[0].name: original})
        names = list(model.conversion.outputs or [])
        proc = subprocess.run([mxnet_python(), "-I", str(REFERENCE_SCRIPT), str(symbol), str(params),
                               str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npz"), *names],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise ConvertError(f"{model.name}: MXNet reference run failed: {tail}")
        out = dict(np.load(Path(tmp) / "out.npz"))
    return {k: v for k, v in out.items() if k not in model.conversion.drop_outputs}


def run_ir(xml: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of an IR on the CPU with f32 inference precision (no bf16, whatever the CPU)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    result = compiled(inputs)
    return {o.get_any_name(): np.asarray(result[o]) for o in compiled.outputs}


def compare(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], rel: float = 1e-4) -> list[Comparison]:
    """Max absolute error per output against tolerance rel x (max |reference| + 1), plus cosine."""
    missing = sorted(set(reference) - set(outputs))
    if missing:
        raise ConvertError(f"the converted model lacks output {missing[0]!r} (it has {', '.join(sorted(outputs))})")
    out = []
    for name, ref in reference.items():
        y = outputs[name].astype(np.float64).ravel()
        r = ref.astype(np.float64).ravel()
        if y.shape != r.shape:
            raise ConvertError(f"output {name!r}: {outputs[name].shape} elements, the reference has {ref.shape}")
        cos = float(y @ r / (np.linalg.norm(y) * np.linalg.norm(r) + 1e-30))
        out.append(Comparison(name, float(np.abs(y - r).max()), rel * (float(np.abs(r).max()) + 1), cos))
    return out
