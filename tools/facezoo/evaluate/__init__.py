"""Evaluation: datasets -> launchers -> adapters -> stored predictions -> metrics -> report."""
from .errors import EvaluateError

__all__ = ["EvaluateError"]
