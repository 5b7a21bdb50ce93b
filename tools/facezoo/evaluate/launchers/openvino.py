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
# accuracy_check's default --batch on face recognition datasets: of 1 to 32, the most faces per
# CPU-second through its pipeline for the MobileFace recognisers on the LFW faces (the best or within
# 0.3% of it for V1 and V3, 6% under V2's best at 2; bench/accuracy.py --part batch)
RECOGNITION_BATCH = 4


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

    batch = 1  # images per request (a subclass compiled elsewhere keeps one)

    def __init__(self, xml: Path, device: str = "CPU", properties: dict[str, Any] | None = None, batch: int = 1):
        """`properties`: extra OpenVINO properties given to compile_model (e.g. a worker's
        INFERENCE_NUM_THREADS and ENABLE_CPU_PINNING), over facezoo's own. `batch`: images per
        request (the IR is reshaped to it; `input.shape` stays one image's)."""
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
            model = core.read_model(str(xml))
        except RuntimeError as exc:
            raise EvaluateError(f"{xml}: OpenVINO could not read it: {str(exc).strip().splitlines()[0]}") from None
        if len(model.inputs) != 1:
            raise EvaluateError(f"{xml}: expected one image input, the model has {len(model.inputs)}")
        model = _prepared(ov, model, batch, xml)
        try:
            self.compiled = core.compile_model(model, device, config)
        except RuntimeError as exc:
            raise EvaluateError(f"{xml}: OpenVINO could not load it on {device}"
                                f"{f' with --batch {batch}' if batch > 1 else ''}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
        port = self.compiled.inputs[0]
        self.batch = batch
        self.input = InputInfo(port.any_name, (1, *(d.get_length() if d.is_static else -1
                                                     for d in list(port.partial_shape)[1:])))
        self.outputs = [o.any_name for o in self.compiled.outputs]
        if batch > 1:
            unbatched = [o.any_name for o in self.compiled.outputs if not len(o.shape) or int(o.shape[0]) != batch]
            if unbatched:
                raise EvaluateError(f"{xml}: --batch {batch}: output {unbatched[0]!r} has no batch dimension "
                                    f"(the graph fixes one image per request); use --batch 1")
        # twice the device's number: its streams then have the next image queued while this thread
        # post-processes a finished one, instead of idling until the request is started again
        self.requests = 2 * int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        try:
            hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")
            self.inference_precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)
        except RuntimeError:  # a device without the property
            self.inference_precision = config.get("INFERENCE_PRECISION_HINT", "device default")
        self.description = (f"openvino {ov.__version__} {device} {self.inference_precision} x{self.requests} requests"
                            + (f" of {batch} images" if batch > 1 else ""))

    def infer(self, items: Iterable[tuple[Any, np.ndarray]], handle: Handler) -> None:
        """Round-robin over the infer requests: while one waits for its result, the others run.
        One image per request is passed without a copy; with a batch, each image is copied into
        its slot of the request's own input tensor (allocated once), and a last partial batch
        runs with its unused slots ignored. No completion callbacks: a Python callback on
        OpenVINO's threads needs the GIL, and destroying the compiled model while one is pending
        deadlocks."""
        requests = [self.compiled.create_infer_request() for _ in range(self.requests)]
        slots = [r.get_input_tensor().data for r in requests] if self.batch > 1 else []
        pending: list[list[Any]] = [[] for _ in requests]  # keys in each request
        inputs: list[np.ndarray | None] = [None] * len(requests)  # zero-copy inputs: alive until done
        busy = [False] * len(requests)

        def collect(i: int) -> None:
            requests[i].wait()
            busy[i], inputs[i] = False, None
            outputs = {n: requests[i].get_tensor(n).data.copy() for n in self.outputs}
            keys, pending[i] = pending[i], []
            for j, key in enumerate(keys):
                handle(key, {n: v[j:j + 1] for n, v in outputs.items()})

        def start(i: int) -> None:
            busy[i] = True
            if self.batch > 1:
                requests[i].start_async()
            else:
                requests[i].start_async({self.input.name: inputs[i]}, share_inputs=True)

        i = 0
        try:
            for key, blob in items:
                if busy[i]:
                    collect(i)
                if self.batch > 1:
                    _fill(slots[i], len(pending[i]), blob)
                else:
                    inputs[i] = blob
                pending[i].append(key)
                if len(pending[i]) == self.batch:
                    start(i)
                    i = (i + 1) % len(requests)
            if pending[i] and not busy[i]:
                start(i)  # the last, partial batch
            for j in range(len(requests)):
                if busy[(i + 1 + j) % len(requests)]:
                    collect((i + 1 + j) % len(requests))
        finally:
            for j, request in enumerate(requests):
                if busy[j]:
                    request.wait()


def _fill(slots: np.ndarray, j: int, blob: np.ndarray) -> None:
    """Copy one image's input (1 x C x H x W, pixel values 0..255 in any dtype) into slot j of a
    batched input tensor."""
    if blob.shape[1:] != slots.shape[1:]:
        raise EvaluateError(f"an input of shape {blob.shape} for a network taking {slots.shape[1:]} per image")
    np.copyto(slots[j], blob[0], casting="unsafe")


def _prepared(ov: Any, model: Any, batch: int, xml: Path) -> Any:
    """The IR reshaped to `batch` images per request, taking 8-bit pixels when it takes float
    ones: images are 8-bit, and OpenVINO widens them exactly inside the graph, in its own threads
    (a float input is 4x the memory and a conversion per image in Python)."""
    port = model.inputs[0]
    if batch > 1 and not all(d.is_static for d in list(port.get_partial_shape())[1:]):
        raise EvaluateError(f"{xml}: --batch {batch}: the model's input size is open (a dynamic-size IR), and a "
                            f"batch needs one size; use the fixed-size IR or --batch 1")
    if batch > 1:
        dims = port.get_partial_shape()
        try:
            model.reshape({port.get_any_name(): ov.PartialShape([batch, *list(dims)[1:]])})
        except RuntimeError:  # OpenVINO's message names a C++ shape check, not the model
            raise EvaluateError(f"{xml}: --batch {batch}: the graph cannot take {batch} images per request "
                                f"(a reshape in it fixes one image); use --batch 1") from None
    if port.get_element_type() == ov.Type.f32 and len(port.get_partial_shape()) == 4:
        ppp = ov.preprocess.PrePostProcessor(model)
        ppp.input().tensor().set_element_type(ov.Type.u8)
        model = ppp.build()
    return model
