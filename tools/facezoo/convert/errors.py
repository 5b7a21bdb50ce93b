"""The error type of the conversion stage."""

from facezoo.common.errors import FacezooError


class ConvertError(FacezooError):
    """A checkpoint or conversion setting is not what it must be; the message is one line."""
