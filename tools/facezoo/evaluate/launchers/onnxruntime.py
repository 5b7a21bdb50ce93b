"""ONNX Runtime on the converter's ONNX file: the second launcher, a cross-check of the IR."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.safeio import regular_input, signals_deferred

from ..errors import EvaluateError
from .base import Handler, InputInfo


class OnnxRuntimeLauncher:
    """One CPU session; requests run one after another, each using the session's threads."""

    def __init__(self, path: Path, device: str = "CPU"):
        if device != "CPU":
            raise EvaluateError(f"--target_device {device}: the onnxruntime launcher runs on CPU only")
        # its telemetry SDK otherwise leaves a session file (.ses) in $TMPDIR on import
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        with signals_deferred():  # a signal inside its import would become an ImportError
            import onnxruntime as ort

        regular_input(path, "ONNX model (omz_converter writes <out>/public/<name>/<name>.onnx)", EvaluateError)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # not the notices about initializers its own BatchNorm folding freed
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EvaluateError(f"{path}: ONNX Runtime could not load it: {str(exc).strip().splitlines()[0]}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EvaluateError(f"{path}: expected one image input, the model has {len(inputs)}")
        self.input = InputInfo(inputs[0].name, tuple(d if isinstance(d, int) else -1 for d in inputs[0].shape))
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.inference_precision = "f32"
        self.description = f"onnxruntime {ort.__version__} CPU"

    def infer(self, items: Iterable[tuple[Any, np.ndarray]], handle: Handler) -> None:
        for key, blob in items:
            # inputs are 8-bit pixels (images.to_input); the converter's ONNX input is float
            values = self.session.run(self.outputs, {self.input.name: blob.astype(np.float32, copy=False)})
            handle(key, dict(zip(self.outputs, values)))
