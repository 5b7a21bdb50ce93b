"""The error type of the registry stage."""


class RegistryError(Exception):
    """A model.yml (or the registry as a whole) is not what it must be; the message is one line."""
