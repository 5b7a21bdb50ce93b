"""OpenVINO runtime on an IR: an asynchronous request queue under the throughput hint, f32."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from facezoo.common.safeio import regular_input, signals_deferred

from ..errors import EvaluateError
from .base import Handler, InputInfo

VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")  # take a list of real devices after a colon


def check_device(device: str, available: list[str]) -> None:
    """Refuse a --target_device OpenVINO cannot run here, naming the devices it has."""
    virtual, colon, listed = device.partition(":")
    names = listed.split(",") if colon else ([] if device in VIRTUAL_DEVICES else [device])
    unknown: str | None = device if colon and (virtual not in VIRTUAL_DEVICES or not all(names)) else None
    if unknown is None:
        bases = {a.split(".")[0] for a in available}
        unknown = next((n for n in names if n not in available and n not in bases), None)
    if unknown is not None:
        raise EvaluateError(f"--target_device {device}: {unknown!r} is not an OpenVINO device on this machine "
                            f"(available: {', '.join(available + list(VIRTUAL_DEVICES))})")


class OpenVINOLauncher:
    """Compiled IR with as many infer requests as the device suggests for throughput."""

    def __init__(self, xml: Path, device: str = "CPU", properties: dict[str, Any] | None = None):
        """`properties`: extra OpenVINO properties given to compile_model (e.g. a worker's
        INFERENCE_NUM_THREADS and ENABLE_CPU_PINNING), over facezoo's own."""
        with signals_deferred():  # a signal inside its import would become an ImportError
            import openvino as ov

        regular_input(xml, "IR (.xml)", EvaluateError)
        regular_input(Path(xml).with_suffix(".bin"), "IR weights (.bin beside the .xml; run omz_converter)",
                      EvaluateError)
        core = ov.Core()
        check_device(device, list(core.available_devices))
        config = {"PERFORMANCE_HINT": "THROUGHPUT"}
        if device.startswith("CPU"):
            # the CPU plugin otherwise runs bf16 where the CPU supports it: results would depend on the CPU
            config["INFERENCE_PRECISION_HINT"] = "f32"
        config.update(properties or {})
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
        # twice the device's number: its streams then have the next image queued while this thread
        # post-processes a finished one, instead of idling until the request is started again
        self.requests = 2 * int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        try:
            hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
            self.inference_precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        except RuntimeError:  # a device without the property
            self.inference_precision = config.get("INFERENCE_PRECISION_HINT", "device default")
        self.description = f"openvino {ov.__version__} {device} {self.inference_precision} x{self.requests} requests"

    def infer(self, items: Iterable[tuple[Any, np.ndarray]], handle: Handler) -> None:
        """Round-robin over the infer requests: while one waits for its result, the others run.
        No completion callbacks: a Python callback on OpenVINO's threads needs the GIL, and
        destroying the compiled model while one is pending deadlocks."""
        requests = [self.compiled.create_infer_request() for _ in range(self.requests)]
        pending: list[Any] = [None] * len(requests)
        inputs: list[np.ndarray | None] = [None] * len(requests)  # zero-copy inputs: alive until done
        busy = [False] * len(requests)

        def collect(i: int) -> None:
            requests[i].wait()
            busy[i], inputs[i] = False, None
            handle(pending[i], {n: requests[i].get_tensor(n).data.copy() for n in self.outputs})

        try:
            for n, (key, blob) in enumerate(items):
                i = n % len(requests)
                if busy[i]:
                    collect(i)
                pending[i], inputs[i], busy[i] = key, blob, True
                requests[i].start_async({self.input.name: blob}, share_inputs=True)
            for i in range(len(requests)):
                if busy[i]:
                    collect(i)
        finally:
            for i, request in enumerate(requests):
                if busy[i]:
                    request.wait()
