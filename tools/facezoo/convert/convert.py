"""Converting a registry model: downloaded MXNet checkpoint -> ONNX -> OpenVINO IR (FP32, FP16)."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from facezoo.registry import Model

from .errors import ConvertError
from .mxnet.ndarray_file import read_ndarray_file
from .mxnet.symbol import read_symbol
from .onnx_file import save_onnx
from .to_onnx import GraphReport, mxnet_to_onnx


@dataclass(frozen=True)
class ConvertedModel:
    """Where a conversion put its files, and what the graph holds."""

    name: str
    onnx_path: Path
    ir_paths: dict[str, Path]  # precision -> .xml
    report: GraphReport


def source_paths(model: Model, download_dir: Path) -> tuple[Path, Path]:
    """The symbol and params files of a downloaded model."""
    if model.conversion is None:
        raise ConvertError(f"{model.name}: model.yml has no 'conversion' section")
    base = Path(download_dir) / model.subdirectory
    paths = (base / model.conversion.symbol, base / model.conversion.params)
    for p in paths:
        if not p.is_file():
            raise ConvertError(f"{p}: not found; run omz_downloader --name {model.name} -o {download_dir} first")
    return paths


def build_onnx(model: Model, download_dir: Path) -> tuple[onnx.ModelProto, GraphReport]:
    """The ONNX graph of a downloaded model, in memory."""
    symbol_path, params_path = source_paths(model, download_dir)
    return mxnet_to_onnx(read_symbol(symbol_path), read_ndarray_file(params_path), model.conversion, model.name)


def convert_model(model: Model, download_dir: Path, output_dir: Path, precisions: list[str]) -> ConvertedModel:
    """Write <out>/<subdir>/<name>.onnx and <out>/<subdir>/<P>/<name>.xml|.bin for each precision.
    Everything is written in a temporary directory first; on error nothing is left behind."""
    import openvino as ov

    for p in precisions:
        if p not in model.precisions:
            raise ConvertError(f"{model.name}: precision {p} is not offered (model.yml precisions: "
                               f"{', '.join(model.precisions)})")
    graph, report = build_onnx(model, download_dir)
    target = Path(output_dir) / model.subdirectory
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".convert-"))
    try:
        onnx_tmp = staging / f"{model.name}.onnx"
        save_onnx(graph, onnx_tmp)
        del graph
        try:
            ov_model = ov.convert_model(onnx_tmp)
        except Exception as exc:  # OpenVINO reports conversion failures with many exception types
            raise ConvertError(f"{model.name}: OpenVINO could not read the ONNX graph: "
                               f"{str(exc).strip().splitlines()[0]}") from None
        for p in precisions:
            (staging / p).mkdir()
            ov.save_model(ov_model, staging / p / f"{model.name}.xml", compress_to_fp16=(p == "FP16"))
        ir_paths = {}
        for p in precisions:
            (target / p).mkdir(exist_ok=True)
            for ext in (".bin", ".xml"):  # the .xml last: its presence means the pair is complete
                os.replace(staging / p / f"{model.name}{ext}", target / p / f"{model.name}{ext}")
            ir_paths[p] = target / p / f"{model.name}.xml"
        os.replace(onnx_tmp, target / f"{model.name}.onnx")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ConvertedModel(model.name, target / f"{model.name}.onnx", ir_paths, report)
