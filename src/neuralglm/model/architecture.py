"""The static description of a network: hidden widths and one activation per hidden layer.

An :class:`Architecture` is frozen and hashable, so it is a ``jax.jit`` static argument: two
fits with the same architecture (and data shapes) reuse the same compiled code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp

from neuralglm.errors import SpecificationError
from neuralglm.options import PARAMETERS


def _identity(x):
    return x


ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "logistic": jax.nn.sigmoid,  # scikit-learn's name for the sigmoid
    # The exact (erf) GELU, as PyTorch's default nn.GELU(); the tanh approximation differs by ~1e-3.
    "gelu": partial(jax.nn.gelu, approximate=False),
    "softplus": jax.nn.softplus,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01, as PyTorch's default
    "identity": _identity,
}


def activation_name(activation: str | Callable) -> str:
    """A readable name: the string itself, or the callable's ``__name__``."""
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", None) or getattr(getattr(activation, "func", None), "__name__", None) or repr(activation)


@dataclass(frozen=True)
class Architecture:
    """Hidden-layer widths and their activations; ``hidden=()`` is a GLM.

    Parameters
    ----------
    hidden : widths of the hidden layers, any depth (each ≥ 1); an int is one layer.
    activation : one name (see :data:`ACTIVATIONS`) or JAX-differentiable callable for all
        hidden layers, or a sequence with one per hidden layer.

    Examples
    --------
    >>> arch = Architecture(hidden=(16, 8), activation="relu")
    >>> arch.activations
    ('relu', 'relu')
    >>> arch.describe(n_in=5)
    '5 → 16 (relu) → 8 (relu) → 1'
    """

    hidden: tuple[int, ...] = ()
    activation: str | Callable | tuple[str | Callable, ...] = "tanh"

    def __post_init__(self):
        # One validation for ng.fit, the estimators, the command line and direct use: the table's.
        hidden = PARAMETERS["hidden"].check(self.hidden, "fit")
        activation = PARAMETERS["activation"].check(self.activation, "fit")
        if isinstance(activation, tuple) and len(activation) != len(hidden):
            raise SpecificationError(
                f"The 'activation' parameter of fit must give one activation per hidden layer ({len(hidden)}); got {len(activation)}: {list(activation)!r}."
            )
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "activation", activation)

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers."""
        return len(self.hidden)

    @property
    def activations(self) -> tuple[str | Callable, ...]:
        """One activation per hidden layer."""
        if isinstance(self.activation, tuple):
            return self.activation
        return (self.activation,) * self.n_hidden

    def activation_functions(self) -> tuple[Callable, ...]:
        """The activation callables, one per hidden layer."""
        return tuple(ACTIVATIONS[a] if isinstance(a, str) else a for a in self.activations)

    def describe(self, n_in: int) -> str:
        """``'5 → 16 (relu) → 8 (relu) → 1'``."""
        parts = [str(n_in)] + [f"{width} ({activation_name(a)})" for width, a in zip(self.hidden, self.activations, strict=True)]
        return " → ".join([*parts, "1"])

    def n_params(self, n_in: int, output_bias: bool = True) -> int:
        """Number of weights and biases for ``n_in`` inputs."""
        widths = (n_in, *self.hidden)
        count = sum(a * b + b for a, b in itertools.pairwise(widths))
        return count + widths[-1] + int(output_bias)
