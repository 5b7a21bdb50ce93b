"""Frozen descriptions of registry models, as read from model.yml."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Source:
    """One place a file can be fetched from: an http(s) URL or a Google Drive file id."""

    kind: str  # "http" or "google_drive"
    location: str  # the URL, or the Drive file id

    def describe(self) -> str:
        return self.location if self.kind == "http" else f"google_drive:{self.location}"


@dataclass(frozen=True)
class ModelFile:
    """A file of the original model, with its expected size and sha256."""

    name: str
    size: int
    sha256: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class UnpackArchive:
    """Postprocessing: unpack a downloaded archive into the model directory."""

    file: str
    format: str | None = None


@dataclass(frozen=True)
class InputSpec:
    """An input of the original graph."""

    name: str
    shape: tuple[int, ...]
    layout: str
    color_order: str


@dataclass(frozen=True)
class Conversion:
    """How the original checkpoint turns into IR."""

    symbol: str
    params: str
    inputs: tuple[InputSpec, ...]
    reverse_input_channels: bool = False
    mean_values: tuple[float, ...] | None = None
    scale_values: tuple[float, ...] | None = None
    outputs: tuple[str, ...] | None = None
    drop_outputs: tuple[str, ...] = ()
    # fully convolutional graphs: also write an IR whose image input has dynamic height and width
    dynamic_input: bool = False


@dataclass(frozen=True)
class Model:
    """A registry entry: models/<subdirectory>/model.yml and its neighbours."""

    name: str
    subdirectory: str  # e.g. "public/retinaface-resnet50"
    directory: Path
    description: str
    task_type: str
    framework: str
    license_url: str
    files: tuple[ModelFile, ...]
    postprocessing: tuple[UnpackArchive, ...] = ()
    conversion: Conversion | None = None
    precisions: tuple[str, ...] = field(default=("FP16", "FP32"))
    # one line: why the original release's files cannot be fetched any more (None: they can)
    original_unavailable: str | None = None

    @property
    def card_path(self) -> Path:
        return self.directory / f"{self.name}.md"

    @property
    def accuracy_config_path(self) -> Path:
        return self.directory / "accuracy-check.yml"
