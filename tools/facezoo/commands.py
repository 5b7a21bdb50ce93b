"""The console scripts' entry points. Each installs the signal handling first and only then imports
its command (NumPy, ONNX and OpenVINO take a while to load), so a Ctrl-C or SIGTERM at any moment
ends as the signal: one line, exit 130 or 143. The import itself runs with the signals held back
(they are handled as soon as it ends): an interrupt raised inside a C extension's initialisation
can leave it half made, and onnx's then crashed the process (about 1 run in 8 under load)."""
from __future__ import annotations

import importlib

from facezoo.common.cli import run_command
from facezoo.common.safeio import signals_deferred


def _start(prog: str, module: str) -> None:
    def main() -> int:
        with signals_deferred():
            command = importlib.import_module(module)
        return command.main()

    run_command(prog, main)


def omz_downloader() -> None:
    """Download registry models' original files."""
    _start("omz_downloader", "facezoo.download.cli")


def omz_converter() -> None:
    """Convert registry models to ONNX and OpenVINO IR."""
    _start("omz_converter", "facezoo.convert.cli")


def omz_info_dumper() -> None:
    """Print registry models as JSON."""
    _start("omz_info_dumper", "facezoo.registry.cli")


def accuracy_check() -> None:
    """Evaluate a converted model on a dataset."""
    _start("accuracy_check", "facezoo.evaluate.cli")


def omz_quantizer() -> None:
    """Quantize converted registry models to INT8 with NNCF."""
    _start("omz_quantizer", "facezoo.quantize.cli")


def omz_data_converter() -> None:
    """Pack aligned faces and a pairs file into an insightface verification .bin."""
    _start("omz_data_converter", "facezoo.evaluate.pack_bin")
