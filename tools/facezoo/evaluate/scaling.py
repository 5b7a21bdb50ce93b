"""WIDER protocols that feed each image at its own aspect ratio: insightface's test-scale rules.

insightface's RetinaFace test (detection/retinaface/test_widerface.py) scales an image so that its
short side becomes `target_size`, unless the long side would then round to more than `max_size`,
in which case the long side becomes `max_size`. Its single-scale test uses 1600 / 2150; its
pyramid test takes 800 / 1200 as the base and runs the sizes 500, 800, 1100, 1400, 1700 relative
to it (scale s / 800 x the base scale), each also mirrored. A fixed factor (1.0: the image as it
is) is the "original scale" protocol. The images are resized by OpenCV with the factor itself
(cv2.resize(fx=fy=scale), bilinear), as insightface does, and boxes are divided by the factor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EvaluateError

MAX_INPUT_PIXELS = 1 << 24  # a scaled network input above this (16.8 megapixels) is refused, not allocated


@dataclass(frozen=True)
class ScaleRule:
    """How one image becomes one or more network inputs at its own aspect ratio."""

    factor: float | None = None  # a fixed scale (1.0: the original size); else target_size applies
    target_size: int | None = None  # the short side's length at the base scale
    max_size: int | None = None  # the long side's cap at the base scale (None: no cap)
    sizes: tuple[int, ...] = ()  # a pyramid: one input per size s, at s / target_size x the base scale
    flip: bool = False  # each input also mirrored left-right

    @property
    def passes(self) -> int:
        """Network inputs per image."""
        return max(1, len(self.sizes)) * (2 if self.flip else 1)

    def describe(self) -> str:
        """One line naming the rule (recorded with stored predictions and cached inputs)."""
        if self.factor is not None:
            text = f"scale {self.factor:g}"
        else:
            text = f"short side {self.target_size}" + (f", long side <= {self.max_size}" if self.max_size else "")
            if self.sizes:
                text += f", sizes {list(self.sizes)}"
        return text + (", flipped too" if self.flip else "")


def base_scale(rule: ScaleRule, height: int, width: int) -> float:
    """The scale of the rule's base input for an image of height x width."""
    if rule.factor is not None:
        return rule.factor
    short, long = min(height, width), max(height, width)
    scale = float(rule.target_size) / float(short)
    if rule.max_size is not None and np.round(scale * long) > rule.max_size:
        scale = float(rule.max_size) / float(long)
    return scale


def image_scales(rule: ScaleRule, height: int, width: int) -> tuple[float, ...]:
    """Every scale at which an image of height x width is run (one per pyramid size, or one)."""
    base = base_scale(rule, height, width)
    if not rule.sizes:
        return (base,)
    return tuple(float(s) / rule.target_size * base for s in rule.sizes)


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The (height, width) cv2.resize(fx=fy=scale) gives: each side times the scale, rounded to
    the nearest integer (ties to even, as OpenCV's cvRound)."""
    return int(np.rint(height * scale)), int(np.rint(width * scale))


def parse_preprocessing(steps: list[dict[str, Any]], where: str) -> tuple[int | None, ScaleRule | None]:
    """(resize size, scale rule) of a dataset entry's preprocessing list, already checked by the
    schema (`where` names it in errors): `resize` (to size x size, the fixed network input),
    `scale` (a factor, or target_size with optional max_size and a pyramid of sizes) and `flip`
    (with `scale` only)."""
    resize, rule, flip = None, None, False
    for k, step in enumerate(steps):
        at = f"{where}[{k}]"
        kind = step["type"]
        if kind == "resize":
            if "size" not in step:
                raise EvaluateError(f"{at}.size: resize needs the network input's side, e.g. size: 640")
            resize = step["size"]
        elif kind == "flip":
            flip = True
        else:  # scale
            if rule is not None:
                raise EvaluateError(f"{at}: a second scale step; give one (a pyramid lists its sizes)")
            if ("factor" in step) == ("target_size" in step):
                raise EvaluateError(f"{at}: scale needs factor (e.g. 1.0, the original size) or target_size "
                                    f"(the short side), exactly one")
            if "factor" in step and ("max_size" in step or "sizes" in step):
                raise EvaluateError(f"{at}: max_size and sizes go with target_size, not with factor")
            rule = ScaleRule(factor=step.get("factor"), target_size=step.get("target_size"),
                             max_size=step.get("max_size"), sizes=tuple(step.get("sizes", ())))
    if rule is not None and resize is not None:
        raise EvaluateError(f"{where}: resize (to the fixed network input) and scale (each image at its own size) "
                            f"exclude each other")
    if flip and rule is None:
        raise EvaluateError(f"{where}: flip runs each scaled input mirrored too; it needs a scale step")
    if rule is not None and flip:
        rule = ScaleRule(rule.factor, rule.target_size, rule.max_size, rule.sizes, True)
    return resize, rule
