"""``family="negative_binomial"`` against live R's ``MASS::glm.nb`` on R's own datasets.

Tolerances. ``glm.nb`` stops alternating when ``|ΔLm|/d1 + |Δθ| ≤ ε = 1e-8`` (``glm.control()``).
Near the maximum the alternation contracts linearly (θ's steps shrink by a factor r ≈ 0.07 per
round on ``ships``, faster on ``quine``), so when the rule stops, θ is within
``|Δθ|·r/(1 − r) ≲ 1e-8`` (absolute) of the maximum — for R and for us, who use the same rule
(with θ from the new means, see ``neuralglm.fit.nb_theta``). R's default fit is indeed within
1e-9 of its own ``glm.control(epsilon = 1e-13)`` fit on these data. θ here is 1 to 30, so two fits
each within 1e-8 of θ̂ agree to ~1e-8 relative; R's IRLS stop (relative deviance change 1e-8,
looser than ours) moves β and the statistics by about as much (measured: ≤ 3e-7 relative on
coefficients, ≤ 3e-9 on everything else). 1e-6 relative covers both with margin; coefficients
near zero are compared to 1e-6 of their standard error (relative error is meaningless at zero).
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import ConvergenceWarning
from r_session import r_dataset, require_r, run_r

RTOL = 1e-6

_R_OUT = """
out('coef', coef(m)); out('se', sqrt(diag(vcov(m)))); out('theta', m$theta); out('se_theta', m$SE.theta)
out('deviance', deviance(m)); out('null_deviance', m$null.deviance); out('loglik', m$twologlik / 2)
out('aic', AIC(m)); out('bic', BIC(m)); out('df_resid', m$df.residual); out('fitted', fitted(m))
dp <- max(2 - floor(log10(m$SE.theta)), 0)
out('theta_shown', round(m$theta, dp)); out('se_shown', round(m$SE.theta, dp)); out('dp', dp)
"""


@pytest.fixture(scope="module")
def quine():
    require_r("MASS")
    return r_dataset("quine", "MASS")


@pytest.fixture(scope="module")
def ships():
    require_r("MASS")
    data = r_dataset("ships", "MASS")
    data = data[data["service"] > 0].reset_index(drop=True)
    return data.assign(year=pd.Categorical(data["year"].astype(str)))


def _compare(fit, r):
    se = r["se"]
    assert_allclose(fit.coef.to_numpy(), r["coef"], rtol=RTOL, atol=RTOL * se.min())
    assert_allclose(fit.std_errors.to_numpy(), se, rtol=RTOL)
    params = fit.family_params
    assert list(params.index) == ["theta"] and list(params.columns) == ["estimate", "std_error"]
    assert_allclose(params.loc["theta", "estimate"], r["theta"][0], rtol=RTOL)
    assert_allclose(params.loc["theta", "std_error"], r["se_theta"][0], rtol=RTOL)
    for name in ("deviance", "null_deviance", "loglik", "aic", "bic", "df_resid"):
        assert_allclose(getattr(fit, name), r[name][0], rtol=RTOL, err_msg=name)
    assert_allclose(fit.fitted_mu, r["fitted"], rtol=RTOL)
    # The family holds the estimate: predictions and residuals use θ̂.
    assert_allclose(fit.family.theta, params.loc["theta", "estimate"], rtol=1e-12)


def test_quine_matches_glm_nb(quine):
    """Venables & Ripley's own example (MASS §7.4): Days ~ Eth + Sex + Age + Lrn."""
    r = run_r(f"m <- MASS::glm.nb(Days ~ Eth + Sex + Age + Lrn, data = d)\n{_R_OUT}", d=quine)
    fit = ng.glm("Days ~ Eth + Sex + Age + Lrn", quine, family="negative_binomial")
    _compare(fit, r)
    # AIC counts θ: -2·loglik + 2·(rank + 1), as glm.nb's aic.
    assert fit.aic == pytest.approx(-2.0 * fit.loglik + 2.0 * (fit.rank + 1), rel=1e-12)
    # The summary prints θ and its SE rounded as MASS's print.summary.negbin.
    digits = int(r["dp"][0])
    line = f"Theta: {r['theta_shown'][0]:.{digits}f}, Std. Err.: {r['se_shown'][0]:.{digits}f}"
    assert line in str(fit.summary())


def test_an_offset_matches_glm_nb(ships):
    """MASS's ships: incidents per months of service, offset(log(service)) as exposure."""
    r = run_r(f"d$year <- factor(d$year)\nm <- MASS::glm.nb(incidents ~ type + year + offset(log(service)), data = d)\n{_R_OUT}", d=ships)
    fit = ng.glm("incidents ~ type + year", ships, family="negative_binomial", exposure="service")
    _compare(fit, r)
    new = ships.head(7).assign(service=ships["service"].head(7) * 2.0)
    rp = run_r(
        "d$year <- factor(d$year); n$year <- factor(n$year, levels = levels(d$year))\n"
        "m <- MASS::glm.nb(incidents ~ type + year + offset(log(service)), data = d)\n"
        "out('response', predict(m, n, type = 'response')); out('link', predict(m, n, type = 'link'))",
        d=ships,
        n=new,
    )
    assert_allclose(fit.predict(new), rp["response"], rtol=RTOL)
    assert_allclose(fit.predict(new, type="link"), rp["link"], rtol=RTOL, atol=RTOL)


def test_prior_weights_match_glm_nb(quine):
    weighted = quine.assign(w=np.tile([1.0, 2.0], len(quine) // 2))
    r = run_r(f"m <- MASS::glm.nb(Days ~ Eth + Sex, data = d, weights = w)\n{_R_OUT}", d=weighted)
    fit = ng.glm("Days ~ Eth + Sex", weighted, family="negative_binomial", weights="w")
    _compare(fit, r)


def test_anova_between_nb_models_is_glm_nbs_likelihood_ratio_test(quine):
    """MASS's anova.negbin: the LR statistic is the difference of 2·loglik (each model at its own θ)."""
    r = run_r(
        "a <- anova(MASS::glm.nb(Days ~ Eth + Sex, d), MASS::glm.nb(Days ~ Eth + Sex + Age + Lrn, d))\n"
        "out('lr', a[['LR stat.']][2]); out('df', a[['   df']][2]); out('p', a[['Pr(Chi)']][2]); out('twologlik', a[['   2 x log-lik.']])",
        d=quine,
    )
    small = ng.glm("Days ~ Eth + Sex", quine, family="negative_binomial")
    big = ng.glm("Days ~ Eth + Sex + Age + Lrn", quine, family="negative_binomial")
    table = ng.anova(small, big)
    assert_allclose(2.0 * np.array([small.loglik, big.loglik]), r["twologlik"], rtol=RTOL)
    assert table["df"].iloc[1] == r["df"][0]
    assert_allclose(table["statistic"].iloc[1], r["lr"][0], rtol=1e-5)  # a difference of two 2·loglik ≈ 1100: 1e-6·1100/11.7
    assert_allclose(table["p_value"].iloc[1], r["p"][0], rtol=1e-5)


def test_fixed_alpha_is_glm_with_negative_binomial_theta(quine):
    """negative_binomial(alpha) keeps α = 1/θ fixed: R's glm(family = negative.binomial(θ)); AIC counts no θ."""
    r = run_r(
        # R's glm.fit stops at a relative deviance change of 1e-8, which with this non-canonical link leaves
        # its coefficients ~5e-5 standard errors from the maximum; a tight epsilon gives R's maximum.
        "m <- glm(Days ~ Eth + Sex + Age + Lrn, data = d, family = MASS::negative.binomial(2), control = glm.control(epsilon = 1e-13, maxit = 100))\n"
        "out('coef', coef(m)); out('aic', AIC(m)); out('loglik', logLik(m)); out('deviance', deviance(m))",
        d=quine,
    )
    fit = ng.glm("Days ~ Eth + Sex + Age + Lrn", quine, family="negative_binomial(0.5)")
    assert fit.family_params.empty and list(fit.family_params.columns) == ["estimate", "std_error"]
    assert_allclose(fit.coef.to_numpy(), r["coef"], rtol=RTOL)
    for name in ("aic", "loglik", "deviance"):
        assert_allclose(getattr(fit, name), r[name][0], rtol=RTOL, err_msg=name)


def test_theta_going_to_infinity_warns_as_glm_nb():
    """MASS's Insurance has no overdispersion: theta.ml runs out of iterations (R warns), so do we."""
    require_r("MASS")
    data = r_dataset("Insurance", "MASS")
    data = data.assign(Group=data["Group"].cat.as_unordered(), Age=data["Age"].cat.as_unordered())
    r = run_r(
        "d$Group <- factor(d$Group, ordered = FALSE); d$Age <- factor(d$Age, ordered = FALSE)\n"
        "m <- suppressWarnings(MASS::glm.nb(Claims ~ District + Group + Age + offset(log(Holders)), data = d))\n"
        "out('warned', !is.null(m$th.warn)); out('theta', m$theta)",
        d=data,
    )
    assert r["warned"][0] == 1.0 and r["theta"][0] > 1e4
    with pytest.warns(ConvergenceWarning, match="theta"):
        fit = ng.glm("Claims ~ District + Group + Age", data, family="negative_binomial", exposure="Holders")
    assert fit.family_params.loc["theta", "estimate"] > 1e4


def test_model_file_keeps_theta_and_its_standard_error(quine):
    fit = ng.glm("Days ~ Eth + Sex + Age + Lrn", quine, family="negative_binomial")
    buffer = io.BytesIO()
    fit.save(buffer)
    loaded = ng.load(io.BytesIO(buffer.getvalue()))
    pd.testing.assert_frame_equal(loaded.family_params, fit.family_params)
    assert loaded.family == fit.family and loaded.aic == fit.aic and not math.isnan(loaded.loglik)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_allclose(loaded.predict(quine), fit.predict(quine), rtol=0, atol=0)
    assert "Theta:" in str(loaded.summary())


def test_drop1_of_a_glm_nb_fit_matches_r(quine):
    """drop1 keeps θ at its estimate and leaves it out of the AIC (MASS's extractAIC.negbin), so <none> is AIC(fit) − 2."""
    fit = ng.glm("Days ~ Eth + Sex", quine, family="negative_binomial")
    r = run_r(
        """
        m <- MASS::glm.nb(Days ~ Eth + Sex, data = d, control = glm.control(epsilon = 1e-12, maxit = 100))
        t <- drop1(m)
        out("deviance", t$Deviance); out("aic", t$AIC)
        """,
        d=quine,
    )
    table = ng.drop1(fit)
    assert_allclose(table["deviance"].to_numpy(), r["deviance"], rtol=1e-6)
    assert_allclose(table["aic"].to_numpy(), r["aic"], rtol=1e-6)
    assert table["aic"].iloc[0] == pytest.approx(fit.aic - 2.0, rel=1e-12)
