"""A FLOPs budget: parsing the user's string, and the feasibility window [(1 - tolerance) * B, B]."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

ACCEPTED_FORMS = "4GFLOPs, 4 GFLOPs, 4gflops, 400MFLOPs, 4.1G, 4e9 (units K, M, G, T; 'FLOPs' optional)"
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_PATTERN = re.compile(
    r"^\s*(?P<number>[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(?P<unit>[kmgt]?)\s*(?:flops?|f)?\s*$",
    re.IGNORECASE,
)
# Larger than any network anyone trains (a 1000x ResNeXt-101): a typo, not a budget.
MAX_BUDGET = 10**16


def parse_flops(text: str) -> int:
    """'4GFLOPs' -> 4_000_000_000. Raises ValueError with a one-line message listing accepted forms."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty budget; accepted forms: {ACCEPTED_FORMS}")
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"cannot read budget {text!r}; accepted forms: {ACCEPTED_FORMS}")
    value = float(match["number"]) * _UNITS[match["unit"].lower()]
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"budget {text!r} must be a positive number of FLOPs; accepted forms: {ACCEPTED_FORMS}")
    if value > MAX_BUDGET:
        raise ValueError(f"budget {text!r} is absurdly large (over {MAX_BUDGET:.0e} FLOPs)")
    return int(round(value))


def format_flops(flops: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(flops) >= scale:
            return f"{flops / scale:.3g} {unit}FLOPs"
    return f"{flops:.0f} FLOPs"


@dataclass(frozen=True)
class Budget:
    """Feasible architectures cost between (1 - tolerance) * flops and flops, at `resolution`."""

    flops: int
    tolerance: float = 0.1

    def __post_init__(self) -> None:
        if not (isinstance(self.flops, int) and self.flops > 0):
            raise ValueError(f"budget must be a positive integer number of FLOPs, got {self.flops!r}")
        if not (0.0 < self.tolerance < 1.0) or math.isnan(self.tolerance):
            raise ValueError(f"tolerance must lie in (0, 1), got {self.tolerance!r}")

    @classmethod
    def parse(cls, text: str, tolerance: float = 0.1) -> Budget:
        return cls(parse_flops(text), tolerance)

    @property
    def low(self) -> int:
        # Integer FLOPs: the smallest count that is still inside the window.
        return math.ceil((1.0 - self.tolerance) * self.flops)

    @property
    def high(self) -> int:
        return self.flops

    def contains(self, flops: int) -> bool:
        return self.low <= flops <= self.high

    def __str__(self) -> str:
        return f"{format_flops(self.flops)} (feasible: {format_flops(self.low)} .. {format_flops(self.high)})"
