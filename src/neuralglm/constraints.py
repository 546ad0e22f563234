"""The kinds of values a hyper-parameter accepts, for the table of :mod:`neuralglm.options`.

Each :class:`Constraint` says whether it accepts a value, describes itself for the error
messages and the docs ("a float in the range [0.0, inf)"), converts an accepted value to what
the library uses (NumPy integers become ints, ``hidden=5`` becomes ``(5,)``) and parses the
command line's text. No JAX import here: the command line's ``--help`` must answer at once.

Examples
--------
>>> Interval(float, 0.0, None, "left").description
'a float in the range [0.0, inf)'
>>> Widths().convert(5)
(5,)
"""

from __future__ import annotations

import importlib
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The activation names of neuralglm.model.architecture.ACTIVATIONS (a unit test checks they
# agree); listed here so that validating them, and the command line, need no JAX import.
ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "logistic", "gelu", "softplus", "elu", "leaky_relu", "identity")
DTYPE_NAMES = ("float32", "float64")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


# ---- constraints ----------------------------------------------------------------------------
class Constraint:
    """One kind of value a parameter accepts; a parameter accepts a value if any of its constraints does."""

    description = ""
    type_name = ""
    choices: tuple[str, ...] = ()  # the whole set of values, when it is a few strings (command-line choices)

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def convert(self, value):
        """The value as the library uses it (numpy scalars become Python numbers)."""
        return value

    def parse(self, text: str):
        """The value written as ``text`` on the command line; ``ValueError`` when it is not this kind."""
        raise ValueError(text)


@dataclass(frozen=True)
class Interval(Constraint):
    """An int or a finite float in a range, as scikit-learn's ``Interval``; ``None`` is unbounded."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "left"  # "left", "right", "both" or "neither"

    def _bounds(self) -> tuple[float, float]:
        return (-math.inf if self.low is None else self.low), (math.inf if self.high is None else self.high)

    @property
    def description(self) -> str:  # type: ignore[override]
        low, high = self._bounds()
        left = "[" if self.closed in ("left", "both") and self.low is not None else "("
        right = "]" if self.closed in ("right", "both") and self.high is not None else ")"
        show = (lambda x: str(int(x)) if math.isfinite(x) else str(x)) if self.kind is int else (lambda x: str(float(x)))
        article = "an" if self.kind is int else "a"
        return f"{article} {self.type_name} in the range {left}{show(low)}, {show(high)}{right}"

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return "int" if self.kind is int else "float"

    def accepts_type(self, value) -> bool:
        return _is_int(value) if self.kind is int else _is_real(value)

    def accepts(self, value) -> bool:
        try:
            finite = self.accepts_type(value) and math.isfinite(float(value))
        except OverflowError:  # an int beyond float's range (10**400) is out of every range here
            return False
        if not finite:
            return False
        low, high = self._bounds()
        above = value >= low if self.closed in ("left", "both") else value > low
        below = value <= high if self.closed in ("right", "both") else value < high
        return bool(above and below)

    def convert(self, value):
        return int(value) if self.kind is int else float(value)

    def parse(self, text: str):
        return self.kind(text)


@dataclass(frozen=True)
class Options(Constraint):
    """One of a few strings."""

    values: tuple[str, ...]
    type_name = "str"

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.values

    @property
    def description(self) -> str:  # type: ignore[override]
        return "a str among {" + ", ".join(repr(v) for v in self.values) + "}"

    def accepts(self, value) -> bool:
        return isinstance(value, str) and value in self.values

    def parse(self, text: str):
        if text not in self.values:
            raise ValueError(text)
        return text


class Boolean(Constraint):
    description = "a bool"
    type_name = "bool"

    def accepts(self, value) -> bool:
        return isinstance(value, (bool, np.bool_))

    def convert(self, value):
        return bool(value)


class NoneValue(Constraint):
    description = "None"
    type_name = "None"

    def accepts(self, value) -> bool:
        return value is None

    def parse(self, text: str):
        if text.lower() != "none":
            raise ValueError(text)


class CallableValue(Constraint):
    description = "a callable"
    type_name = "callable"

    def accepts(self, value) -> bool:
        return callable(value) and not isinstance(value, type)


@dataclass(frozen=True)
class Text(Constraint):
    """Any string (a name resolved later, e.g. a family by the registry)."""

    description: str = "a str"  # type: ignore[assignment]
    type_name = "str"

    def accepts(self, value) -> bool:
        return isinstance(value, str)

    def parse(self, text: str):
        return text


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of a library class, named by module and class so that this module imports no JAX."""

    module: str
    name: str

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"a {self.name} object"

    @property
    def type_name(self) -> str:  # type: ignore[override]
        return self.name

    def accepts(self, value) -> bool:
        return isinstance(value, getattr(importlib.import_module(self.module), self.name))


# The widest hidden layer accepted (2**20 units): far beyond what a CPU or GPU trains, and small
# enough that widths never overflow the int32 shapes JAX builds (model files cap it the same way).
MAX_WIDTH = 1 << 20


def _widths(value) -> tuple[int, ...] | None:
    items = (value,) if _is_int(value) else value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        return None
    if not all(_is_int(width) and 1 <= width <= MAX_WIDTH for width in items):
        return None
    return tuple(int(width) for width in items)


class Widths(Constraint):
    """Hidden-layer widths: an int is one layer, a sequence gives one width per layer."""

    description = "an int in [1, 1048576] (one hidden layer of that width) or a tuple of such ints (one per hidden layer; () for a GLM)"
    type_name = "int or tuple of int"

    def accepts(self, value) -> bool:
        return _widths(value) is not None

    def convert(self, value):
        return _widths(value)

    def parse(self, text: str):
        text = text.strip().strip("()").strip()
        if text in ("", "0"):
            return ()
        return tuple(int(part) for part in text.split(",") if part.strip())


def _activation_ok(item) -> bool:
    return (isinstance(item, str) and item in ACTIVATION_NAMES) or (callable(item) and not isinstance(item, (str, type)))


class Activation(Constraint):
    """An activation name or callable for every hidden layer, or a sequence with one per layer."""

    description = f"a str among {{{', '.join(repr(a) for a in ACTIVATION_NAMES)}}}, a JAX-differentiable callable, or a list of those (one per hidden layer)"
    type_name = "str, callable or list"

    def accepts(self, value) -> bool:
        if isinstance(value, (list, tuple)):
            return all(_activation_ok(item) for item in value)
        return _activation_ok(value)

    def convert(self, value):
        return tuple(value) if isinstance(value, list) else value

    def parse(self, text: str):
        parts = tuple(part.strip() for part in text.split(","))
        return parts[0] if len(parts) == 1 else parts


class DtypeName(Constraint):
    """``'float32'`` or ``'float64'``, also given as a NumPy or JAX dtype; converted to its name."""

    description = "'float32' or 'float64'"
    type_name = "str"
    choices = DTYPE_NAMES

    @staticmethod
    def _name(value) -> str | None:
        if isinstance(value, (bool, int, float)) or value is None:
            return None
        try:
            return np.dtype(value).name
        except TypeError:
            return None

    def accepts(self, value) -> bool:
        return self._name(value) in DTYPE_NAMES

    def convert(self, value):
        return self._name(value)

    def parse(self, text: str):
        if text not in DTYPE_NAMES:
            raise ValueError(text)
        return text


# The largest embedding accepted: an embedding is a low-dimensional summary of a factor's levels.
MAX_EMBEDDING = 1024


class EmbeddingSizes(Constraint):
    """Factor embeddings: a dict ``{column: size}`` (each size an int in [1, 1024]), or ``'auto'``."""

    description = "'auto' or a dict mapping factor column names to embedding sizes (ints in [1, 1024])"
    type_name = "dict"

    def accepts(self, value) -> bool:
        if isinstance(value, str):
            return value == "auto"
        return (
            isinstance(value, dict)
            and len(value) > 0
            and all(isinstance(k, str) and _is_int(v) and 1 <= v <= MAX_EMBEDDING for k, v in value.items())
        )

    def convert(self, value):
        return value if isinstance(value, str) else {str(k): int(v) for k, v in value.items()}

    def parse(self, text: str):
        """``auto``, or ``region=2,brand=3``."""
        if text.strip() == "auto":
            return "auto"
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        if not pairs or any(len(pair) != 2 for pair in pairs):
            raise ValueError(text)
        return {name.strip(): int(size) for name, size in pairs}
