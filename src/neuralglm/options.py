"""Every hyper-parameter of :func:`neuralglm.fit`, declared once.

Each :class:`Parameter` holds a name, the constraints a value must satisfy (one of them), the
default and a short doc, in the spirit of scikit-learn's ``_parameter_constraints``. From this
table come the validation of :func:`neuralglm.fit`, :func:`neuralglm.glm` and
:func:`neuralglm.glm_fit` (:func:`validate`, one message style), the scikit-learn estimators'
``__init__`` and ``get_params`` (:func:`estimator_init`), the command line's flags
(:mod:`neuralglm.cli`) and the parameter lists of the docstrings (:func:`document`).

Data arguments (``formula``, ``data``, ``offset``, ``exposure``, ``weights``,
``freq_weights``, ``missing``) are not hyper-parameters: they describe the rows, and the
scikit-learn estimators take them in ``fit``.

The kinds of values (ranges, choices, widths, activations) are in :mod:`neuralglm.constraints`.
This module imports neither JAX nor pandas, so that ``neuralglm --help`` answers at once.

Examples
--------
>>> from neuralglm.options import validate
>>> validate("fit", {"l2": 0, "hidden": 5})
{'l2': 0.0, 'hidden': (5,)}
>>> validate("fit", {"l2": -1})
Traceback (most recent call last):
...
neuralglm.errors.SpecificationError: The 'l2' parameter of fit must be a float in the range [0.0, inf). Got -1 instead.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from neuralglm.constraints import (
    ACTIVATION_NAMES,
    Activation,
    Boolean,
    CallableValue,
    Constraint,
    DtypeName,
    EmbeddingSizes,
    InstanceOf,
    Interval,
    NoneValue,
    Options,
    Text,
    Widths,
)
from neuralglm.errors import SpecificationError

SOLVERS = ("auto", "irls", "lbfgs", "adam", "sgd")
# model/architecture.py KINDS (repeated here: this module imports no JAX).
ARCHITECTURES = ("network", "cann", "localglmnet", "additive")
COV_TYPES = ("expected", "observed", "sandwich")
# Measured: without jax_enable_x64, jax.random.key(2**32) gives the key of seed 0 (the seed is
# cut to 32 bits), and seeds ≥ 2**63 overflow; so larger seeds are refused, not silently wrapped.
MAX_SEED = 2**32 - 1


# ---- the table --------------------------------------------------------------------------------
_SAME = object()


@dataclass(frozen=True)
class Parameter:
    """One hyper-parameter: its name, the constraints of which a value must satisfy one, default and doc."""

    name: str
    constraints: tuple[Constraint, ...]
    default: Any
    doc: str
    # The scikit-learn estimators' default, where it must differ from ng.fit's (the reason beside it).
    estimator_default: Any = _SAME

    @property
    def type_text(self) -> str:
        return " or ".join(dict.fromkeys(c.type_name for c in self.constraints))

    def requirement(self, value) -> str:
        """What the value must be; for a number out of range, only the ranges of its kind (the helpful part)."""
        chosen = [c for c in self.constraints if isinstance(c, Interval) and c.accepts_type(value)]
        texts = [c.description for c in chosen or self.constraints]
        return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]

    def check(self, value, caller: str, name: str | None = None):
        """The converted value, or :class:`SpecificationError` in the one sentence style."""
        for constraint in self.constraints:
            if constraint.accepts(value):
                return constraint.convert(value)
        raise SpecificationError(
            f"The '{name or self.name}' parameter of {caller} must be {self.requirement(value)}. Got {_shown(value)} instead."
        )


def _shown(value) -> str:
    """The value's repr, cut short: a whole array passed by mistake must not flood the message."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}… ({type(value).__name__})"


_POSITIVE = Interval(float, 0.0, None, "neither")
_AT_LEAST_ONE = Interval(int, 1, None, "left")

PARAMETERS: dict[str, Parameter] = {
    p.name: p
    for p in (
        Parameter(
            "family",
            (Text("a family name"), InstanceOf("neuralglm.family.family", "Family")),
            "gaussian",
            "'gaussian', 'binomial', 'poisson', 'gamma', 'inverse_gaussian', 'negative_binomial' (θ estimated, as "
            "MASS::glm.nb), 'negative_binomial(alpha)' (alpha = 1/θ fixed), 'tweedie(power)', 'tweedie(estimate)' "
            "(GLMs: the power by profile likelihood), or a Family object.",
        ),
        Parameter(
            "link",
            (Text("a link name"), InstanceOf("neuralglm.family.link", "Link"), NoneValue()),
            None,
            "Link name or object; None uses the family's default (canonical) link.",
        ),
        Parameter(
            "hidden",
            (Widths(),),
            (),
            "Widths of the hidden layers, any depth; an int is one layer (5 means (5,)); () fits a GLM.",
        ),
        Parameter(
            "activation",
            (Activation(),),
            "tanh",
            f"{', '.join(repr(a) for a in ACTIVATION_NAMES)}, any JAX-differentiable callable, or a list with one per hidden layer. "
            "The default 'tanh' is linear near 0, so weight decay shrinks the network towards a GLM-like fit (ReLU "
            "towards 0); on benchmarks/defaults.py's grid it generalized better than 'relu' (benchmarks/README.md).",
        ),
        Parameter(
            "solver",
            (Options(SOLVERS),),
            "auto",
            "'auto' (IRLS for hidden=() without l2, L-BFGS for hidden=() with it; with hidden layers, full-batch "
            "L-BFGS up to network.LBFGS_MAX_ROWS rows and network.LBFGS_MAX_WORK rows × parameters (to the penalized "
            "optimum, which generalized better than Adam with early stopping on the benchmark's grid), Adam beyond; "
            "Adam whenever early_stopping), 'irls' (hidden=() only), 'lbfgs', 'adam', 'sgd' (momentum).",
        ),
        Parameter(
            "learning_rate",
            (_POSITIVE, CallableValue()),
            1e-3,
            "Adam/SGD step size, or a callable epoch -> step size.",
        ),
        Parameter(
            "epochs",
            (_AT_LEAST_ONE, NoneValue()),
            None,
            "Maximum epochs (L-BFGS: iterations); None: 200 (Adam/SGD), 1000 (L-BFGS).",
        ),
        Parameter("batch_size", (_AT_LEAST_ONE,), 256, "Rows per minibatch (Adam/SGD)."),
        Parameter(
            "l2",
            (Interval(float, 0.0, None, "left"), Options(("auto",))),
            "auto",
            "Weight decay on the weights (not the biases): the precision of a Gaussian prior N(0, 1/l2); "
            "for the Gaussian family, scikit-learn's alpha. 'auto': none without hidden layers (the GLM); with them "
            "network.DEFAULT_L2 × √φ₀, φ₀ the intercept-only model's Pearson dispersion (1 for binomial and Poisson), "
            "so that the fit does not depend on the unit of the response (chosen on the grid of benchmarks/defaults.py).",
        ),
        Parameter(
            "penalize_output",
            (Boolean(),),
            True,
            "Whether l2 also applies to the output layer's weights (as scikit-learn's alpha). False penalizes the "
            "hidden layers only, like a penalty.factor of 0 for the output layer in glmnet: the output layer is then "
            "the unpenalized GLM on the learned features, which NetworkResult.output_glm reproduces after a converged "
            "fit. Convergence can be slow: shrinking a hidden unit's weights while growing its output weight keeps a "
            "nearly linear unit's contribution and lowers the penalty, a direction along which the objective keeps "
            "creeping down.",
        ),
        Parameter("momentum", (Interval(float, 0.0, 1.0, "left"),), 0.9, "SGD momentum."),
        Parameter(
            "early_stopping",
            (Boolean(), NoneValue()),
            None,
            "Hold out a random validation_fraction of the rows, stop when their deviance has not improved for "
            "patience epochs, and restore the best weights (Adam/SGD). None: on when solver='auto' picks Adam "
            "(very many rows or parameters), off otherwise.",
        ),
        Parameter(
            "validation_fraction",
            (Interval(float, 0.0, 1.0, "neither"),),
            0.1,
            "Share of the rows held out for early_stopping.",
        ),
        Parameter("patience", (_AT_LEAST_ONE,), 10, "Epochs without improvement of the validation deviance before early_stopping stops."),
        Parameter(
            "tol",
            (_POSITIVE, NoneValue()),
            None,
            "L-BFGS: largest gradient component at convergence (None: 1e-5); Adam/SGD: relative improvement that "
            "counts as progress (None: 1e-4).",
        ),
        Parameter(
            "seed",
            (Interval(int, 0, MAX_SEED, "both"),),
            0,
            "Seeds the initial weights, the validation split and the minibatch order (at most 2**32 - 1: JAX keys take 32 bits).",
        ),
        Parameter(
            "dtype",
            (DtypeName(),),
            "float32",
            "'float32' or 'float64' training; reported statistics are always recomputed in float64.",
        ),
        Parameter(
            "verbose",
            (Boolean(), NoneValue()),
            None,
            "Progress bar; None: only on a terminal, for fits longer than a second.",
            estimator_default=False,  # the estimators: no progress bars inside cross-validation
        ),
        Parameter(
            "dispersion",
            (NoneValue(), Options(("pearson",)), _POSITIVE),
            None,
            "None (R's default: 1 for binomial and Poisson, else Pearson's estimate), 'pearson', or a fixed positive number.",
        ),
        Parameter(
            "cov_type",
            (Options(COV_TYPES),),
            "expected",
            "'expected' (R's summary.glm), 'observed' or 'sandwich' (HC0) covariance of the coefficients.",
        ),
        Parameter("max_iter", (_AT_LEAST_ONE,), 100, "Maximum IRLS iterations (hidden=() fitted by IRLS)."),
        Parameter("epsilon", (_POSITIVE,), 1e-8, "IRLS convergence: R's relative change of the deviance (hidden=() fitted by IRLS)."),
        Parameter(
            "architecture",
            (Options(ARCHITECTURES),),
            "network",
            "'network' (a GLM on the last hidden layer's learned features), 'cann' (the formula's GLM, started at its "
            "IRLS estimates, plus a network started with output weight 0, so that training starts exactly at the "
            "GLM), 'localglmnet' (η = β₀ + Σⱼ βⱼ(x)·xⱼ with the coefficients βⱼ(x) computed by the network, started at "
            "the GLM: fit.local_coef) or 'additive' (one network per formula term, summed on the link scale: "
            "fit.shape_functions). With hidden=() 'cann' and 'additive' are the GLM; 'localglmnet' needs hidden layers.",
        ),
        Parameter(
            "cann_fixed",
            (Boolean(),),
            False,
            "architecture='cann': keep the GLM part at its IRLS estimates (it acts as an offset) and train the network only.",
        ),
        Parameter(
            "embed",
            (NoneValue(), EmbeddingSizes()),
            None,
            "Factors entering the network through learned embeddings instead of dummies: a dict {column: size}, or "
            "'auto' (every factor of 3 or more levels, size min(10, ceil(levels / 2))); None: dummies. Plain networks, "
            "CANN and LocalGLMnet (its attention network's input).",
        ),
    )
}
# ng.glm calls the progress bar `progress` (R-like), ng.fit `verbose` (scikit-learn-like).
ALIASES = {"progress": "verbose"}


def validate(caller: str, values: dict[str, Any]) -> dict[str, Any]:
    """Check ``values`` against the table, in order; return them converted (``hidden=5`` → ``(5,)``).

    Raises :class:`~neuralglm.errors.SpecificationError` naming the first bad parameter, what it
    must be and the value, e.g. "The 'l2' parameter of fit must be a float in the range
    [0.0, inf). Got -1 instead."

    Examples
    --------
    >>> validate("glm", {"max_iter": 25, "progress": None})
    {'max_iter': 25, 'progress': None}
    """
    return {name: PARAMETERS[ALIASES.get(name, name)].check(value, caller, name) for name, value in values.items()}


def check_fit_combinations(settings: dict[str, Any]) -> None:
    """Refuse solver settings that contradict each other (after :func:`validate`)."""
    solver, hidden = settings["solver"], settings["hidden"]
    if solver == "irls" and hidden:
        raise SpecificationError(
            f"solver='irls' fits only models without hidden layers; got hidden={hidden}. Use 'auto', 'lbfgs', 'adam' or 'sgd'."
        )
    penalized = settings["l2"] != "auto" and settings["l2"] > 0.0  # 'auto' adds no penalty without hidden layers
    if solver == "irls" and (penalized or settings["early_stopping"]):
        raise SpecificationError(
            "solver='irls' fits the unpenalized GLM: it takes neither l2 nor early_stopping. Use solver='lbfgs' or 'adam'."
        )
    if solver == "lbfgs" and settings["early_stopping"]:
        raise SpecificationError("early_stopping needs a minibatch solver ('adam' or 'sgd'); L-BFGS runs to convergence on the full batch.")


# ---- what the table generates ------------------------------------------------------------------
MARKER = "[hyper-parameters: generated from neuralglm.options.PARAMETERS]"


def format_parameters(names: Sequence[str], *, indent: int = 4, estimator: bool = False) -> str:
    """The numpydoc entries of ``names``: ``name : type, default=...`` and the wrapped doc."""
    lines = []
    for name in names:
        parameter = PARAMETERS[ALIASES.get(name, name)]
        default = parameter.default if not estimator or parameter.estimator_default is _SAME else parameter.estimator_default
        lines.append(f"{name} : {parameter.type_text}, default={default!r}")
        lines.extend(textwrap.wrap(parameter.doc, width=96, initial_indent="    ", subsequent_indent="    "))
    return textwrap.indent("\n".join(lines), " " * indent)


def document(names: Sequence[str], *, estimator: bool = False) -> Callable:
    """Decorator: replace the line holding :data:`MARKER` in the docstring by the table's entries of ``names``."""

    def decorate(obj):
        doc = obj.__doc__ or ""
        for line in doc.splitlines():
            if MARKER in line:
                indent = len(line) - len(line.lstrip())
                obj.__doc__ = doc.replace(line, format_parameters(names, indent=indent, estimator=estimator))
                break
        return obj

    return decorate


def estimator_init(names: Sequence[str]) -> Callable:
    """An ``__init__`` taking the keyword parameters ``names`` with the table's (estimator) defaults.

    scikit-learn reads the parameters of an estimator from ``inspect.signature(cls.__init__)``
    and forbids ``**kwargs`` there; the generated function carries an explicit
    ``__signature__``, stores each value unchanged (validation happens in ``fit``, as
    scikit-learn requires) and refuses unknown keywords with a ``TypeError``.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    fields = [
        inspect.Parameter(
            name,
            keyword,
            default=PARAMETERS[name].default if PARAMETERS[name].estimator_default is _SAME else PARAMETERS[name].estimator_default,
        )
        for name in names
    ]
    signature = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *fields])

    def __init__(self, **kwargs):
        try:
            bound = signature.bind(self, **kwargs)
        except TypeError as error:  # name the class: the generated function's own name says nothing
            raise TypeError(f"{type(self).__name__}(): {error}") from None
        bound.apply_defaults()
        for name in names:
            setattr(self, name, bound.arguments[name])

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__
