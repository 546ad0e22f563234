"""``ng.fit``: a GLM with learned features in front, fitted by maximum (penalized) likelihood.

This module only wires the stages: validation of the hyper-parameters, the design
(:func:`neuralglm.data.design.make_design`, so every data error of the GLM core applies),
input scaling (:mod:`neuralglm.model.inputs`), training (:mod:`neuralglm.fit.gradient`) and
the result (:mod:`neuralglm.results.network`). With ``hidden=()`` and ``solver="auto"`` or
``"irls"`` it *is* :func:`neuralglm.glm`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from neuralglm import api
from neuralglm.data.design import make_design
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.null_model import intercept_only
from neuralglm.family.registry import get_family, get_link
from neuralglm.fit.gradient import GradientControl, fit_gradient
from neuralglm.inference.covariance import check_cov_type
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import fit_scaling
from neuralglm.results.network import make_network_result

SOLVER_CHOICES = ("auto", "irls", "lbfgs", "adam", "sgd")
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
# solver="auto" trains with full-batch L-BFGS up to LBFGS_MAX_ROWS rows and LBFGS_MAX_WORK
# rows × parameters, Adam beyond. Measured (`python -m benchmarks.network_bench --part auto`,
# benchmarks/README.md, 2026-12-03, L-BFGS on one flat vector): on a grid of 2k-100k rows ×
# 97-4929 parameters, L-BFGS reached the common deviance first in every cell with ≤ 50k rows and
# ≤ 9.9e7 rows × parameters (11 cells; near ties at 50k × 385 and 20k × 4929), Adam in the 4
# others (50k × 4929 = 2.5e8, and all three 100k-row cells: with many rows an Adam epoch makes
# many steps, and Adam got there 1.5-4× sooner). A network without hidden layers (a penalized
# GLM, convex) always gets L-BFGS: Adam's minibatch noise left such estimates 1-2 standard
# errors off at 60k rows.
LBFGS_MAX_ROWS = 50_000
LBFGS_MAX_WORK = 100_000_000
DEFAULT_EPOCHS = {"lbfgs": 1000, "adam": 200, "sgd": 200}
DEFAULT_TOL = {"lbfgs": 1e-5, "adam": 1e-4, "sgd": 1e-4}


def _bad(name: str, requirement: str, value) -> SpecificationError:
    return SpecificationError(f"The '{name}' parameter of fit must be {requirement}. Got {value!r} instead.")


def _real(name: str, value, low: float, high: float = float("inf"), *, low_closed: bool = True, high_closed: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(np.isfinite(value))
    if ok:
        ok = (value >= low if low_closed else value > low) and (value <= high if high_closed else value < high)
    if not ok:
        interval = f"{'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
        raise _bad(name, f"a float in the range {interval}", value)
    return float(value)


def _integer(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _bad(name, f"an int in the range [{low}, inf)", value)
    return int(value)


def _choose_solver(solver: str, arch: Architecture, n_obs: int, n_params: int, l2: float, early_stopping: bool) -> str:
    if solver != "auto":
        return solver
    if arch.n_hidden == 0 and l2 == 0.0 and not early_stopping:
        return "irls"
    if early_stopping:
        return "adam"
    if arch.n_hidden == 0:
        return "lbfgs"
    return "lbfgs" if n_obs <= LBFGS_MAX_ROWS and n_obs * n_params <= LBFGS_MAX_WORK else "adam"


def fit(
    formula: str,
    data,
    family: str | Family = "gaussian",
    link: str | Link | None = None,
    *,
    offset=None,
    exposure=None,
    weights=None,
    freq_weights=None,
    hidden: tuple[int, ...] = (),
    activation: str | Callable | tuple = "relu",
    solver: str = "auto",
    learning_rate: float | Callable[[int], float] = 1e-3,
    epochs: int | None = None,
    batch_size: int = 256,
    l2: float = 0.0,
    penalize_output: bool = True,
    momentum: float = 0.9,
    early_stopping: bool = False,
    validation_fraction: float = 0.1,
    patience: int = 10,
    tol: float | None = None,
    seed: int = 0,
    dtype: str = "float32",
    verbose: bool | None = None,
    dispersion: float | str | None = None,
    cov_type: str = "expected",
    missing: str = "raise",
    max_iter: int = 100,
    epsilon: float = 1e-8,
):
    """Fit a neural GLM: hidden layers in front of any family and link, by maximum likelihood.

    The model is :math:`g(\\mu) = \\eta = b + h_L(x)^\\top w + \\text{offset}` with learned
    features :math:`h_L` (the last hidden layer); ``hidden=()`` is the GLM itself.

    Parameters
    ----------
    formula, data, family, link, offset, exposure, weights, freq_weights, missing
        As :func:`neuralglm.glm`; every data check of the GLM applies.
    hidden : widths of the hidden layers, any depth; ``()`` fits a GLM.
    activation : ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"gelu"``, ``"softplus"``, ``"elu"``,
        ``"leaky_relu"``, ``"identity"``, any JAX-differentiable callable, or a list with one
        per hidden layer.
    solver : ``"auto"`` (IRLS for ``hidden=()`` without ``l2``, L-BFGS for ``hidden=()`` with
        it; with hidden layers, full-batch L-BFGS up to :data:`LBFGS_MAX_ROWS` rows and
        :data:`LBFGS_MAX_WORK` rows × parameters, where the benchmark found it faster, Adam
        beyond; Adam whenever ``early_stopping``), ``"irls"`` (``hidden=()`` only),
        ``"lbfgs"``, ``"adam"``, ``"sgd"`` (momentum).
    learning_rate : Adam/SGD step size, or a callable ``epoch -> step size``.
    epochs : maximum epochs (L-BFGS: iterations); default 200 (Adam/SGD), 1000 (L-BFGS).
    batch_size : rows per minibatch (Adam/SGD).
    l2 : weight decay on the weights (not the biases): the precision of a Gaussian prior
        ``N(0, 1/l2)``; for the Gaussian family, scikit-learn's ``alpha``.
    penalize_output : whether ``l2`` also applies to the output layer's weights (default
        ``True``, as scikit-learn's ``alpha``). ``False`` penalizes the hidden layers only, like
        a ``penalty.factor`` of 0 for the output layer in glmnet: the output layer is then the
        unpenalized GLM on the learned features, which :meth:`NetworkResult.output_glm`
        reproduces after a converged fit. Convergence can be slow: shrinking a hidden unit's
        weights while growing its output weight keeps a nearly linear unit's contribution and
        lowers the penalty, a direction along which the objective keeps creeping down.
    momentum : SGD momentum.
    early_stopping, validation_fraction, patience : hold out a random ``validation_fraction``
        of the rows, stop when their deviance has not improved for ``patience`` epochs, and
        restore the best weights (Adam/SGD).
    tol : L-BFGS: largest gradient component at convergence (default 1e-5); Adam/SGD:
        relative improvement that counts as progress (default 1e-4).
    seed : seeds the initial weights, the validation split and the minibatch order.
    dtype : ``"float32"`` (default) or ``"float64"`` training; reported statistics are
        always recomputed in float64.
    verbose : progress bar (``None``: only on a terminal, for fits longer than a second).
    dispersion, cov_type : as :func:`neuralglm.glm` (for ``hidden=()`` with IRLS, and for
        :meth:`NetworkResult.output_glm`).
    max_iter, epsilon : IRLS limits (``hidden=()`` with IRLS).

    Returns
    -------
    FitResult
        for ``hidden=()`` fitted by IRLS (exactly :func:`neuralglm.glm`);
    NetworkResult
        otherwise.

    Raises
    ------
    SpecificationError
        for an invalid hyper-parameter (the message names it, the allowed range and the value).
    DataError, DomainError, RankDeficientError
        as :func:`neuralglm.glm`.
    DivergenceError
        if the training loss becomes non-finite.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> glm = ng.fit("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> type(glm).__name__
    'FitResult'
    >>> net = ng.fit("claims ~ C(district) + group + age", df, family="poisson", exposure="holders",
    ...              hidden=(4,), activation="tanh", l2=1.0, solver="lbfgs", seed=4)
    >>> net.deviance < net.null_deviance
    True
    """
    arch = Architecture(hidden=hidden, activation=activation)
    if solver not in SOLVER_CHOICES:
        raise _bad("solver", f"a str among {{{', '.join(repr(s) for s in SOLVER_CHOICES)}}}", solver)
    if not callable(learning_rate):
        _real("learning_rate", learning_rate, 0.0, low_closed=False)
    if epochs is not None:
        _integer("epochs", epochs, 1)
    _integer("batch_size", batch_size, 1)
    _integer("patience", patience, 1)
    _integer("seed", seed, 0)
    l2 = _real("l2", l2, 0.0)
    momentum = _real("momentum", momentum, 0.0, 1.0)
    validation_fraction = _real("validation_fraction", validation_fraction, 0.0, 1.0, low_closed=False)
    if tol is not None:
        _real("tol", tol, 0.0, low_closed=False)
    if not isinstance(early_stopping, bool):
        raise _bad("early_stopping", "a bool", early_stopping)
    if not isinstance(penalize_output, bool):
        raise _bad("penalize_output", "a bool", penalize_output)
    check_cov_type(cov_type)  # used by output_glm(): refuse a bad one before training, not after
    try:
        dtype_name = np.dtype(dtype).name
    except TypeError:
        dtype_name = None
    if dtype_name not in DTYPES:
        raise _bad("dtype", "'float32' or 'float64'", dtype)
    if solver == "irls" and arch.n_hidden:
        raise SpecificationError(
            f"solver='irls' fits only models without hidden layers; got hidden={arch.hidden}. Use 'auto', 'lbfgs', 'adam' or 'sgd'."
        )
    if solver == "irls" and (l2 or early_stopping):
        raise SpecificationError(
            "solver='irls' fits the unpenalized GLM: it takes neither l2 nor early_stopping. Use solver='lbfgs' or 'adam'."
        )
    if solver == "lbfgs" and early_stopping:
        raise SpecificationError("early_stopping needs a minibatch solver ('adam' or 'sgd'); L-BFGS runs to convergence on the full batch.")

    family_obj = get_family(family)
    link_obj = get_link(link, family_obj)
    if arch.n_hidden == 0 and solver in ("auto", "irls") and l2 == 0.0 and not early_stopping:
        return api.glm(
            formula,
            data,
            family_obj,
            link_obj,
            offset=offset,
            exposure=exposure,
            weights=weights,
            freq_weights=freq_weights,
            dispersion=dispersion,
            cov_type=cov_type,
            missing=missing,
            max_iter=max_iter,
            epsilon=epsilon,
            progress=verbose,
        )

    design = make_design(
        formula, data, family_obj, offset=offset, exposure=exposure, weights=weights, freq_weights=freq_weights, missing=missing
    )
    scaling = fit_scaling(design.X, design.column_names)
    inputs = scaling.transform(design.X)
    has_bias = design.has_intercept
    chosen = _choose_solver(solver, arch, design.n_obs, arch.n_params(scaling.n_in, has_bias), l2, early_stopping)
    if early_stopping and math.ceil(validation_fraction * design.n_obs) >= design.n_obs:
        raise _bad(
            "validation_fraction",
            f"a fraction leaving at least one row for training and for validation (n_obs={design.n_obs})",
            validation_fraction,
        )
    control = GradientControl(
        solver=chosen,
        learning_rate=learning_rate,
        epochs=epochs if epochs is not None else DEFAULT_EPOCHS[chosen],
        batch_size=batch_size,
        l2=l2,
        penalize_output=penalize_output,
        momentum=momentum,
        early_stopping=early_stopping,
        validation_fraction=validation_fraction,
        patience=patience,
        tol=tol if tol is not None else DEFAULT_TOL[chosen],
    )
    # The output bias starts at the null model's intercept, so training starts at the null deviance.
    output_bias = intercept_only(design.y, design.total_weights, design.offset, family_obj, link_obj) if has_bias else None
    solution = fit_gradient(
        inputs,
        design.y,
        design.total_weights,
        design.offset,
        family_obj,
        link_obj,
        arch,
        control,
        output_bias=output_bias,
        seed=seed,
        dtype=DTYPES[dtype_name],
        progress=verbose,
    )
    return make_network_result(
        design,
        family_obj,
        link_obj,
        arch,
        scaling,
        solution,
        control,
        seed=seed,
        dtype=dtype_name,
        dispersion=dispersion,
        cov_type=cov_type,
        inputs=inputs,
    )


__all__ = ["fit"]
