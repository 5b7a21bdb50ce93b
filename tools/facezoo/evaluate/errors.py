"""The one exception type of the evaluation stage."""


class EvaluateError(Exception):
    """Bad input to accuracy_check (config, dataset, model); the message is one line."""
