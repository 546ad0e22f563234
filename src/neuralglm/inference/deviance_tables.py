"""Analysis of deviance by term: R's sequential ``anova(fit)``, ``drop1`` and ``add1`` for GLMs.

Each table refits sub- or super-models by IRLS on columns of a design matrix, with the fit's
response, weights, offset, family and link, as R's ``anova.glm``, ``drop1.glm`` and
``add1.glm`` call ``glm.fit`` (the same stopping rule: the fit's ``epsilon`` and ``max_iter``).
The statistics are R's, formula for formula, including the places where R is particular:
``drop1``/``add1`` compute each model's AIC from its deviance scaled by the *full* model's
dispersion (``n·log(D/n)`` for the Gaussian) and shift the column so that the ``<none>`` row is
the model's own AIC; their F test uses the deviance-based mean square, not Pearson's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from neuralglm.data.design import make_design
from neuralglm.errors import DataError, SpecificationError, warn
from neuralglm.family import null_model
from neuralglm.fit.irls import IRLSControl, fit_irls
from neuralglm.inference import terms as term_tools
from neuralglm.inference.terms import Term

TESTS = ("Chisq", "F")


def not_a_glm_error(fit, what: str) -> SpecificationError:
    """Why ``what`` refuses ``fit``: a network's parameters are not identifiable; multinomial tables do not exist yet."""
    if getattr(fit, "kind", None) == "multinomial":
        return SpecificationError(
            f"{what} works on GLMs of one response (ng.glm); tables by term are not available for multinomial fits yet. "
            "Compare two nested multinomial fits by their deviances: the difference is the likelihood-ratio statistic."
        )
    return SpecificationError(
        f"{what} works on GLMs (ng.glm). A network's parameters are not identifiable, so the χ²/F reference "
        "distribution does not hold: compare networks by held-out deviance (ng.heldout_deviance)."
    )


def check_glm(fit, what: str) -> None:
    """Refuse networks (no χ²/F theory for unidentifiable parameters), multinomial fits and fits without their data."""
    if getattr(fit, "kind", None) != "glm":
        raise not_a_glm_error(fit, what)
    fit.require_data(what)


def resolve_test(fit, test: str | None, what: str) -> str:
    """``"Chisq"`` or ``"F"``; ``None`` picks χ² for a known dispersion and F for an estimated one (R ≥ 4.4's default)."""
    if test is None:
        return "Chisq" if fit.dispersion_method == "fixed" else "F"
    test = "Chisq" if test == "LRT" else test
    if test not in TESTS:
        raise SpecificationError(f"The 'test' parameter of {what} must be 'Chisq' (or 'LRT'), 'F' or None. Got {test!r} instead.")
    if test == "F" and fit.dispersion_method == "fixed":
        warn(
            f"An F test estimates the dispersion, which the {fit.family} family fixes at 1 (R: 'F test assumes the quasi "
            "family'); use test='Chisq', or the quasi family if the data are overdispersed.",
            UserWarning,
        )
    return test


def _control(fit) -> IRLSControl:
    arguments = fit.call.arguments if fit.call is not None else {}
    return IRLSControl(epsilon=arguments.get("epsilon", 1e-8), max_iter=arguments.get("max_iter", 100))


def submodel(fit, design, columns) -> tuple[float, int]:
    """(deviance, rank) of the GLM on ``columns`` of ``design.X`` with the fit's family, link, weights and offset."""
    columns = sorted(columns)
    weights = design.total_weights
    if not columns:  # the empty model: the mean is g⁻¹(offset)
        mu = np.asarray(fit.link.inverse(design.offset), dtype=np.float64)
        return float(null_model.deviance(fit.family, design.y, mu, weights)), 0
    X = np.ascontiguousarray(design.X[:, columns])
    names = tuple(design.column_names[j] for j in columns)
    solution = fit_irls(
        X, design.y, weights, design.offset, fit.family, fit.link, column_names=names, control=_control(fit), progress=False
    )
    return float(null_model.deviance(fit.family, design.y, np.asarray(solution.mu), weights)), len(columns)


def _label(test: str) -> str:
    return "F" if test == "F" else "Chisq"


def sequential_anova(fit, test: str | None = None) -> pd.DataFrame:
    """R's ``anova(fit)``: terms added one at a time, in formula order (see :func:`neuralglm.anova`)."""
    check_glm(fit, "anova(fit)")
    test = resolve_test(fit, test, "anova")
    intercept, model = term_tools.model_terms(fit)
    df_resid, deviance = [fit.df_null], [fit.null_deviance]
    columns = list(intercept)
    for term in model[:-1]:
        columns += term.columns
        dev, rank = submodel(fit, fit.design, columns)
        df_resid.append(fit.n_obs - rank)
        deviance.append(dev)
    if model:
        df_resid.append(fit.df_resid)
        deviance.append(fit.deviance)
    df = np.r_[np.nan, -np.diff(df_resid)]
    change = np.r_[np.nan, np.maximum(0.0, -np.diff(deviance))]
    # R's anova.glm: an estimated (Pearson) dispersion has df_resid degrees of freedom; a fixed
    # or given one is known (infinite df), so F·df is χ²(df).
    df_scale = fit.df_resid if fit.dispersion_method == "pearson" else math.inf
    statistic, p_value = _tests(test, change, df, fit.dispersion, df_scale)
    table = pd.DataFrame(
        {"df": df, "deviance_change": change, "df_resid": df_resid, "deviance": deviance, "statistic": statistic, "p_value": p_value},
        index=pd.Index(["NULL", *(term.label for term in model)]),
    )
    table.attrs.update(test=test, dispersion=float(fit.dispersion))
    return table


def _tests(test: str, change, df, scale: float, df_scale: float):
    with np.errstate(invalid="ignore", divide="ignore"):
        if test == "F":
            statistic = np.where(df == 0, np.nan, change / df / scale)
            if math.isinf(df_scale):
                p_value = stats.chi2.sf(statistic * df, df)
            else:
                p_value = stats.f.sf(statistic, df, df_scale)
        else:
            statistic = np.where(df == 0, np.nan, change / scale)
            p_value = stats.chi2.sf(statistic, df)
    return statistic, p_value


def _profile_loglik(fit, deviance: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """R's ``loglik`` of drop1/add1 (−2 log L up to a constant) and the dispersion it used."""
    dispersion = scale if scale > 0 else fit.dispersion
    if fit.family.loglik_dispersion == "mle_n":  # the Gaussian: its dispersion is profiled out
        n = fit.n_obs
        return (deviance / scale - n if scale > 0 else n * np.log(deviance / n)), dispersion
    return deviance / dispersion, dispersion


def extract_aic(fit, k: float) -> float:
    """R's ``extractAIC(fit, k)``: the fit's AIC with ``k`` per coefficient instead of 2.

    An estimated family parameter (the negative binomial's θ) is not counted, as MASS's
    ``extractAIC.negbin`` does not count it (``AIC(fit)`` does): drop1 and step tables of
    ``glm.nb`` fits are 2 below ``AIC(fit)``.
    """
    estimated = len(getattr(fit, "family_params", ()))
    return float(fit.aic - 2.0 * estimated + (k - 2.0) * (fit.n_obs - fit.df_resid))


def _check_scale_k(scale, k) -> tuple[float, float]:
    for name, value, low in (("scale", scale, 0.0), ("k", k, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (low <= value < math.inf):
            raise SpecificationError(f"The '{name}' parameter must be a float in the range [0, inf). Got {value!r} instead.")
    return float(scale), float(k)


def drop1_table(fit, scope: list[Term], *, scale: float = 0.0, k: float = 2.0, test: str = "Chisq") -> pd.DataFrame:
    """The drop1 table for the given droppable terms (no checks: :func:`drop1` and ``ng.step`` call it)."""
    _, model = term_tools.model_terms(fit)
    all_columns = set(range(fit.design.n_coef))
    dropped = [all_columns - set(term_tools.find(term, model).columns) for term in scope]  # pyright: ignore[reportOptionalMemberAccess]
    deviance_arr, rank_arr, loglik, aic, dispersion = _submodel_scores(fit, fit.design, dropped, scale, k, (fit.deviance, fit.rank))
    df = np.r_[np.nan, rank_arr[0] - rank_arr[1:]]
    if test == "F":
        rms = deviance_arr[0] / fit.df_resid
        with np.errstate(invalid="ignore", divide="ignore"):
            statistic = np.where(df < 1e-4, np.nan, np.maximum(0.0, deviance_arr - deviance_arr[0]) / df / rms)
        p_value = stats.f.sf(statistic, df, fit.df_resid)
    else:
        statistic = np.r_[np.nan, np.maximum(0.0, loglik[1:] - loglik[0])]
        p_value = stats.chi2.sf(statistic, df)
    return _table(["<none>", *(term.label for term in scope)], df, deviance_arr, aic, statistic, p_value, test, dispersion, k)


def add1_table(fit, scope: list[Term], *, scale: float = 0.0, k: float = 2.0, test: str = "Chisq") -> pd.DataFrame:
    """The add1 table for the given addable terms (no checks: :func:`add1` and ``ng.step`` call it)."""
    design, old_columns, new_columns = _augmented_design(fit, scope)
    column_sets = [old_columns, *(old_columns | extra for extra in new_columns)]
    deviance_arr, rank_arr, loglik, aic, dispersion = _submodel_scores(fit, design, column_sets, scale, k)
    df = np.r_[np.nan, rank_arr[1:] - rank_arr[0]]
    if test == "F":
        rdf = fit.df_resid
        with np.errstate(invalid="ignore", divide="ignore"):
            gain = np.maximum(0.0, (deviance_arr[0] - deviance_arr) / df)
            statistic = np.where(df < np.finfo(float).eps, np.nan, gain / (deviance_arr / (rdf - df)))
        p_value = stats.f.sf(statistic, df, rdf - df)
    else:
        statistic = np.r_[np.nan, np.maximum(0.0, loglik[0] - loglik[1:])]
        p_value = stats.chi2.sf(statistic, df)
    return _table(["<none>", *(term.label for term in scope)], df, deviance_arr, aic, statistic, p_value, test, dispersion, k)


def _submodel_scores(fit, design, column_sets, scale: float, k: float, first=None):
    """Deviance, rank, R's loglik and AIC of the sub-models on ``column_sets`` (after ``first``, a known (deviance, rank)).

    The AIC is shifted so that the first row is ``extractAIC(fit, k)``, as R's drop1/add1 report it.
    """
    scores = ([first] if first is not None else []) + [submodel(fit, design, columns) for columns in column_sets]
    deviance = np.asarray([dev for dev, _ in scores], dtype=float)
    rank = np.asarray([r for _, r in scores], dtype=float)
    loglik, dispersion = _profile_loglik(fit, deviance, scale)
    aic = loglik + k * rank
    return deviance, rank, loglik, aic + (extract_aic(fit, k) - aic[0]), dispersion


def _table(index, df, deviance, aic, statistic, p_value, test, dispersion, k) -> pd.DataFrame:
    table = pd.DataFrame({"df": df, "deviance": deviance, "aic": aic, "statistic": statistic, "p_value": p_value}, index=pd.Index(index))
    table.loc["<none>", ["statistic", "p_value"]] = np.nan
    table.attrs.update(test=test, dispersion=float(dispersion), k=float(k))
    return table


def _augmented_design(fit, scope: list[Term]):
    """The design of the model with every scope term added (R's add1: one model matrix for all), and its column sets."""
    call = fit.call
    if call is None or call.name != "glm":
        raise SpecificationError(
            "add1() builds the larger models from the data of the call that made the fit; this fit has none "
            "(a model loaded from a file, or a fit to a matrix). Fit it with ng.glm(formula, data, ...) first."
        )
    _, model = term_tools.model_terms(fit)
    formula = term_tools.formula_with(fit, [term.label for term in model] + [term.label for term in scope])
    arguments = call.arguments
    design = make_design(
        formula,
        call.data,
        fit.family,
        **{name: arguments.get(name) for name in ("offset", "exposure", "weights", "freq_weights")},
        missing=arguments.get("missing", "raise"),
    )
    if design.n_obs != fit.design.n_obs or not np.array_equal(design.row_labels, fit.design.row_labels):
        raise DataError(
            f"The larger model {formula!r} uses other rows than the fit (missing values in the added columns?); "
            "drop those rows from the data before fitting, as R's add1 would be comparing different data."
        )
    intercept, big = term_tools.model_terms(_DesignView(fit, design))
    old = set(intercept)
    for term in model:
        old |= set(term_tools.find(term, big).columns)  # pyright: ignore[reportOptionalMemberAccess]
    return design, old, [set(term_tools.find(term, big).columns) for term in scope]  # pyright: ignore[reportOptionalMemberAccess]


class _DesignView:
    """Just enough of a fit for :func:`terms.model_terms` to read another design's terms."""

    def __init__(self, fit, design):
        self.design = design


def drop1(fit, scope=None, test: str | None = None, *, scale: float = 0.0, k: float = 2.0) -> pd.DataFrame:
    """R's ``drop1(fit, test=)``: the model without each term that may be dropped, one at a time.

    Rows ``<none>`` (the model) and each droppable term: by default those not contained in
    another term of the model (R's ``drop.scope``: with ``a*b``, only ``a:b``); ``scope`` (a
    formula ``"~ a + b"`` or a list of term labels) names others. Columns: ``df`` (coefficients
    removed), ``deviance``, ``aic`` (R's: each model's deviance scaled by this model's
    dispersion, or ``n·log(D/n)`` for the Gaussian, plus ``k`` per coefficient, shifted so that
    ``<none>`` is ``AIC(fit)``; NaN for quasi families), ``statistic`` and ``p_value``.

    ``test``: ``"Chisq"`` (R's ``"LRT"``: the scaled deviance change against χ²), ``"F"``
    (R's: deviance change per df over the model's deviance per residual df, against F), or
    ``None``: χ² when the dispersion is known, F when it is estimated. ``scale > 0`` fixes the
    dispersion as R's ``scale=``; ``k`` is the AIC's penalty per coefficient.

    Examples
    --------
    >>> import numpy as np, pandas as pd, neuralglm as ng
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"a": rng.choice(["p", "q"], 120), "x": rng.normal(size=120)})
    >>> df["y"] = rng.poisson(np.exp(0.5 + 0.4 * df["x"]))
    >>> table = ng.drop1(ng.glm("y ~ a * x", df, family="poisson"))
    >>> table.index.tolist(), table.columns.tolist()
    (['<none>', 'a:x'], ['df', 'deviance', 'aic', 'statistic', 'p_value'])
    """
    check_glm(fit, "drop1()")
    test = resolve_test(fit, test, "drop1")
    scale, k = _check_scale_k(scale, k)
    _, model = term_tools.model_terms(fit)
    if scope is None:
        candidates = term_tools.drop_scope(model, [])
    else:
        candidates = []
        for term in term_tools.scope_terms(fit, scope, "scope"):
            found = term_tools.find(term, model)
            if found is None:
                labels = ", ".join(term.label for term in model)
                raise SpecificationError(f"drop1() can only drop terms of the model ({labels}); the scope has {term.label!r}.")
            candidates.append(found)
    return drop1_table(fit, candidates, scale=scale, k=k, test=test)


def add1(fit, scope, test: str | None = None, *, scale: float = 0.0, k: float = 2.0) -> pd.DataFrame:
    """R's ``add1(fit, scope, test=)``: the model with each term of ``scope`` added, one at a time.

    ``scope`` is a formula whose ``.`` is the model's right-hand side (``"~ . + x + a:b"``,
    ``"~ .^2"``): its terms not in the model that contain no other such term (R's
    ``add.scope``, so ``a:b`` waits for ``a`` and ``b``) are tried; a list of term labels is
    tried as given. Rows ``<none>`` and each term; columns as :func:`drop1` (``df``: the
    coefficients added). The larger models are built from the data of the fit's call, so the
    fit must come from ``ng.glm`` in this session.

    Examples
    --------
    >>> import numpy as np, pandas as pd, neuralglm as ng
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"a": rng.choice(["p", "q"], 120), "x": rng.normal(size=120)})
    >>> df["y"] = rng.poisson(np.exp(0.5 + 0.4 * df["x"]))
    >>> ng.add1(ng.glm("y ~ a", df, family="poisson"), "~ . + x + a:x").index.tolist()
    ['<none>', 'x']
    """
    check_glm(fit, "add1()")
    test = resolve_test(fit, test, "add1")
    scale, k = _check_scale_k(scale, k)
    _, model = term_tools.model_terms(fit)
    if isinstance(scope, (list, tuple)):
        candidates = term_tools.scope_terms(fit, list(scope), "scope")
    else:
        candidates = term_tools.add_scope(model, term_tools.scope_terms(fit, scope, "scope"))
    if not candidates:
        raise SpecificationError(f"add1() found no terms in the scope {scope!r} to add to the model.")
    return add1_table(fit, candidates, scale=scale, k=k, test=test)
