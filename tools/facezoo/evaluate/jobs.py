"""The evaluation seam: per-image inference as a picklable job, run over keys by an executor.

A job turns a key (an image path, or a path with a variant such as a flip) into a network input
and the network's outputs into that key's prediction. It holds only paths and settings, so it can
be sent to another process or machine; an executor decides where the keys run (this process, or
a cluster) and returns every key's prediction. Metrics are computed from the predictions alone."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .launchers.base import InputInfo, Launcher


@dataclass(frozen=True)
class ModelRef:
    """A converted model as a path a process can open: its file, engine and device."""

    path: Path
    framework: str  # "openvino" or "onnxruntime"
    device: str = "CPU"
    # extra OpenVINO compile properties, as (name, value) pairs so the reference stays hashable
    properties: tuple[tuple[str, Any], ...] = ()
    batch: int = 1  # images per inference request (OpenVINO reshapes the IR to it)


class Job(Protocol):
    """What one key becomes. Picklable: paths and settings only."""

    def load(self, key: Any) -> tuple[np.ndarray, Any]:
        """The network input of `key` and what `post` needs to know of it (e.g. the image size)."""

    def post(self, key: Any, info: Any, outputs: dict[str, np.ndarray]) -> Any:
        """The prediction of `key` from the network's outputs."""


class Progress(Protocol):
    """A progress bar (tqdm's interface): told the total, then advanced per item done."""

    def reset(self, total: int | None = None) -> None: ...

    def update(self, n: int = 1) -> Any: ...


class Executor(Protocol):
    """Runs a job over keys somewhere; the model's input and outputs are known before it runs."""

    input: InputInfo
    outputs: list[str]
    description: str

    def run(self, job: Job, keys: list[Any], skip_broken: bool,
            progress: Progress | None = None) -> tuple[dict[Any, Any], list[tuple[Any, str]]]:
        """Every key's prediction, and the keys whose image was broken (with the reason) when
        `skip_broken`; a broken image raises otherwise."""


_opened: dict[ModelRef, Launcher] = {}
_opening = threading.Lock()


def open_launcher(ref: ModelRef) -> Launcher:
    """The launcher of `ref`, compiled once per process and shared by every caller."""
    with _opening:
        if ref not in _opened:
            if ref.framework == "openvino":
                from .launchers.openvino import OpenVINOLauncher
                _opened[ref] = OpenVINOLauncher(ref.path, ref.device, dict(ref.properties), ref.batch)
            else:
                from .launchers.onnxruntime import OnnxRuntimeLauncher
                _opened[ref] = OnnxRuntimeLauncher(ref.path, ref.device)
        return _opened[ref]
