"""``fit.predict(se_fit=True, interval="confidence")`` against live R's ``predict.glm(se.fit=TRUE)``.

R fits with ``glm.control(epsilon = 1e-14)`` so that both sides sit at the optimum to far
better than the tolerance (at 1e-12 esoph's poorly determined youngest age group still moves R's
standard errors by 3e-6); then ``fit``/``se.fit`` on the link and response scales agree to
``RTOL = 1e-6`` relative (ours polishes to 1e-9 standard errors; what is left is two solvers'
rounding). R's ``predict.glm`` has no ``interval`` argument, so R's intervals are built as
R users build them: ``linkinv(fit ± q·se.fit)`` on the link scale, ``q = qnorm`` for a fixed
dispersion and ``qt(df.residual)`` when it is estimated. For the Gaussian identity model R's
``predict.lm(interval = "confidence")`` is a reference that computes them itself. statsmodels'
``get_prediction`` is a second, independent reference where it has the same quantity.

Ordered factors are made unordered on both sides: the comparison is about prediction, not
about R's ``contr.poly`` coding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.data.design import model_matrix_for
from r_session import r_dataset, require_r, run_r, unordered

RTOL = 1e-6
R_CONTROL = "control = glm.control(epsilon = 1e-14, maxit = 100)"


def _esoph():
    d = unordered(r_dataset("esoph"))
    return d, "cbind(ncases, ncontrols) ~ agegp + tobgp + alcgp", {"family": "binomial"}, "binomial"


def _insurance():
    d = unordered(r_dataset("Insurance", "MASS"))
    return d, "Claims ~ District + Group + Age", {"family": "poisson", "exposure": "Holders"}, "poisson"


def _warpbreaks():
    return r_dataset("warpbreaks"), "breaks ~ wool * tension", {"family": "poisson"}, "poisson"


def _insect_sprays_sqrt():
    return r_dataset("InsectSprays"), "count ~ spray", {"family": "poisson", "link": "sqrt"}, "poisson(link = 'sqrt')"


def _trees_gamma_log():
    d = r_dataset("trees")
    d["log_girth"], d["log_height"] = np.log(d["Girth"]), np.log(d["Height"])
    return d, "Volume ~ log_girth + log_height", {"family": "gamma", "link": "log"}, "Gamma(link = 'log')"


def _trees_gamma_inverse():
    # The canonical inverse link decreases: the response-scale ends swap.
    return r_dataset("trees"), "Volume ~ Girth + Height", {"family": "gamma"}, "Gamma"


def _cars_gaussian():
    return r_dataset("cars"), "dist ~ speed", {"family": "gaussian"}, "gaussian"


CASES = {
    "esoph-binomial": _esoph,
    "insurance-poisson-exposure": _insurance,
    "warpbreaks-poisson": _warpbreaks,
    "insectsprays-poisson-sqrt": _insect_sprays_sqrt,
    "trees-gamma-log": _trees_gamma_log,
    "trees-gamma-inverse": _trees_gamma_inverse,
    "cars-gaussian": _cars_gaussian,
}


def _new_rows(data: pd.DataFrame, options: dict) -> pd.DataFrame:
    """Every third row, with the exposure changed so that predictions must read it from the new data."""
    new = data.iloc[::3].copy()
    if "exposure" in options:
        new[options["exposure"]] = new[options["exposure"]] * 2 + 1
    return new


def _r_predictions(data, new, formula, r_family, options, level) -> dict:
    offset = f", offset = log({options['exposure']})" if "exposure" in options else ""
    code = f"""
m <- glm({formula}, data = d, family = {r_family}{offset}, {R_CONTROL})
q <- if (summary(m)$dispersion == 1 && family(m)$family %in% c('binomial', 'poisson')) qnorm(0.5 + {level} / 2) else qt(0.5 + {level} / 2, df.residual(m))
for (type in c('link', 'response')) {{
  for (which in c('new', 'train')) {{
    p <- if (which == 'new') predict(m, newdata = nd, type = type, se.fit = TRUE) else predict(m, type = type, se.fit = TRUE)
    out(paste(which, type, 'fit', sep = '_'), p$fit)
    out(paste(which, type, 'se', sep = '_'), p$se.fit)
  }}
}}
pl <- predict(m, newdata = nd, type = 'link', se.fit = TRUE)
ends <- cbind(family(m)$linkinv(pl$fit - q * pl$se.fit), family(m)$linkinv(pl$fit + q * pl$se.fit))
out('new_response_lower', pmin(ends[, 1], ends[, 2]))
out('new_response_upper', pmax(ends[, 1], ends[, 2]))
out('new_link_lower', pl$fit - q * pl$se.fit)
out('new_link_upper', pl$fit + q * pl$se.fit)
"""
    return run_r(code, d=data, nd=new)


@pytest.mark.parametrize("case", list(CASES))
def test_predict_se_fit_matches_r(case):
    require_r("MASS")
    data, formula, options, r_family = CASES[case]()
    new = _new_rows(data, options)
    level = 0.9
    r = _r_predictions(data, new, formula, r_family, options, level)
    fit = ng.glm(formula, data, **options)
    for type in ("link", "response"):
        table = fit.predict(new, type=type, se_fit=True, interval="confidence", level=level)
        assert list(table.columns) == ["fit", "se_fit", "lower", "upper"]
        assert table.index.equals(new.index)
        assert table.attrs["level"] == level
        assert_allclose(table["fit"], r[f"new_{type}_fit"], rtol=RTOL)
        assert_allclose(table["se_fit"], r[f"new_{type}_se"], rtol=RTOL)
        assert_allclose(table["lower"], r[f"new_{type}_lower"], rtol=RTOL)
        assert_allclose(table["upper"], r[f"new_{type}_upper"], rtol=RTOL)
        train = fit.predict(type=type, se_fit=True)
        assert list(train.columns) == ["fit", "se_fit"]
        assert_allclose(train["fit"], r[f"train_{type}_fit"], rtol=RTOL)
        assert_allclose(train["se_fit"], r[f"train_{type}_se"], rtol=RTOL)
        # The point predictions are today's, to the bit.
        assert_allclose(table["fit"], fit.predict(new, type=type), rtol=0, atol=0)


def test_gaussian_intervals_match_predict_lm():
    """R's predict.lm computes confidence intervals itself (t on df.residual): the same numbers."""
    require_r()
    data = r_dataset("cars")
    new = pd.DataFrame({"speed": [4.0, 12.5, 30.0]}, index=["slow", "mid", "beyond the data"])
    r = run_r(
        "m <- lm(dist ~ speed, data = d); p <- predict(m, newdata = nd, interval = 'confidence', level = 0.99, se.fit = TRUE)\n"
        "out('fit', p$fit[, 'fit']); out('se', p$se.fit); out('lwr', p$fit[, 'lwr']); out('upr', p$fit[, 'upr'])",
        d=data,
        nd=new,
    )
    table = ng.glm("dist ~ speed", data).predict(new, se_fit=True, interval="confidence", level=0.99)
    assert_allclose(table.to_numpy(), np.column_stack([r["fit"], r["se"], r["lwr"], r["upr"]]), rtol=RTOL)


@pytest.mark.parametrize("case", ["insurance-poisson-exposure", "trees-gamma-log", "esoph-binomial"])
def test_predict_se_fit_matches_statsmodels(case):
    """statsmodels' get_prediction (delta method; link-scale interval mapped through the inverse link)."""
    data, formula, options, _ = CASES[case]()
    new = _new_rows(data, options)
    fit = ng.glm(formula, data, **options)
    X_new, offset_new = model_matrix_for(fit.design, new)
    families = {"poisson": sm.families.Poisson(), "binomial": sm.families.Binomial()}
    family = families.get(options["family"]) or sm.families.Gamma(sm.families.links.Log())
    model = sm.GLM(fit.design.y, fit.design.X, family=family, offset=fit.design.offset, var_weights=fit.design.weights)
    result = model.fit(tol=1e-13, scale="X2" if fit.uses_t else 1.0)
    for which, type in (("linear", "link"), ("mean", "response")):
        reference = result.get_prediction(X_new, offset=offset_new, which=which)
        ours = fit.predict(new, type=type, se_fit=True, interval="confidence", level=0.95)
        assert_allclose(ours["fit"], reference.predicted, rtol=RTOL)
        assert_allclose(ours["se_fit"], reference.se, rtol=RTOL)
        if fit.uses_t:
            continue  # statsmodels uses normal quantiles unless use_t; R's (and ours) are t
        lower, upper = reference.conf_int(alpha=0.05).T
        assert_allclose(ours["lower"], lower, rtol=RTOL)
        assert_allclose(ours["upper"], upper, rtol=RTOL)
