"""Domains of responses and means, declared as data (scikit-learn's ``Interval`` idea)."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import jax
import numpy as np


@dataclass(frozen=True)
class Interval:
    """A real interval with open or closed ends.

    Examples
    --------
    >>> Interval(0.0, math.inf, low_closed=True).describe()
    'y ≥ 0'
    >>> bool(Interval(0.0, 1.0, True, True).contains(np.array([0.0, 0.5, 1.0])).all())
    True
    """

    low: float = -math.inf
    high: float = math.inf
    low_closed: bool = False
    high_closed: bool = False

    def contains(self, values):
        """Boolean mask: which of ``values`` lie inside the interval (NumPy in, NumPy out; JAX arrays stay JAX)."""
        if not isinstance(values, jax.Array):
            values = np.asarray(values, dtype=float)
        above = values >= self.low if self.low_closed else values > self.low
        below = values <= self.high if self.high_closed else values < self.high
        return above & below

    def describe(self, name: str = "y") -> str:
        """The interval as a readable condition, e.g. ``'0 ≤ y ≤ 1'`` or ``'y > 0'``."""
        has_low, has_high = math.isfinite(self.low), math.isfinite(self.high)
        low_sign = "≤" if self.low_closed else "<"
        high_sign = "≤" if self.high_closed else "<"
        if has_low and has_high:
            return f"{_fmt(self.low)} {low_sign} {name} {high_sign} {_fmt(self.high)}"
        if has_low:
            return f"{name} {'≥' if self.low_closed else '>'} {_fmt(self.low)}"
        if has_high:
            return f"{name} {high_sign} {_fmt(self.high)}"
        return f"{name} any real number"


def _fmt(value: float) -> str:
    return f"{value:g}"


REAL = Interval()
NON_NEGATIVE = Interval(0.0, math.inf, low_closed=True)
POSITIVE = Interval(0.0, math.inf)
UNIT_CLOSED = Interval(0.0, 1.0, low_closed=True, high_closed=True)
UNIT_OPEN = Interval(0.0, 1.0)


def is_finite_real(value) -> bool:
    """A finite real number, as a family's or link's parameter must be (bools and text are not).

    Examples
    --------
    >>> is_finite_real(1.5), is_finite_real(True), is_finite_real("1.5"), is_finite_real(float("inf"))
    (True, False, False, False)
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
