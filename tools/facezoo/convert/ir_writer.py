"""ONNX file -> OpenVINO IR, one per precision; run as a script in its own process by the converter.

OpenVINO's conversion holds Python's GIL for seconds on large graphs, during which the converter
could not act on SIGINT/SIGTERM; a crash inside OpenVINO would end the converter with it. In its
own process, the converter kills it on a signal and reports its failures in one line. This script
imports nothing from facezoo. Usage:
  python -I ir_writer.py MODEL.onnx PRECISION=OUT.xml [PRECISION=OUT.xml ...]
It prints `converted` once OpenVINO has read the graph, then `saved PRECISION` per IR written; on
failure one line on stderr and exit status 1.
"""
import sys


def die_with_parent() -> None:
    """Ask Linux to kill this process when the converter dies, even by SIGKILL (PR_SET_PDEATHSIG),
    so nothing keeps writing into its temporary folder; elsewhere a no-op."""
    import ctypes
    import os
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the converter died before the request took effect
        sys.exit(1)


def main(argv: list) -> int:
    die_with_parent()
    import openvino as ov

    try:
        model = ov.convert_model(argv[0])
        print("converted", flush=True)
        for spec in argv[1:]:
            precision, xml = spec.split("=", 1)
            ov.save_model(model, xml, compress_to_fp16=(precision == "FP16"))
            print("saved", precision, flush=True)
    except Exception as exc:  # OpenVINO reports failures with many exception types, in many lines
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        print(f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
