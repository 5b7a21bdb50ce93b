"""The error type of the conversion stage."""


class ConvertError(Exception):
    """A checkpoint or conversion setting is not what it must be; the message is one line."""
