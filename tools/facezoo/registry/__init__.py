"""The model registry: models/<subdir>/<name>/model.yml validated into frozen dataclasses."""
from .errors import RegistryError
from .loader import choose_models, default_models_root, load_model, load_registry, model_schema, read_model_list, select_models
from .model import Conversion, InputSpec, Model, ModelFile, Source, UnpackArchive

__all__ = [
    "Conversion", "InputSpec", "Model", "ModelFile", "RegistryError", "Source", "UnpackArchive",
    "choose_models", "default_models_root", "load_model", "load_registry", "model_schema", "read_model_list", "select_models",
]
