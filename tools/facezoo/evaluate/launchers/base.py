"""What every launcher offers: the network input it expects, and inference over a stream."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

Handler = Callable[[Any, dict[str, np.ndarray]], None]


@dataclass(frozen=True)
class InputInfo:
    """The network's single image input."""

    name: str
    shape: tuple[int, ...]  # N, C, H, W; -1 where the model's size is open (a dynamic-size IR)


class Launcher(Protocol):
    """Runs a converted model. `infer` calls `handle(key, outputs)` once per item, from any thread,
    with outputs the handler may keep (copies, not views of reused buffers)."""

    input: InputInfo
    outputs: list[str]
    description: str

    def infer(self, items: Iterable[tuple[Any, np.ndarray]], handle: Handler) -> None: ...
