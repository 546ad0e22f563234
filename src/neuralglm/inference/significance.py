"""Wald tables, confidence intervals and likelihood-ratio (analysis of deviance) tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from neuralglm.errors import SpecificationError
from neuralglm.inference.deviance_tables import not_a_glm_error, resolve_test, sequential_anova

INTERVAL_COLUMNS = ("lower", "upper")


def level_label(level: float) -> str:
    """``'95%'`` for 0.95, ``'99.9%'`` for 0.999: how the level of an interval table is named in titles."""
    return f"{100 * level:.10g}%"


def wald_table(coef: pd.Series, std_errors: pd.Series, df_resid: float | None, level: float = 0.95) -> pd.DataFrame:
    """Estimate, standard error, z or t value, two-sided p-value and Wald interval.

    ``df_resid=None`` uses the normal distribution (dispersion known); a number uses Student's t
    with that many degrees of freedom (dispersion estimated), as R's ``summary.glm`` does.

    Returns
    -------
    pd.DataFrame
        Columns ``estimate, std_error, z_value`` (or ``t_value``) ``, p_value, lower, upper``.
        Interval columns are named ``lower`` and ``upper`` at every level, everywhere in the
        library (``conf_int()`` too); the level is the table's ``attrs["level"]`` and titles
        name it (``"95% confidence interval"``).

    Examples
    --------
    >>> import pandas as pd
    >>> table = wald_table(pd.Series({"x": 1.0}), pd.Series({"x": 0.5}), None, level=0.9)
    >>> list(table.columns), table.attrs["level"]
    (['estimate', 'std_error', 'z_value', 'p_value', 'lower', 'upper'], 0.9)
    >>> round(float(table.loc["x", "upper"]), 4)  # 1 + 1.6449 × 0.5
    1.8224
    """
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise SpecificationError(f"The 'level' parameter must be a float in the range (0, 1). Got {level!r} instead.")
    level = float(level)
    statistic = coef / std_errors
    if df_resid is None:
        p_value = 2.0 * stats.norm.sf(np.abs(statistic))
        critical = stats.norm.ppf(0.5 + level / 2.0)
        name = "z_value"
    else:
        p_value = 2.0 * stats.t.sf(np.abs(statistic), df_resid)
        critical = stats.t.ppf(0.5 + level / 2.0, df_resid)
        name = "t_value"
    table = pd.DataFrame(
        {
            "estimate": coef,
            "std_error": std_errors,
            name: statistic,
            "p_value": p_value,
            "lower": coef - critical * std_errors,
            "upper": coef + critical * std_errors,
        }
    )
    table.attrs["level"] = level
    return table


def anova(*fits, test: str | None = None) -> pd.DataFrame:
    """Analysis of deviance: of one GLM term by term, or of nested GLMs, smallest first (R's ``anova``).

    With one fit, R's sequential table (``anova(fit)``): rows ``NULL`` (the null model) and
    each term in formula order, each row the change from adding that term to the ones above
    it (a factor is one term); columns ``df, deviance_change, df_resid, deviance, statistic,
    p_value``. The tests use the full model's dispersion, on ``df_resid`` degrees of freedom
    when it is estimated (Pearson) and as known otherwise, as R's ``anova.glm``.

    With several fits, each row after the first compares a model with the one before it. With the dispersion
    known (Poisson, binomial, negative binomial) the deviance difference is referred to χ²;
    models whose family parameter was estimated (θ of ``"negative_binomial"``) are each at
    their own estimate, so the change is the likelihood ratio 2·Δloglik (MASS's ``anova.negbin``);
    with it estimated, F = (ΔD/Δdf)/φ̂ with φ̂ the largest model's Pearson dispersion, on
    (Δdf, df_resid of the largest model) degrees of freedom, as R's ``anova(..., test="F")``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, neuralglm as ng
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    >>> df["y"] = rng.poisson(np.exp(0.3 + 0.5 * df["x"]))
    >>> table = ng.anova(ng.glm("y ~ x", df, family="poisson"), ng.glm("y ~ x + z", df, family="poisson"))
    >>> list(table.columns)
    ['df_resid', 'deviance', 'df', 'deviance_change', 'statistic', 'p_value']
    >>> ng.anova(ng.glm("y ~ x + z", df, family="poisson")).index.tolist()
    ['NULL', 'x', 'z']
    """
    if len(fits) == 1:
        return sequential_anova(fits[0], test)
    if not fits:
        raise SpecificationError("anova() needs a fitted model (one: the table by term), or several nested ones, smallest first.")
    for fit in fits:
        if getattr(fit, "kind", None) != "glm":
            raise not_a_glm_error(fit, "anova()")
    for small, big in itertools.pairwise(fits):
        if small.df_resid < big.df_resid:
            raise SpecificationError("Pass the models from the smallest (most residual df) to the largest.")
        if _family_key(small) != _family_key(big):
            raise SpecificationError(f"anova() needs models of the same family; got {small.family} and {big.family}.")
        same_data = all(
            np.array_equal(getattr(small.design, name), getattr(big.design, name))
            for name in ("y", "total_weights", "offset", "row_labels")
        )
        if not same_data:
            raise SpecificationError(
                "anova() needs models fitted to the same rows, response, weights and offset (as R's anova.glmlist checks); "
                "these differ. Refit both models on the same data."
            )
    largest = fits[-1]
    test = resolve_test(largest, test, "anova")
    # R's anova.glmlist: a known dispersion has infinitely many degrees of freedom, so F·df is χ²(df).
    df_scale = math.inf if largest.dispersion_method == "fixed" else largest.df_resid
    rows = [dict(df_resid=fits[0].df_resid, deviance=fits[0].deviance, df=np.nan, deviance_change=np.nan, statistic=np.nan, p_value=np.nan)]
    for small, big in itertools.pairwise(fits):
        df = small.df_resid - big.df_resid
        change = small.deviance - big.deviance
        if not big.family_params.empty:
            # Each model at its own estimated θ (glm.nb): deviances are not comparable, so the likelihood
            # ratio 2·Δloglik is the change, as MASS's anova.negbin.
            change = 2.0 * (big.loglik - small.loglik)
        if test == "F":
            statistic = change / df / largest.dispersion
            p_value = stats.f.sf(statistic, df, df_scale) if math.isfinite(df_scale) else stats.chi2.sf(statistic * df, df)
        else:
            statistic = change / largest.dispersion
            p_value = stats.chi2.sf(statistic, df)
        rows.append(dict(df_resid=big.df_resid, deviance=big.deviance, df=df, deviance_change=change, statistic=statistic, p_value=p_value))
    table = pd.DataFrame(rows, index=[f"model {i + 1}" for i in range(len(fits))])
    table.attrs["test"] = test
    return table


def _family_key(fit) -> str:
    """What must agree between compared models: the family, or only its name when its parameter was estimated in each."""
    return fit.family.name if not fit.family_params.empty else str(fit.family)
