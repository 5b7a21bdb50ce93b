"""Numerical verification of converted models against MXNet's own outputs."""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import read_bytes_limited
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


MXNET_SETUP = ("set one up with: python3 -m venv .venv-mxnet && .venv-mxnet/bin/pip install mxnet==1.9.1 "
               "numpy==1.23.5, then export FACEZOO_MXNET_PYTHON=$PWD/.venv-mxnet/bin/python")
IMPORT_TIMEOUT_S = 60
MAX_IMAGE_BYTES = 64 << 20
MAX_IMAGE_PIXELS = 64_000_000


def mxnet_python() -> str:
    """The interpreter of the separate MXNet environment ($FACEZOO_MXNET_PYTHON): set, and an
    executable file."""
    path = os.environ.get("FACEZOO_MXNET_PYTHON")
    if not path:
        raise ConvertError(f"--verify compares with real MXNet, and FACEZOO_MXNET_PYTHON is not set; {MXNET_SETUP}")
    if not Path(path).is_file() or not os.access(path, os.X_OK):
        raise ConvertError(f"FACEZOO_MXNET_PYTHON={path} is not an executable file; {MXNET_SETUP}")
    return path


def check_mxnet_python() -> str:
    """`mxnet_python()`, after checking that it imports MXNet and NumPy (run before any work)."""
    python = mxnet_python()
    try:
        proc = subprocess.run([python, "-I", "-c", "import mxnet, numpy"], capture_output=True, text=True,
                              errors="replace", timeout=IMPORT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ConvertError(f"FACEZOO_MXNET_PYTHON={python} did not import mxnet within {IMPORT_TIMEOUT_S} s; "
                           f"{MXNET_SETUP}") from None
    except OSError as exc:
        raise ConvertError(f"FACEZOO_MXNET_PYTHON={python} cannot be run ({exc.strerror}); {MXNET_SETUP}") from None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise ConvertError(f"FACEZOO_MXNET_PYTHON={python} cannot import mxnet ({tail}); {MXNET_SETUP}")
    return python


def load_verify_image(path: Path) -> np.ndarray:
    """A photo for --verify as BGR pixels: a regular JPEG, PNG or BMP file of at most 64 MiB whose
    header says at most 64 megapixels (checked before decoding), and that decodes."""
    import cv2

    from facezoo.evaluate.images import BrokenImage, image_size

    data = read_bytes_limited(path, MAX_IMAGE_BYTES, "--verify_image", ConvertError)
    try:
        width, height = image_size(data)
    except BrokenImage as exc:
        raise ConvertError(f"{path}: --verify_image is not an image: {exc}") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ConvertError(f"{path}: --verify_image is {width}x{height}, more than {MAX_IMAGE_PIXELS:,} pixels")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ConvertError(f"{path}: --verify_image cannot be decoded (corrupt image data)")
    return image


def fixed_inputs(model: Model, image: np.ndarray | None = None, seed: int = 0,
                 size: tuple[int, int] | None = None) -> np.ndarray:
    """A raw 0..255 input in the original model's colour order: an image resized to the input, or
    noise; `size` (height, width) replaces the declared input size (for a dynamic-size IR)."""
    import cv2

    shape = model.conversion.inputs[0].shape
    if size is not None:
        shape = (*shape[:2], *size)
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


def mxnet_outputs(model: Model, symbol: Path, params: Path, original: np.ndarray,
                  workdir: Path | None = None) -> dict[str, np.ndarray]:
    """Run the checkpoint in real MXNet (separate environment) and return its outputs. The input
    and output arrays pass through `workdir` (a new temporary folder when None); on SIGINT/SIGTERM
    the MXNet process is killed."""
    if workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return mxnet_outputs(model, symbol, params, original, Path(tmp))
    np.savez(workdir / "in.npz", **{model.conversion.inputs[0].name: original})
    names = list(model.conversion.outputs or [])
    proc = subprocess.Popen([mxnet_python(), "-I", str(REFERENCE_SCRIPT), str(symbol), str(params),
                             str(workdir / "in.npz"), str(workdir / "out.npz"), *names],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    unregister = on_interrupt(proc.kill)
    try:
        _, stderr = proc.communicate()
    finally:
        unregister()
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ConvertError(f"{model.name}: MXNet reference run failed: {tail}")
    with np.load(workdir / "out.npz") as out:
        return {k: out[k] for k in out.files if k not in model.conversion.drop_outputs}


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
