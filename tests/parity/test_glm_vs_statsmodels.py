"""Parity of ``ng.glm`` with statsmodels (the numerical oracle) on every family × link pair.

Estimates, standard errors, deviance, null deviance, Pearson χ², dispersion and degrees of
freedom agree at ``rtol=1e-6``: both fit the same likelihood to a tight tolerance
(statsmodels at ``tol=1e-13``; ours polishes to 1e-9 standard errors), so the only
differences are rounding in two different solvers.

``loglik``/``aic``/``bic`` follow R, not statsmodels (see README "Conventions"), so they are
checked against R's formulas evaluated with scipy.stats densities — an independent
implementation — with the R source of each formula quoted beside it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose
from scipy import stats

import neuralglm as ng
from helpers import FAMILY_LINK_GRID, compound_poisson_gamma_logpdf, formula_for, simulate_glm

RTOL = 1e-6
SM = sm.families
SM_LINKS = {
    "identity": SM.links.Identity,
    "log": SM.links.Log,
    "logit": SM.links.Logit,
    "probit": SM.links.Probit,
    "cloglog": SM.links.CLogLog,
    "inverse": SM.links.InversePower,
    "inverse_squared": SM.links.InverseSquared,
    "sqrt": SM.links.Sqrt,
}


def to_statsmodels(family: str, link: str):
    """The statsmodels family object equal to our (family, link) pair."""
    family_obj = ng.get_family(family)
    link_obj = ng.get_link(link, family_obj)
    if link_obj.name == "power":
        sm_link = SM.links.Power(power=float(link_obj.power))
    else:
        sm_link = SM_LINKS[link_obj.name]()
    name = family_obj.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' DomainWarning for non-canonical links
        if name == "negative_binomial":
            return SM.NegativeBinomial(link=sm_link, alpha=family_obj.alpha)
        if name == "tweedie":
            return SM.Tweedie(link=sm_link, var_power=family_obj.power)
        return {
            "gaussian": SM.Gaussian,
            "binomial": SM.Binomial,
            "poisson": SM.Poisson,
            "gamma": SM.Gamma,
            "inverse_gaussian": SM.InverseGaussian,
        }[name](link=sm_link)


def _seed(family: str, link: str, variant: str) -> int:
    return sum(map(ord, family + link + variant)) % 1000


def _fit_both(family, link, variant, cov_type="expected"):
    df = simulate_glm(family, link, n_obs=500, n_features=3, seed=_seed(family, link, variant))
    rng = np.random.default_rng(_seed(family, link, variant) + 1)
    ours_kwargs: dict = {}
    ref_kwargs: dict = {}
    if variant == "offset_weights":
        if ng.get_family(family).name != "binomial":  # binomial weights are trials: keep 0/1 data
            df["w"] = rng.uniform(0.5, 2.0, len(df))
            ours_kwargs["weights"] = "w"
            ref_kwargs["var_weights"] = df["w"]
        if ng.get_link(link, ng.get_family(family)).name in ("log", "logit", "probit", "cloglog", "identity"):
            df["o"] = rng.uniform(-0.05, 0.05, len(df))
            ours_kwargs["offset"] = "o"
            ref_kwargs["offset"] = df["o"]
    elif variant == "freq_weights":
        df["f"] = rng.integers(1, 4, len(df)).astype(float)
        ours_kwargs["freq_weights"] = "f"
        ref_kwargs["freq_weights"] = df["f"]
    elif variant == "exposure":
        df["e"] = rng.uniform(0.8, 1.25, len(df))
        ours_kwargs["exposure"] = "e"
        ref_kwargs["exposure"] = df["e"]
    formula = formula_for(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = ng.glm(formula, df, family=family, link=link, cov_type=cov_type, **ours_kwargs)
        model = smf.glm(formula, df, family=to_statsmodels(family, link), **ref_kwargs)
        ref = model.fit(tol=1e-13, maxiter=200)
    return ours, ref, model, df


VARIANTS = ["plain", "offset_weights", "freq_weights"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(("family", "link"), FAMILY_LINK_GRID, ids=[f"{f}-{lk}" for f, lk in FAMILY_LINK_GRID])
def test_glm_matches_statsmodels(family, link, variant):
    ours, ref, _, _ = _fit_both(family, link, variant)
    assert ours.info.converged
    assert_allclose(ours.coef, ref.params, rtol=RTOL)
    assert_allclose(ours.std_errors, ref.bse, rtol=RTOL)
    assert_allclose(ours.deviance, ref.deviance, rtol=RTOL)
    assert_allclose(ours.null_deviance, ref.null_deviance, rtol=RTOL)
    assert_allclose(ours.pearson_chi2, ref.pearson_chi2, rtol=RTOL)
    assert_allclose(ours.dispersion, ref.scale, rtol=RTOL)
    assert ours.df_resid == ref.df_resid
    assert ours.df_model == ref.df_model
    assert_allclose(ours.predict(type="response"), ref.fittedvalues, rtol=RTOL)


@pytest.mark.parametrize(
    ("family", "link"), [(f, lk) for f, lk in FAMILY_LINK_GRID if lk == "log"], ids=[f for f, lk in FAMILY_LINK_GRID if lk == "log"]
)
def test_exposure_matches_statsmodels(family, link):
    ours, ref, _, df = _fit_both(family, link, "exposure")
    assert_allclose(ours.coef, ref.params, rtol=RTOL)
    assert_allclose(ours.std_errors, ref.bse, rtol=RTOL)
    assert_allclose(ours.deviance, ref.deviance, rtol=RTOL)
    assert_allclose(ours.null_deviance, ref.null_deviance, rtol=RTOL)
    # predict() re-reads the exposure column from new data: same as statsmodels' predict with exposure.
    assert_allclose(ours.predict(df.head(20)), ref.predict(df.head(20), exposure=df["e"].head(20)), rtol=RTOL)


@pytest.mark.parametrize(("family", "link"), FAMILY_LINK_GRID, ids=[f"{f}-{lk}" for f, lk in FAMILY_LINK_GRID])
def test_observed_information_matches_statsmodels(family, link):
    ours, ref, model, _ = _fit_both(family, link, "plain", cov_type="observed")
    hessian = model.hessian(ref.params.to_numpy(), scale=ref.scale, observed=True)
    assert_allclose(ours.vcov.to_numpy(), np.linalg.inv(-hessian), rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize(("family", "link"), FAMILY_LINK_GRID, ids=[f"{f}-{lk}" for f, lk in FAMILY_LINK_GRID])
def test_sandwich_matches_r_sandwich_formula(family, link):
    """HC0 as R's ``sandwich::sandwich(glm)``: bread = expected information, meat = Σ sᵢ²xᵢxᵢᵀ.

    R: ``bread.glm <- summary.glm(x)$cov.unscaled * nobs * dispersion``;
    ``estfun.glm <- residuals(x, "working") * weights(x, "working") * model.matrix(x) / dispersion``.
    The reference is built from statsmodels' pieces: its unscaled expected covariance and its
    per-observation score at scale 1.
    """
    ours, ref, model, _ = _fit_both(family, link, "offset_weights", cov_type="sandwich")
    bread = ref.normalized_cov_params.to_numpy()
    scores = model.score_obs(ref.params.to_numpy(), scale=1.0)
    expected = bread @ (scores.T @ scores) @ bread
    assert_allclose(
        ours.vcov.to_numpy(), expected, rtol=1e-5, atol=1e-14
    )  # score_obs is a difference of two O(1) terms: ~1e-7 cancellation


@pytest.mark.parametrize(("family", "link"), [("poisson", "log"), ("binomial", "logit"), ("gamma", "inverse"), ("gaussian", "identity")])
def test_sandwich_equals_statsmodels_hc0_for_canonical_links(family, link):
    """For canonical links observed = expected information, so R's and statsmodels' HC0 coincide."""
    ours, _, model, _ = _fit_both(family, link, "plain", cov_type="sandwich")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = model.fit(tol=1e-13, cov_type="HC0")
    assert_allclose(ours.std_errors, ref.bse, rtol=RTOL)


# ---- log-likelihood, AIC and BIC: R's conventions ---------------------------------------------


def _r_loglik(family: ng.families.Family, y, mu, w, deviance, n_obs) -> float:
    """R's ``logLik.glm`` = rank + (1 if dispersion estimated) − ``family()$aic(...)``/2 − rank, via scipy."""
    name = family.name
    if name == "gaussian":
        # gaussian()$aic: nobs*(log(2*pi*dev/nobs)+1)+2 - sum(log(wt))  ⇔  Σ log N(y; mu, (dev/n)/w)
        sigma2 = deviance / n_obs
        return float(np.sum(stats.norm.logpdf(y, mu, np.sqrt(sigma2 / w))))
    if name == "binomial":
        # binomial()$aic: -2*sum(ifelse(m > 0, (wt/m), 0)*dbinom(round(m*y), round(m), mu, log=TRUE)), m = wt
        return float(np.sum(stats.binom.logpmf(np.round(w * y), np.round(w), mu)))
    if name == "poisson":
        # poisson()$aic: -2*sum(dpois(y, mu, log=TRUE)*wt)
        return float(np.sum(w * stats.poisson.logpmf(y, mu)))
    if name == "gamma":
        # Gamma()$aic: n <- sum(wt); disp <- dev/n; -2*sum(dgamma(y, 1/disp, scale=mu*disp, log=TRUE)*wt) + 2
        disp = deviance / np.sum(w)
        return float(np.sum(w * stats.gamma.logpdf(y, a=1.0 / disp, scale=mu * disp)))
    if name == "inverse_gaussian":
        # inverse.gaussian()$aic: sum(wt)*(log(disp*2*pi)+1)+3*sum(log(y)*wt)+2, disp = dev/sum(wt)
        lam = 1.0 / (deviance / np.sum(w))
        return float(np.sum(w * stats.invgauss.logpdf(y, mu / lam, scale=lam)))
    if name == "negative_binomial":
        # MASS::negative.binomial(theta)$aic: 2*sum(term*wt), term = -log dnbinom(y, theta, mu=mu)
        theta = 1.0 / family.alpha
        return float(np.sum(w * stats.nbinom.logpmf(y, theta, theta / (theta + mu))))
    if name == "tweedie":
        # tweedie::AICtweedie: dtweedie(y, mu, phi = disp / wt, power) with disp the mean deviance dev / sum(wt)
        # (1 < power < 2; statmod::tweedie()$aic is NA). Reference: the compound Poisson-gamma sum, term by term.
        disp = deviance / np.sum(w)
        return float(sum(compound_poisson_gamma_logpdf(yi, mi, disp / wi, family.power) for yi, mi, wi in zip(y, mu, w, strict=True)))
    raise AssertionError(name)


@pytest.mark.parametrize("variant", ["plain", "offset_weights"])
@pytest.mark.parametrize(("family", "link"), FAMILY_LINK_GRID, ids=[f"{f}-{lk}" for f, lk in FAMILY_LINK_GRID])
def test_loglik_aic_bic_follow_r(family, link, variant):
    ours, _, _, df = _fit_both(family, link, variant)
    family_obj = ours.family
    w = df["w"].to_numpy() if "w" in df and variant == "offset_weights" else np.ones(len(df))
    expected = _r_loglik(family_obj, df["y"].to_numpy(), ours.predict().to_numpy(), w, ours.deviance, ours.n_obs)
    assert_allclose(ours.loglik, expected, rtol=1e-9)  # same formula, two implementations: rounding only
    k = ours.rank + (0 if family_obj.fixed_dispersion is not None else 1)  # R counts an estimated dispersion
    assert_allclose(ours.aic, -2 * expected + 2 * k, rtol=1e-9)
    assert_allclose(ours.bic, -2 * expected + np.log(ours.n_obs) * k, rtol=1e-9)


# ---- datasets statsmodels ships, with results computed in R (statsmodels' own test fixtures) ----


def _r_results():
    from statsmodels.genmod.tests.results import results_glm

    return results_glm


def _with_constant(exog) -> np.ndarray:
    return sm.add_constant(np.asarray(exog, dtype=float), prepend=False)


def _r_cases():
    datasets = sm.datasets
    longley = datasets.longley.load()
    star98 = datasets.star98.load()
    counts = np.asarray(star98.endog, dtype=float)
    trials = counts.sum(axis=1)
    scotland = datasets.scotland.load()
    cpunish = datasets.cpunish.load()
    cpunish_x = np.asarray(cpunish.exog, dtype=float).copy()
    cpunish_x[:, 3] = np.log(cpunish_x[:, 3])
    r = _r_results()
    return {
        "longley-gaussian": (
            dict(X=_with_constant(longley.exog), y=np.asarray(longley.endog, dtype=float), family="gaussian"),
            r.Longley(),
        ),
        "star98-binomial": (dict(X=_with_constant(star98.exog), y=counts[:, 0] / trials, weights=trials, family="binomial"), r.Star98()),
        "scotland-gamma": (dict(X=_with_constant(scotland.exog), y=np.asarray(scotland.endog, dtype=float), family="gamma"), r.Scotvote()),
        "cpunish-poisson": (dict(X=_with_constant(cpunish_x), y=np.asarray(cpunish.endog, dtype=float), family="poisson"), r.Cpunish()),
        "invgauss": (dict(X=r.InvGauss().exog, y=r.InvGauss().endog, family="inverse_gaussian"), r.InvGauss()),
        "lbw-binomial": (dict(X=r.Lbw().exog, y=r.Lbw().endog, family="binomial"), r.Lbw()),
    }


@pytest.mark.parametrize("case", ["longley-gaussian", "star98-binomial", "scotland-gamma", "cpunish-poisson", "invgauss", "lbw-binomial"])
def test_matches_r_on_shipped_datasets(case):
    """R's ``glm`` results that statsmodels ships for its own tests (results_glm.py, "from R").

    Deviance and AIC agree to 1e-9: R's AIC is a smooth function at the optimum, and R's
    printed digits are enough. Estimates agree to 1e-6. R's standard errors are checked at
    1e-4: R stops at |Δdev|/(|dev|+0.1) < 1e-8 and takes its covariance from the weights of
    the previous iteration, which leaves its SEs ~1e-5 from the exact optimum (the tight
    1e-6 comparison of SEs is against statsmodels at tol=1e-13, above).
    """
    arguments, r = _r_cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = ng.glm_fit(arguments.pop("X"), arguments.pop("y"), **arguments)
    assert_allclose(ours.coef, r.params, rtol=1e-6)
    assert_allclose(ours.std_errors, r.bse, rtol=1e-4)
    assert_allclose(ours.deviance, r.deviance, rtol=1e-9)
    assert_allclose(ours.aic, r.aic_R, rtol=1e-9)


def test_formula_cbind_matches_statsmodels_two_column_binomial():
    """``cbind(successes, failures) ~ x`` is statsmodels' two-column binomial endog."""
    star98 = sm.datasets.star98.load_pandas().data
    predictors = ["LOWINC", "PERASIAN", "PERBLACK", "PERHISP", "PCTCHRT"]
    formula = "cbind(NABOVE, NBELOW) ~ " + " + ".join(predictors)
    ours = ng.glm(formula, star98, family="binomial")
    ref = sm.GLM(star98[["NABOVE", "NBELOW"]], sm.add_constant(star98[predictors]), family=SM.Binomial()).fit(tol=1e-13)
    assert_allclose(ours.coef.to_numpy(), ref.params.to_numpy(), rtol=RTOL)
    assert_allclose(ours.std_errors.to_numpy(), ref.bse.to_numpy(), rtol=RTOL)
    assert_allclose(ours.deviance, ref.deviance, rtol=RTOL)


def test_insurance_poisson_with_factors_matches_statsmodels():
    data = ng.datasets.load_insurance()
    # statsmodels codes ordered categoricals as unordered ones (treatment); R and neuralglm use contr.poly.
    data = data.assign(group=data["group"].cat.as_unordered(), age=data["age"].cat.as_unordered())
    formula = "claims ~ C(district) + group + age"
    ours = ng.glm(formula, data, family="poisson", exposure="holders")
    ref = smf.glm(formula, data, family=SM.Poisson(), exposure=data["holders"]).fit(tol=1e-13)
    assert list(ours.coef.index) == list(ref.params.index)
    assert_allclose(ours.coef, ref.params, rtol=RTOL)
    assert_allclose(ours.std_errors, ref.bse, rtol=RTOL)
    assert_allclose([ours.deviance, ours.null_deviance, ours.pearson_chi2], [ref.deviance, ref.null_deviance, ref.pearson_chi2], rtol=RTOL)


def test_linear_model_matches_ols():
    """Gaussian identity is OLS: t statistics, R², adjusted R² and F as ``summary.lm``."""
    df = simulate_glm("gaussian", "identity", n_obs=300, n_features=3, seed=3)
    ours = ng.glm("y ~ x1 + x2 + x3", df)
    ref = smf.ols("y ~ x1 + x2 + x3", df).fit()
    assert ours.info.solver == "closed_form"
    assert_allclose(ours.coef, ref.params, rtol=1e-10)
    assert_allclose(ours.std_errors, ref.bse, rtol=1e-10)
    table = ours.coef_table()
    assert_allclose(table["t_value"], ref.tvalues, rtol=1e-10)
    assert_allclose(table["p_value"], ref.pvalues, rtol=1e-8)
    assert_allclose(ours.conf_int().to_numpy(), ref.conf_int().to_numpy(), rtol=1e-10)
    assert_allclose([ours.r_squared, ours.adj_r_squared], [ref.rsquared, ref.rsquared_adj], rtol=1e-10)
    assert ours.f_statistic is not None
    assert_allclose(ours.f_statistic[0], ref.fvalue, rtol=1e-10)
    assert_allclose(ours.loglik, ref.llf, rtol=1e-10)  # unweighted OLS: R's logLik = statsmodels' llf


def test_anova_matches_statsmodels_lr_and_f_tests():
    df = simulate_glm("poisson", "log", n_obs=400, n_features=3, seed=5)
    small = ng.glm("y ~ x1", df, family="poisson")
    big = ng.glm("y ~ x1 + x2 + x3", df, family="poisson")
    table = ng.anova(small, big)
    change = small.deviance - big.deviance
    assert_allclose(table["deviance_change"].iloc[1], change, rtol=1e-12)
    assert_allclose(table["p_value"].iloc[1], stats.chi2.sf(change, 2), rtol=1e-10)
    gauss = simulate_glm("gamma", "log", n_obs=400, n_features=3, seed=6)
    g_small = ng.glm("y ~ x1", gauss, family="gamma", link="log")
    g_big = ng.glm("y ~ x1 + x2 + x3", gauss, family="gamma", link="log")
    f_table = ng.anova(g_small, g_big)
    expected_f = (g_small.deviance - g_big.deviance) / 2 / g_big.dispersion  # R: anova(..., test="F")
    assert_allclose(f_table["statistic"].iloc[1], expected_f, rtol=1e-12)
    assert_allclose(f_table["p_value"].iloc[1], stats.f.sf(expected_f, 2, g_big.df_resid), rtol=1e-10)
    assert f_table.attrs["test"] == "F"


def test_wald_table_uses_t_when_dispersion_is_estimated():
    df = simulate_glm("gamma", "log", n_obs=200, n_features=2, seed=7)
    fit = ng.glm("y ~ x1 + x2", df, family="gamma", link="log")
    table = fit.coef_table(level=0.9)
    t = fit.coef / fit.std_errors
    assert_allclose(table["t_value"], t, rtol=1e-12)
    assert_allclose(table["p_value"], 2 * stats.t.sf(np.abs(t), fit.df_resid), rtol=1e-10)
    critical = stats.t.ppf(0.95, fit.df_resid)
    assert_allclose(fit.conf_int(level=0.9)["lower"], fit.coef - critical * fit.std_errors, rtol=1e-12)
    poisson = ng.glm("y ~ x1 + x2", simulate_glm("poisson", "log", 200, 2, 8), family="poisson")
    assert "z_value" in poisson.coef_table().columns
    assert isinstance(poisson.coef_table(), pd.DataFrame)
