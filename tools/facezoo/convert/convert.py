"""Converting a registry model: downloaded MXNet checkpoint -> ONNX -> OpenVINO IR (FP32, FP16)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from facezoo.common.cli import on_interrupt
from facezoo.common.safeio import check_output_dir, check_output_file, regular_input
from facezoo.registry import Model

from .errors import ConvertError
from .mxnet.ndarray_file import read_ndarray_file
from .mxnet.symbol import Symbol, read_symbol
from .onnx_file import save_onnx
from .staging import Staging
from .to_onnx import GraphReport, check_conversion, mxnet_to_onnx

IR_WRITER = Path(__file__).with_name("ir_writer.py")


@dataclass(frozen=True)
class ConvertedModel:
    """Where a conversion put its files, and what the graph holds. A model with
    `conversion.dynamic_input` also has `<name>-dynamic` ONNX and IR files whose image input has
    open height and width (None otherwise)."""

    name: str
    onnx_path: Path
    ir_paths: dict[str, Path]  # precision -> .xml
    report: GraphReport
    dynamic_onnx_path: Path | None = None
    dynamic_ir_paths: dict[str, Path] | None = None


DYNAMIC_SUFFIX = "-dynamic"  # <name>-dynamic.onnx, <precision>/<name>-dynamic.xml: input height and width open


def dynamic_name(name: str) -> str:
    """The file stem of a model's dynamic-size ONNX and IR files."""
    return name + DYNAMIC_SUFFIX


def _no_step() -> None:
    """A progress callback that reports nothing."""


BUILD_STEPS = 2  # reading the checkpoint, building the ONNX graph


def _is_dynamic(model: Model) -> bool:
    return model.conversion is not None and model.conversion.dynamic_input


def build_steps(model: Model) -> int:
    """Progress steps of a dry run: reading the checkpoint, building each ONNX graph."""
    return BUILD_STEPS + _is_dynamic(model)


def conversion_steps(precisions: list[str], dynamic: bool = False) -> int:
    """Progress steps of one model's conversion: reading the checkpoint; per graph (two with
    dynamic_input) building it, writing the ONNX file, OpenVINO reading it, one IR per precision;
    moving the outputs in place."""
    per_graph = 3 + len(precisions)
    return 1 + per_graph * (2 if dynamic else 1) + 1


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


def _variant_paths(target: Path, stem: str, precisions: list[str]) -> list[Path]:
    return [target / f"{stem}.onnx"] + [target / p / f"{stem}{ext}" for p in precisions for ext in (".xml", ".bin")]


def output_paths(model: Model, output_dir: Path, precisions: list[str]) -> list[Path]:
    """The files a conversion writes: the .onnx, then each precision's .xml and .bin; the same for
    `<name>-dynamic` after them when the model has conversion.dynamic_input."""
    target = Path(output_dir) / model.subdirectory
    stems = [model.name] + ([dynamic_name(model.name)] if _is_dynamic(model) else [])
    return [p for stem in stems for p in _variant_paths(target, stem, precisions)]


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


def read_checkpoint(model: Model, download_dir: Path) -> tuple[Symbol, dict[str, np.ndarray]]:
    """The downloaded model's symbol and parameters."""
    symbol_path, params_path = check_model(model, download_dir)
    return read_symbol(symbol_path), read_ndarray_file(params_path)


def build_onnx(model: Model, download_dir: Path, step: Callable[[], None] = _no_step
               ) -> tuple[onnx.ModelProto, GraphReport]:
    """The ONNX graph of a downloaded model, in memory. For a model with dynamic_input the graph
    with open height and width is built too, checked and dropped (what a dry run wants)."""
    symbol, params = read_checkpoint(model, download_dir)
    step()
    graph, report = mxnet_to_onnx(symbol, params, model.conversion, model.name)
    step()
    if _is_dynamic(model):
        mxnet_to_onnx(symbol, params, model.conversion, model.name, dynamic=True)
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
    symbol, params = read_checkpoint(model, download_dir)
    step()
    final = output_paths(model, output_dir, precisions)
    per_graph = 1 + 2 * len(precisions)  # .onnx, then .xml and .bin per precision
    variants = [False, True][:len(final) // per_graph]  # the fixed-size graph, then the dynamic one
    reports = []
    with Staging(Path(output_dir), "convert") as staging:
        staged = [staging.dir / path.relative_to(Path(output_dir) / model.subdirectory) for path in final]
        for v, dynamic in enumerate(variants):
            graph, report = mxnet_to_onnx(symbol, params, model.conversion, model.name, dynamic=dynamic)
            reports.append(report)
            step()
            files = staged[v * per_graph:(v + 1) * per_graph]
            save_onnx(graph, files[0])
            del graph
            step()
            xmls = {p: files[1 + 2 * k] for k, p in enumerate(precisions)}
            for xml in xmls.values():
                xml.parent.mkdir(exist_ok=True)
            _write_irs(model, files[0], xmls, step)
        del params
        staging.commit(list(zip(staged, final)))
        step()
    irs = [{p: final[v * per_graph + 1 + 2 * k] for k, p in enumerate(precisions)} for v in range(len(variants))]
    if len(variants) == 1:
        return ConvertedModel(model.name, final[0], irs[0], reports[0])
    return ConvertedModel(model.name, final[0], irs[0], reports[0], final[per_graph], irs[1])
