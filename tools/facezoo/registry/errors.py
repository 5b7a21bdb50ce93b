"""The error type of the registry stage."""

from facezoo.common.errors import FacezooError


class RegistryError(FacezooError):
    """A model.yml (or the registry as a whole) is not what it must be; the message is one line."""
