"""OpenVINO runtime on an IR: an asynchronous request queue under the throughput hint, f32."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EvaluateError
from .base import Handler, InputInfo


class OpenVINOLauncher:
    """Compiled IR with as many infer requests as the device suggests for throughput."""

    def __init__(self, xml: Path, device: str = "CPU"):
        import openvino as ov

        if not Path(xml).is_file() or not Path(xml).with_suffix(".bin").is_file():
            raise EvaluateError(f"{xml}: IR not found (need the .xml and its .bin; run omz_converter)")
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if device.startswith("CPU"):
            # the CPU plugin otherwise runs bf16 where the CPU supports it: results would depend on the CPU
            config["INFERENCE_PRECISION_HINT"] = "f32"
        try:
            self.compiled = core.compile_model(str(xml), device, config)
        except RuntimeError as exc:
            raise EvaluateError(f"{xml}: OpenVINO could not load it on {device}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
        inputs = self.compiled.inputs
        if len(inputs) != 1:
            raise EvaluateError(f"{xml}: expected one image input, the model has {len(inputs)}")
        self.input = InputInfo(inputs[0].any_name, tuple(int(d) for d in inputs[0].shape))
        self.outputs = [o.any_name for o in self.compiled.outputs]
        self.requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.description = f"openvino {ov.__version__} {device} f32 x{self.requests} requests"

    def infer(self, items: Iterable[tuple[Any, np.ndarray]], handle: Handler) -> None:
        import openvino as ov

        names = self.outputs
        queue = ov.AsyncInferQueue(self.compiled, self.requests)

        def done(request, key):
            handle(key, {n: request.get_tensor(n).data.copy() for n in names})

        queue.set_callback(done)
        for key, blob in items:
            queue.start_async({self.input.name: blob}, userdata=key)
        queue.wait_all()
