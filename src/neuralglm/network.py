"""``ng.fit``: a GLM with learned features in front, fitted by maximum (penalized) likelihood.

This module only wires the stages: validation of the hyper-parameters, the design
(:func:`neuralglm.data.design.make_design`, so every data error of the GLM core applies),
input scaling (:mod:`neuralglm.model.inputs`), training (:mod:`neuralglm.fit.gradient`) and
the result (:mod:`neuralglm.results.network`). With ``hidden=()`` and ``solver="auto"`` or
``"irls"`` it *is* :func:`neuralglm.glm`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from neuralglm import api, network_nested
from neuralglm.data.design import Design, make_design
from neuralglm.errors import SpecificationError
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.null_model import intercept_only
from neuralglm.family.registry import get_family, get_link, is_multinomial
from neuralglm.fit.gradient import GradientControl, fit_gradient
from neuralglm.fit.guardrails import check_sample_size
from neuralglm.fit.multinomial_network import n_network_params
from neuralglm.fit.network_parameter import check_estimable_in_network, fit_network_estimating_parameter
from neuralglm.model.architecture import Architecture
from neuralglm.model.inputs import fit_scaling
from neuralglm.options import PARAMETERS, check_fit_combinations, document, validate
from neuralglm.results.multinomial import multinomial_design, refuse_dispersion_settings
from neuralglm.results.multinomial_network import fit_multinomial_network
from neuralglm.results.network import make_network_result

DTYPES = {"float32": jnp.float32, "float64": jnp.float64}
# solver="auto" trains with full-batch L-BFGS up to LBFGS_MAX_ROWS rows and LBFGS_MAX_WORK
# rows × parameters, Adam beyond. Measured (`python -m benchmarks.network_bench --part auto`,
# benchmarks/README.md, 2026-12-03, L-BFGS on one flat vector): on a grid of 2k-100k rows ×
# 97-4929 parameters, L-BFGS reached the common deviance first in every cell with ≤ 50k rows and
# ≤ 9.9e7 rows × parameters (11 cells; near ties at 50k × 385 and 20k × 4929), Adam in the 4
# others (50k × 4929 = 2.5e8, and all three 100k-row cells: with many rows an Adam epoch makes
# many steps, and Adam got there 1.5-4× sooner). A network without hidden layers (a penalized
# GLM, convex) always gets L-BFGS: Adam's minibatch noise left such estimates 1-2 standard
# errors off at 60k rows. The row limit was then raised from 50k for generalization, not speed
# (`python -m benchmarks.defaults --sizes 100000`, benchmarks/README.md "Defaults"): at 100k rows,
# hidden (16,), l2="auto", L-BFGS to the penalized optimum closed 86-88 % of the threshold truths'
# gap against Adam with early stopping's 74-81 %, and its excess over the GLM on linear truths
# was 0.08-0.40 ‰ against 0.72-2.09 ‰, in 2-7× Adam's time. Beyond 100k rows this is not
# measured; LBFGS_MAX_WORK bounds an iteration's cost.
LBFGS_MAX_ROWS = 1_000_000
LBFGS_MAX_WORK = 100_000_000
DEFAULT_EPOCHS = {"lbfgs": 1000, "adam": 200, "sgd": 200}
# l2="auto" with hidden layers: DEFAULT_L2 × √φ₀ (see default_l2). Measured on the grid of
# `python -m benchmarks.defaults` (benchmarks/README.md, "Defaults", 2026-12-03; hidden (16,)):
# of 1, 3, 10, 30 and 100, 10 closed the most of the GLM-to-truth gap at 2k rows (tanh: median
# 91 %, ReLU: 81 %; unpenalized ReLU 67 %, one cell −113 %) and kept 99 % at 20k rows; 3 and
# 30 left linear truths or nonlinear ones worse, 100 underfits.
DEFAULT_L2 = 10.0
DEFAULT_TOL = {"lbfgs": 1e-5, "adam": 1e-4, "sgd": 1e-4}
MINIBATCH_SOLVERS = ("adam", "sgd")


def default_l2(phi0: float) -> float:
    """``l2="auto"`` for a network: :data:`DEFAULT_L2` × √φ₀, φ₀ the null model's Pearson dispersion (:func:`null_dispersion`).

    Why the square root: if the response is measured in other units (y → c·y, Gaussian family),
    the deviance scales by c², the output weights by c and the hidden weights not at all; with
    ReLU units (positively homogeneous) the penalized fit in the new units is the old one
    rescaled exactly when l2 scales by c (moving a factor √c from the output to the hidden
    layer balances the two penalties). φ₀ scales by c², so √φ₀ does it. tanh units are
    homogeneous only in their linear range, so for them this is the compromise between the
    hidden layer's c² and the output layer's 1 (measured: benchmarks/README.md, "Defaults").
    For families with a fixed dispersion (binomial, Poisson) φ₀ is 1; for the Gamma family it
    is unit-free.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from neuralglm.data.design import make_design
    >>> from neuralglm.family.registry import get_family, get_link, is_multinomial
    >>> df = pd.DataFrame({"x": np.arange(6.0), "y": [1.0, 3.0, 2.0, 5.0, 4.0, 6.0]})
    >>> gaussian = get_family("gaussian")
    >>> design = make_design("y ~ x", df, gaussian)
    >>> round(default_l2(null_dispersion(design, gaussian, get_link(None, gaussian))), 3)  # 10 × √var(y) = 10 × √3.5
    18.708
    """
    return DEFAULT_L2 * math.sqrt(phi0)


def null_dispersion(design: Design, family: Family, link: Link) -> float:
    """φ₀: the intercept-only model's Pearson dispersion (the family's own for a fixed dispersion; 1 when undefined).

    The scale of the response in the family's units: the mean deviance of a fit, and so the
    gradient of the training objective, scale with it (by c² when a Gaussian y is measured as c·y).
    """
    if family.fixed_dispersion is not None:
        return float(family.fixed_dispersion)
    # The null model: the intercept-only fit (or the offset alone, for a model without intercept).
    intercept = intercept_only(design.y, design.total_weights, design.offset, family, link) if design.has_intercept else 0.0
    eta = design.offset + intercept
    with jax.enable_x64(True):
        mu = link.inverse(jnp.asarray(eta, dtype=jnp.float64))
        chi2 = float(derived.pearson_chi2(family, jnp.asarray(design.y), mu, jnp.asarray(design.total_weights)))
    n_rows = design.n_obs if design.freq_weights is None else float(np.sum(design.freq_weights))
    phi0 = chi2 / max(n_rows - 1.0, 1.0)
    return phi0 if math.isfinite(phi0) and phi0 > 0.0 else 1.0


def _choose_solver(solver: str, arch: Architecture, n_obs: int, n_params: int, l2: float, early_stopping: bool | None) -> str:
    if solver != "auto":
        return solver
    if arch.n_hidden == 0 and l2 == 0.0 and not early_stopping:
        return "irls"
    if early_stopping:
        return "adam"
    if arch.n_hidden == 0:
        return "lbfgs"
    return "lbfgs" if n_obs <= LBFGS_MAX_ROWS and n_obs * n_params <= LBFGS_MAX_WORK else "adam"


@document(list(PARAMETERS))
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
    hidden: int | tuple[int, ...] = (),
    activation: str | Callable | tuple = "tanh",
    solver: str = "auto",
    learning_rate: float | Callable[[int], float] = 1e-3,
    epochs: int | None = None,
    batch_size: int = 256,
    l2: float | str = "auto",
    penalize_output: bool = True,
    momentum: float = 0.9,
    early_stopping: bool | None = None,
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
    architecture: str = "network",
    cann_fixed: bool = False,
    embed: dict | str | None = None,
):
    """Fit a neural GLM: hidden layers in front of any family and link, by maximum likelihood.

    The model is :math:`g(\\mu) = \\eta = b + h_L(x)^\\top w + \\text{offset}` with learned
    features :math:`h_L` (the last hidden layer); ``hidden=()`` is the GLM itself.

    Parameters
    ----------
    formula, data, offset, exposure, weights, freq_weights, missing
        The data, as :func:`neuralglm.glm`; every data check of the GLM applies.
    [hyper-parameters: generated from neuralglm.options.PARAMETERS]

    Returns
    -------
    FitResult
        for ``hidden=()`` fitted by IRLS (exactly :func:`neuralglm.glm`);
    NetworkResult
        otherwise.
    MultinomialResult, MultinomialNetworkResult
        for ``family="multinomial"`` (R's ``nnet::multinom``; a softmax output of K−1 logits
        against the first level): the multinomial GLM without hidden layers (as
        :func:`neuralglm.glm`), else a network; no offset, logit link only.

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
    scope = locals()  # the arguments, read before any other name exists in this function
    settings = validate("fit", {name: scope[name] for name in PARAMETERS})
    check_fit_combinations(settings)
    arch = Architecture(hidden=settings["hidden"], activation=settings["activation"])
    if settings["l2"] == "auto" and arch.n_hidden == 0:
        settings["l2"] = 0.0  # without hidden layers 'auto' is the unpenalized GLM
    data_arguments = {"offset": offset, "exposure": exposure, "weights": weights, "freq_weights": freq_weights, "missing": missing}
    if is_multinomial(settings["family"]):
        if settings["architecture"] != "network" or settings["embed"] is not None or settings["cann_fixed"]:
            raise SpecificationError(
                f"family='multinomial' trains a plain network (softmax output); architecture={settings['architecture']!r}, "
                "embed and cann_fixed are not available for it yet. Use architecture='network' without embed."
            )
        return api.record_call(_multinomial(formula, data, arch, settings, data_arguments), fit, scope, "data")
    family_obj = get_family(settings["family"])
    link_obj = get_link(settings["link"], family_obj)
    network_nested.check_architecture(settings, family_obj)
    if arch.n_hidden == 0 and settings["solver"] in ("auto", "irls") and settings["l2"] == 0.0 and not settings["early_stopping"]:
        glm_settings = {name: settings[name] for name in ("dispersion", "cov_type", "max_iter", "epsilon")}
        result = api.glm(formula, data, family_obj, link_obj, **data_arguments, **glm_settings, progress=settings["verbose"])
    else:
        design = make_design(formula, data, family_obj, **data_arguments)
        result = _train(design, family_obj, link_obj, arch, settings)
    return api.record_call(result, fit, scope, "data")


def _train(design: Design, family: Family, link: Link, arch: Architecture, settings: dict):
    """Scale the inputs, pick the solver, train from the null model (or the GLM: CANN, LocalGLMnet) and make the result."""
    scaling = fit_scaling(design.X, design.column_names)
    inputs = scaling.transform(design.X)
    arch, start = network_nested.prepare(design, scaling, arch, settings, family, link)
    has_bias = design.has_intercept
    if family.estimates_parameter:
        check_estimable_in_network(family)  # before default_l2, which needs the family's parameter
    # φ₀ (an intercept-only fit) once, for the default penalty and the default tolerance alike.
    phi0 = null_dispersion(design, family, link) if settings["l2"] == "auto" or settings["tol"] is None else 1.0
    if settings["l2"] == "auto":
        settings = {**settings, "l2": default_l2(phi0)}
    check_sample_size(design, arch.n_params(scaling.n_in, has_bias), arch.n_hidden, settings["l2"])  # warns when k ≥ n
    control = _gradient_control(settings, arch, design.n_obs, arch.n_params(scaling.n_in, has_bias), response_scale=phi0)
    seed, dtype = settings["seed"], settings["dtype"]
    data = (inputs, design.y, design.total_weights, design.offset)
    training = {"seed": seed, "dtype": DTYPES[dtype], "progress": settings["verbose"]}
    estimate = None
    if family.estimates_parameter:  # θ of "negative_binomial", trained jointly with the weights
        solution, family, estimate = fit_network_estimating_parameter(*data, family, link, arch, control, has_bias=has_bias, **training)
    else:
        # The output bias starts at the null model's intercept, so training starts at the null deviance.
        output_bias = intercept_only(design.y, design.total_weights, design.offset, family, link) if has_bias else None
        solution = fit_gradient(
            *data, family, link, arch, control, output_bias=output_bias, column_names=scaling.names, start=start, **training
        )
    return make_network_result(
        design,
        family,
        link,
        arch,
        scaling,
        solution,
        control,
        seed=seed,
        dtype=dtype,
        dispersion=settings["dispersion"],
        cov_type=settings["cov_type"],
        inputs=inputs,
        family_params=estimate,
    )


def _gradient_control(settings: dict, arch: Architecture, n_obs: int, n_params: int, response_scale: float = 1.0) -> GradientControl:
    """The solver (``"auto"``: chosen by size) and its options, with their defaults filled in.

    L-BFGS's default gradient tolerance is relative to ``response_scale`` (φ₀) when that is below
    1: the objective's gradient shrinks with the response's units (by c² for a Gaussian c·y), so
    an absolute tolerance let a fit of y·0.01 report convergence at the GLM's deviance, long before
    the network had learned anything (measured). It is never looser than the absolute default,
    so no fit stops earlier than it did.
    """
    solver = _choose_solver(settings["solver"], arch, n_obs, n_params, settings["l2"], settings["early_stopping"])
    if settings["early_stopping"] is None:
        # Adam chosen for many rows: the held-out deviance says when to stop (its training deviance is noisy).
        settings = {**settings, "early_stopping": settings["solver"] == "auto" and solver in MINIBATCH_SOLVERS}
    fraction = settings["validation_fraction"]
    if settings["early_stopping"] and math.ceil(fraction * n_obs) >= n_obs:
        raise SpecificationError(
            f"The 'validation_fraction' parameter of fit must be a fraction leaving at least one row for training and for "
            f"validation (n_obs={n_obs}). Got {fraction!r} instead."
        )
    return GradientControl(
        solver=solver,
        epochs=settings["epochs"] if settings["epochs"] is not None else DEFAULT_EPOCHS[solver],
        tol=settings["tol"]
        if settings["tol"] is not None
        else DEFAULT_TOL[solver] * (min(1.0, response_scale) if solver == "lbfgs" else 1.0),
        **{name: settings[name] for name in _CONTROL_SETTINGS},
    )


def _multinomial(formula: str, data, arch: Architecture, settings: dict, data_arguments: dict):
    """``family="multinomial"``: without hidden layers or penalty nnet::multinom's model (``ng.glm``), else a softmax network."""
    if settings["link"] not in (None, "logit"):
        raise SpecificationError(f"family='multinomial' has the logit link only; got link={settings['link']!r}.")
    refuse_dispersion_settings(settings["dispersion"], settings["cov_type"])
    if arch.n_hidden == 0 and settings["solver"] in ("auto", "irls") and settings["l2"] == 0.0 and not settings["early_stopping"]:
        limits = {name: settings[name] for name in ("max_iter", "epsilon")}
        return api.glm(formula, data, "multinomial", **data_arguments, **limits, progress=settings["verbose"])
    design, levels, response = multinomial_design(formula, data, **data_arguments)
    if settings["l2"] == "auto":
        settings = {**settings, "l2": DEFAULT_L2}  # the dispersion is 1, as the binomial's (default_l2)
    n_in = sum(name != "Intercept" for name in design.column_names)
    n_params = n_network_params(arch, n_in, design.has_intercept, len(levels))
    check_sample_size(design, n_params, arch.n_hidden, settings["l2"])  # warns when k ≥ n
    control = _gradient_control(settings, arch, design.n_obs, n_params)
    options = {"seed": settings["seed"], "dtype": settings["dtype"], "progress": settings["verbose"]}
    return fit_multinomial_network(design, levels, response, arch, control, **options)


_CONTROL_SETTINGS = (
    "learning_rate",
    "batch_size",
    "l2",
    "penalize_output",
    "momentum",
    "early_stopping",
    "validation_fraction",
    "patience",
)


__all__ = ["fit"]
