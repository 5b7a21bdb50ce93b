"""Converting a registry model: downloaded MXNet checkpoint -> ONNX -> OpenVINO IR (FP32, FP16)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import check_output_dir, check_output_file, regular_input
from facezoo.registry import Model

from .errors import ConvertError
from .mxnet.ndarray_file import read_ndarray_file
from .mxnet.symbol import read_symbol
from .onnx_file import save_onnx
from .staging import Staging
from .to_onnx import GraphReport, check_conversion, mxnet_to_onnx

IR_WRITER = Path(__file__).with_name("ir_writer.py")


@dataclass(frozen=True)
class ConvertedModel:
    """Where a conversion put its files, and what the graph holds."""

    name: str
    onnx_path: Path
    ir_paths: dict[str, Path]  # precision -> .xml
    report: GraphReport


def _no_step() -> None:
    """A progress callback that reports nothing."""


BUILD_STEPS = 2  # reading the checkpoint, building the ONNX graph


def conversion_steps(precisions: list[str]) -> int:
    """Progress steps of one model's conversion: build, ONNX file, OpenVINO graph, one IR per
    precision, moving the outputs in place."""
    return BUILD_STEPS + 3 + len(precisions)


def source_paths(model: Model, download_dir: Path) -> tuple[Path, Path]:
    """The symbol and params files of a downloaded model (regular files; FIFOs and devices refused)."""
    if model.conversion is None:
        raise ConvertError(f"{model.name}: model.yml has no 'conversion' section")
    base = Path(download_dir) / model.subdirectory
    paths = (base / model.conversion.symbol, base / model.conversion.params)
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise ConvertError(f"{p}: not found; run omz_downloader --name {model.name} -o {download_dir} first")
        regular_input(p, "checkpoint file", ConvertError)
    return paths


def check_model(model: Model, download_dir: Path, precisions: list[str] | None = None) -> tuple[Path, Path]:
    """Everything about a model that can be checked before reading its checkpoint: conversion
    settings, precisions offered, checkpoint files present. Returns the checkpoint paths."""
    symbol, params = source_paths(model, download_dir)
    check_conversion(model.conversion, str(model.directory / "model.yml"))
    for p in precisions or ():
        if p not in model.precisions:
            raise ConvertError(f"{model.name}: precision {p} is not offered (model.yml precisions: "
                               f"{', '.join(model.precisions)})")
    return symbol, params


def output_paths(model: Model, output_dir: Path, precisions: list[str]) -> list[Path]:
    """The files a conversion writes: the .onnx, then each precision's .xml and .bin."""
    target = Path(output_dir) / model.subdirectory
    return [target / f"{model.name}.onnx"] + [target / p / f"{model.name}{ext}" for p in precisions
                                               for ext in (".xml", ".bin")]


def check_outputs(model: Model, output_dir: Path, precisions: list[str], inputs: list[Path]) -> None:
    """Refuse, before any work, outputs that cannot be written or would replace something they must
    not: a folder, FIFO or device where a file or folder goes, or an input of this run."""
    output_dir = Path(output_dir)
    check_output_dir(output_dir, "-o/--output_dir", error=ConvertError)
    target = output_dir / model.subdirectory
    folders = [output_dir.joinpath(*target.relative_to(output_dir).parts[:k])
               for k in range(1, len(target.relative_to(output_dir).parts) + 1)]
    for folder in folders + [target / p for p in precisions]:
        check_output_dir(folder, "output folder", error=ConvertError)
    for path in output_paths(model, output_dir, precisions):
        if path.parent.is_dir():
            check_output_file(path, "output file", inputs, ConvertError)


def build_onnx(model: Model, download_dir: Path, step: Callable[[], None] = _no_step
               ) -> tuple[onnx.ModelProto, GraphReport]:
    """The ONNX graph of a downloaded model, in memory."""
    symbol_path, params_path = check_model(model, download_dir)
    symbol, params = read_symbol(symbol_path), read_ndarray_file(params_path)
    step()
    graph, report = mxnet_to_onnx(symbol, params, model.conversion, model.name)
    step()
    return graph, report


def _write_irs(model: Model, onnx_path: Path, xmls: dict[str, Path], step: Callable[[], None]) -> None:
    """OpenVINO IR files from the ONNX file, written by `ir_writer.py` in its own process (killed
    on SIGINT/SIGTERM); `step` is called as it reports each finished step."""
    argv = [sys.executable, "-I", str(IR_WRITER), str(onnx_path)] + [f"{p}={xml}" for p, xml in xmls.items()]
    # one pipe for both streams: a child that fills an unread stderr pipe would block forever
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    unregister = on_interrupt(proc.kill)
    last = ""  # the child's last message line: its one-line error when it fails
    try:
        for line in proc.stdout:
            if line.startswith(("converted", "saved ")):
                step()
            elif line.strip():
                last = line.strip()
        proc.wait()
    finally:
        unregister()
        proc.stdout.close()
    if proc.returncode != 0:
        raise ConvertError(f"{model.name}: OpenVINO could not convert the ONNX graph: "
                           f"{last or f'exit status {proc.returncode}'}")


def convert_model(model: Model, download_dir: Path, output_dir: Path, precisions: list[str],
                  step: Callable[[], None] = _no_step) -> ConvertedModel:
    """Write <out>/<subdir>/<name>.onnx and <out>/<subdir>/<P>/<name>.xml|.bin for each precision.
    Everything is written in a pid-tagged folder inside <out> first and moved in place at the end,
    all together; on an error or a signal nothing reaches a final path. `step` is called once per
    finished step (`conversion_steps`)."""
    check_model(model, download_dir, precisions)
    graph, report = build_onnx(model, download_dir, step)
    final = output_paths(model, output_dir, precisions)
    with Staging(Path(output_dir), "convert") as staging:
        staged = [staging.dir / path.relative_to(Path(output_dir) / model.subdirectory) for path in final]
        save_onnx(graph, staged[0])
        del graph
        step()
        xmls = {p: staged[1 + 2 * k] for k, p in enumerate(precisions)}
        for xml in xmls.values():
            xml.parent.mkdir()
        _write_irs(model, staged[0], xmls, step)
        staging.commit(list(zip(staged, final)))
        step()
    ir_paths = {p: final[1 + 2 * k] for k, p in enumerate(precisions)}
    return ConvertedModel(model.name, final[0], ir_paths, report)
