"""Strict fields of the dataset text formats: decimal ASCII numbers within a range, and relative
paths that stay inside the folder they are joined to. Each check raises EvaluateError with the
caller's location (`file:line`), what the field is, what was expected and what was found."""
from __future__ import annotations

import re

from ..errors import EvaluateError

# ASCII only ([0-9], not \d, which also matches other scripts' digits); at most 9 integer digits,
# so every accepted value is exact in a float64 and far from overflowing anything
INTEGER = re.compile(r"[+-]?[0-9]{1,9}")
DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,9}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")
MAX_PATH = 1024
MAX_COMPONENT = 255


def shown(token: str, width: int = 40) -> str:
    """A token as an error message quotes it: repr, shortened."""
    return repr(token if len(token) <= width else token[:width] + "...")


def integer(token: str, where: str, what: str, low: int, high: int) -> int:
    """`token` as an int in [low, high] (decimal ASCII digits, optional sign)."""
    if not INTEGER.fullmatch(token) or not low <= int(token) <= high:
        raise EvaluateError(f"{where}: {what}: expected an integer from {low} to {high}, found {shown(token)}")
    return int(token)


def decimal(token: str, where: str, what: str, low: float, high: float) -> float:
    """`token` as a float in [low, high] (plain decimal ASCII: no exponent, inf or nan)."""
    if not DECIMAL.fullmatch(token) or not low <= float(token) <= high:
        raise EvaluateError(f"{where}: {what}: expected a decimal number from {low:g} to {high:g}, "
                            f"found {shown(token)}")
    return float(token)


def relative_path(name: str, where: str, what: str) -> str:
    """`name` when it is a relative path with '/' separators that cannot leave the folder it is
    joined to: no absolute path, no '..' or '.' or empty component, no backslash, no control or
    invisible characters, components of at most 255 bytes."""
    problem = None
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_PATH:
        problem = f"it is longer than {MAX_PATH} characters"
    elif name.startswith("/"):
        problem = "it is absolute"
    elif "\\" in name:
        problem = "it contains a backslash"
    elif not name.isprintable():
        problem = "it contains control or invisible characters"
    elif any(part in ("", ".", "..") for part in name.split("/")):
        problem = "it has an empty, '.' or '..' component"
    elif any(len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT for part in name.split("/")):
        problem = f"a component is longer than {MAX_COMPONENT} bytes"
    if problem:
        raise EvaluateError(f"{where}: {what}: expected a relative path inside the dataset, found "
                            f"{shown(name)} ({problem})")
    return name
