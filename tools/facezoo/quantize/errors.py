"""The quantizer's error type."""
from facezoo.common.errors import FacezooError


class QuantizeError(FacezooError):
    """Bad input to omz_quantizer: one line naming the file, field or flag."""
