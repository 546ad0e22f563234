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


# The ways a network can nest a GLM (options.py's 'architecture'); model/nesting.py has their forward passes.
KINDS = ("network", "cann", "localglmnet", "additive")


@dataclass(frozen=True)
class Embedding:
    """A factor entering the network through a learned embedding: its dummy inputs and the embedding size.

    ``columns`` index the network inputs holding the factor's treatment dummies; the first
    (reference) level is the row with no dummy set, so the factor has ``len(columns) + 1`` levels.
    """

    name: str
    columns: tuple[int, ...]
    dim: int
    levels: tuple[str, ...] = ()

    @property
    def n_levels(self) -> int:
        return len(self.columns) + 1


@dataclass(frozen=True)
class Architecture:
    """Hidden-layer widths and their activations; ``hidden=()`` is a GLM.

    Parameters
    ----------
    hidden : widths of the hidden layers, any depth (each ≥ 1); an int is one layer.
    activation : one name (see :data:`ACTIVATIONS`) or JAX-differentiable callable for all
        hidden layers, or a sequence with one per hidden layer.
    kind : ``"network"`` (a GLM on learned features), ``"cann"`` (the GLM's linear predictor
        plus a network's), ``"localglmnet"`` (η = β₀ + Σⱼ βⱼ(x)·xⱼ with βⱼ(x) from the network)
        or ``"additive"`` (one network per formula term, summed): see :mod:`neuralglm.model.nesting`.
    glm_fixed : CANN only: the GLM part is not trained (it acts as an offset).
    groups : additive only: the network inputs of each term (one subnetwork each), and
        ``group_names`` their labels.
    embeddings : factors entering the network through learned embeddings.

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
    kind: str = "network"
    glm_fixed: bool = False
    groups: tuple[tuple[int, ...], ...] = ()
    group_names: tuple[str, ...] = ()
    embeddings: tuple[Embedding, ...] = ()

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
        if self.kind not in KINDS:
            raise SpecificationError(f"The 'architecture' parameter of fit must be a str among {KINDS}. Got {self.kind!r} instead.")

    @property
    def nested(self) -> bool:
        """Whether the forward pass is :mod:`neuralglm.model.nesting`'s (another kind, or embeddings)."""
        return self.kind != "network" or bool(self.embeddings)

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
        layers = [f"{width} ({activation_name(a)})" for width, a in zip(self.hidden, self.activations, strict=True)]
        if self.kind == "additive":
            return f"additive: {len(self.groups)} terms, each inputs → " + " → ".join([*layers, "1"]) + ", summed"
        n_net = self.network_inputs(n_in)
        text = " → ".join([str(n_net), *layers, str(n_in) if self.kind == "localglmnet" else "1"])
        if self.embeddings:
            text = "embeddings (" + ", ".join(f"{e.name}: {e.n_levels} → {e.dim}" for e in self.embeddings) + ") · " + text
        if self.kind == "cann":
            return f"GLM ({'fixed' if self.glm_fixed else 'trained'}) + network {text}"
        if self.kind == "localglmnet":
            return f"LocalGLMnet: β(x) = {text}, η = β₀ + Σ βⱼ(x)·xⱼ"
        return text

    def network_inputs(self, n_in: int) -> int:
        """Width of the first hidden layer's input: ``n_in``, with each embedded factor's dummies replaced by its embedding."""
        return n_in - sum(len(e.columns) for e in self.embeddings) + sum(e.dim for e in self.embeddings)

    def layer_shapes(self, n_in: int, output_bias: bool = True) -> list[tuple[tuple[int, int], tuple[int, ...] | None]]:
        """``(weight shape, bias shape or None)`` of every layer of the parameter tuple, in order (model/nesting.py's layouts)."""
        hidden = [((a, b), (b,)) for a, b in itertools.pairwise((self.network_inputs(n_in), *self.hidden))]
        last = (self.hidden or (self.network_inputs(n_in),))[-1]
        constant = ((0, 1), (1,) if output_bias else None)  # a layer without inputs: its bias is the intercept
        embeddings = [((e.n_levels, e.dim), None) for e in self.embeddings]
        if self.kind == "cann":
            return [*embeddings, *hidden, ((last, 1), None), ((n_in, 1), constant[1])]
        if self.kind == "localglmnet":
            return [*embeddings, *hidden, ((last, n_in), (n_in,)), constant]
        if self.kind == "additive":
            shapes = []
            for group in self.groups:
                widths = (len(group), *self.hidden)
                shapes += [((a, b), (b,)) for a, b in itertools.pairwise(widths)] + [((widths[-1], 1), None)]
            return [*shapes, constant]
        return [*embeddings, *hidden, ((last, 1), (1,) if output_bias else None)]

    def n_params(self, n_in: int, output_bias: bool = True) -> int:
        """Number of weights and biases for ``n_in`` inputs."""
        if not self.nested:
            widths = (n_in, *self.hidden)
            count = sum(a * b + b for a, b in itertools.pairwise(widths))
            return count + widths[-1] + int(output_bias)
        return sum(w[0] * w[1] + (b[0] if b else 0) for w, b in self.layer_shapes(n_in, output_bias))
