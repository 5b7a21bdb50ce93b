"""The conversion stage: MXNet checkpoints (read with NumPy) to ONNX and OpenVINO IR, verified against MXNet."""
from .convert import ConvertedModel, build_onnx, convert_model
from .errors import ConvertError

__all__ = ["ConvertError", "ConvertedModel", "build_onnx", "convert_model"]
