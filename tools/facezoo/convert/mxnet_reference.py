"""Run an MXNet checkpoint with real MXNet and save its outputs: the reference our IR is checked against.

This script runs in a separate environment (mxnet==1.9.1, numpy==1.23.5) and imports nothing
from facezoo. Usage:
  python mxnet_reference.py SYMBOL PARAMS INPUTS.npz OUTPUTS.npz [OUTPUT_NAME ...]
INPUTS.npz maps input names to arrays; OUTPUTS.npz gets one array per output (the graph's heads,
or the named nodes).
"""
import sys

import mxnet as mx
import numpy as np


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


def main(argv):
    die_with_parent()
    symbol_path, params_path, inputs_path, outputs_path = argv[:4]
    names = argv[4:]
    sym = mx.sym.load(symbol_path)
    if names:
        internals = sym.get_internals()
        sym = mx.sym.Group([internals[n + "_output"] for n in names])
    saved = mx.nd.load(params_path)
    args = {k.split(":", 1)[1]: v for k, v in saved.items() if k.startswith("arg:")}
    aux = {k.split(":", 1)[1]: v for k, v in saved.items() if k.startswith("aux:")}
    inputs = dict(np.load(inputs_path))
    module = mx.mod.Module(sym, data_names=list(inputs), label_names=None, context=mx.cpu())
    module.bind(data_shapes=[(k, v.shape) for k, v in inputs.items()], for_training=False)
    module.set_params(args, aux, allow_missing=False, allow_extra=True)
    module.forward(mx.io.DataBatch([mx.nd.array(v) for v in inputs.values()]), is_train=False)
    outs = [o.asnumpy() for o in module.get_outputs()]
    heads = names or [n[: -len("_output")] if n.endswith("_output") else n for n in sym.list_outputs()]
    np.savez(outputs_path, **dict(zip(heads, outs)))


if __name__ == "__main__":
    main(sys.argv[1:])
