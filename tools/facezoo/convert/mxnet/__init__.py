"""Readers of MXNet's own file formats (symbol JSON, NDArray lists), in NumPy alone."""
