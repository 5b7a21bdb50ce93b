"""What every stage shares: the base error type, safe file handling, and the console-script runner."""
from .errors import FacezooError

__all__ = ["FacezooError"]
