"""The user-facing entry points; they only wire the stages together (no maths here)."""

from __future__ import annotations

import dataclasses

from neuralglm.data.design import Design, design_from_arrays, make_design
from neuralglm.errors import SpecificationError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.family.registry import get_family, get_link, is_multinomial
from neuralglm.fit.family_parameter import fit_estimating_parameter
from neuralglm.fit.irls import IRLSControl, fit_irls
from neuralglm.options import document, validate
from neuralglm.results.call import FitCall
from neuralglm.results.multinomial import MultinomialResult, multinomial_glm, refuse_dispersion_settings
from neuralglm.results.result import FitResult, make_result


@document(["dispersion", "cov_type", "max_iter", "epsilon", "progress"])
def glm(
    formula: str,
    data,
    family: str | Family = "gaussian",
    link: str | Link | None = None,
    *,
    offset=None,
    exposure=None,
    weights=None,
    freq_weights=None,
    dispersion: float | str | None = None,
    cov_type: str = "expected",
    missing: str = "raise",
    max_iter: int = 100,
    epsilon: float = 1e-8,
    progress: bool | None = None,
) -> FitResult | MultinomialResult:
    """Fit a generalized linear model by maximum likelihood, as R's ``glm()``.

    Parameters
    ----------
    formula : R-style formula, e.g. ``"claims ~ age + C(region)"``; ``"cbind(s, f) ~ x"`` for
        binomial counts. Parsed by formulaic.
    data : pandas (or polars) DataFrame; or data larger than memory: a Parquet file, a folder of
        Parquet files or a ``pyarrow.dataset.Dataset`` (read in row batches), or a Dask DataFrame
        (each pass mapped over its partitions on the active ``dask.distributed`` client). Those
        give the in-memory fit's numbers, with offsets and weights named as columns; see
        :mod:`neuralglm.results.streamed`.
    family : ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"gamma"``, ``"inverse_gaussian"``,
        ``"negative_binomial"`` (θ estimated, as ``MASS::glm.nb``; ``fit.family_params`` holds
        θ̂ and R's ``SE.theta``), ``"negative_binomial(alpha)"`` (α = 1/θ fixed),
        ``"tweedie(power)"``, ``"tweedie(estimate)"`` (the power estimated in (1, 2) by profile
        likelihood), or a Family object.
    link : link name or object; ``None`` uses the family's default (canonical) link.
    offset, exposure : array or column name; ``exposure=e`` means ``offset=log(e)``.
    weights : prior weights (R's ``weights``; binomial: number of trials).
    freq_weights : frequency weights: row i counts as ``freq_weights[i]`` identical rows.
    missing : ``"raise"`` on NaN/inf in used columns, or ``"drop"`` those rows with a warning.
    [hyper-parameters: generated from neuralglm.options.PARAMETERS]

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import numpy as np, neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> fit.info.converged
    True
    >>> round(fit.deviance, 2) < round(fit.null_deviance, 2)
    True
    """
    scope = locals()  # the arguments, recorded for refit() before any other name exists here
    settings = _settings("glm", dispersion, cov_type, max_iter, epsilon, progress)
    if is_multinomial(family):
        return _multinomial(scope)
    family_obj = get_family(family)
    link_obj = get_link(link, family_obj)
    from neuralglm.results.streamed import fit_streamed, streamed_source

    if (source := streamed_source(data)) is not None:  # Parquet or Dask: passes over batches of rows
        arguments = {"offset": offset, "exposure": exposure, "weights": weights, "freq_weights": freq_weights, "missing": missing}
        return record_call(fit_streamed(source, formula, family_obj, link_obj, arguments, settings), glm, scope, "data")
    design = make_design(
        formula, data, family_obj, offset=offset, exposure=exposure, weights=weights, freq_weights=freq_weights, missing=missing
    )
    return record_call(_fit_design(design, family_obj, link_obj, settings), glm, scope, "data")


def glm_fit(
    X,
    y,
    family: str | Family = "gaussian",
    link: str | Link | None = None,
    *,
    column_names=None,
    offset=None,
    weights=None,
    freq_weights=None,
    dispersion: float | str | None = None,
    cov_type: str = "expected",
    max_iter: int = 100,
    epsilon: float = 1e-8,
    progress: bool | None = None,
) -> FitResult:
    """Fit a GLM to a ready design matrix, as R's ``glm.fit(x, y)`` (no formula; include an intercept column yourself).

    Examples
    --------
    >>> import numpy as np, neuralglm as ng
    >>> X = np.column_stack([np.ones(50), np.linspace(0, 1, 50)])
    >>> y = 1.0 + 2.0 * X[:, 1] + np.sin(np.arange(50))
    >>> fit = ng.glm_fit(X, y, column_names=["Intercept", "x"])
    >>> list(fit.coef.index)
    ['Intercept', 'x']
    """
    scope = locals()  # the arguments, recorded for refit() before any other name exists here
    settings = _settings("glm_fit", dispersion, cov_type, max_iter, epsilon, progress)
    family_obj = get_family(family)
    link_obj = get_link(link, family_obj)
    design = design_from_arrays(
        X, y, column_names=column_names, weights=weights, freq_weights=freq_weights, offset=offset, family=family_obj
    )
    return record_call(_fit_design(design, family_obj, link_obj, settings), glm_fit, scope, "X")


def record_call(result, function, scope: dict, data_name: str):
    """``result`` with the call that made it (R's ``fit$call``), which ``refit`` replays."""
    arguments = {name: value for name, value in scope.items() if name != data_name}
    return dataclasses.replace(result, call=FitCall.record(function, scope[data_name], arguments))


def _multinomial(scope: dict):
    """``family="multinomial"``: nnet::multinom's baseline-category logit (its own solver and result)."""
    if scope["link"] not in (None, "logit"):
        raise SpecificationError(f"family='multinomial' has the logit link only; got link={scope['link']!r}.")
    refuse_dispersion_settings(scope["dispersion"], scope["cov_type"])
    names = ("offset", "exposure", "weights", "freq_weights", "missing", "max_iter", "epsilon")
    result = multinomial_glm(scope["formula"], scope["data"], **{name: scope[name] for name in names})
    return record_call(result, glm, scope, "data")


def _settings(caller: str, dispersion, cov_type, max_iter, epsilon, progress) -> dict:
    """The shared options checked against :data:`neuralglm.options.PARAMETERS` before any work is done."""
    return validate(
        caller, {"dispersion": dispersion, "cov_type": cov_type, "max_iter": max_iter, "epsilon": epsilon, "progress": progress}
    )


def _fit_design(design: Design, family: Family, link: Link, settings: dict) -> FitResult:
    control = IRLSControl(epsilon=settings["epsilon"], max_iter=settings["max_iter"])
    arguments = {"column_names": design.column_names, "control": control, "progress": settings["progress"]}
    data = (design.X, design.y, design.total_weights, design.offset)
    estimate = None
    if family.estimates_parameter:
        # The family's parameter too (θ of the negative binomial, a Tweedie power); the result holds the
        # family at its estimate, so predict, residuals and tests use it, and family_params the estimate.
        loglik_weights = (design.weights, design.freq_weights)
        solution, family, estimate = fit_estimating_parameter(*data, family, link, **arguments, loglik_weights=loglik_weights)
    else:
        solution = fit_irls(*data, family, link, **arguments)
    return make_result(
        design, family, link, solution, dispersion=settings["dispersion"], cov_type=settings["cov_type"], family_params=estimate
    )


__all__ = ["glm", "glm_fit"]
