"""The one exception type of the evaluation stage."""

from facezoo.common.errors import FacezooError


class EvaluateError(FacezooError):
    """Bad input to accuracy_check (config, dataset, model); the message is one line."""
