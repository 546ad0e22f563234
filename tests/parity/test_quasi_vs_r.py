"""Quasi families against live R (``glm(family = quasipoisson / quasibinomial / quasi(...))``) and statsmodels.

R is the reference for every number: estimates, standard errors, the Pearson dispersion, t
values and their p-values, deviance and null deviance, and ``aic`` (NA in R, NaN here). The
estimates of a quasi fit are those of the full family, so R's IRLS and ours solve the same
equations: agreement to 1e-6 relative leaves room only for the two solvers' stopping points.
statsmodels (``GLM(..., scale="X2")``) checks the same quantities independently.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import SpecificationError
from neuralglm.family import Quasi, QuasiBinomial, QuasiPoisson
from neuralglm.family.registry import get_family
from r_session import r_dataset, require_r, run_r, unordered

RTOL = 1e-6
# R stops when the deviance changes by less than epsilon (1e-8) relatively, which can leave
# coefficients and the Pearson dispersion ~1e-6 from the solution with a flat deviance. The
# reference is R's IRLS run to 1e-12 and then restarted from its own estimates a few times
# (each restart is at least one more Fisher-scoring step), so that it is the converged fit.
TIGHT = """tight <- glm.control(epsilon = 1e-12, maxit = 100)
polish <- function(m) { for (i in 1:4) m <- update(m, start = coef(m)); m }
"""


# (label, R family call, neuralglm family, formula, dataset) — each fitted in R and here.
CASES = [
    ("warpbreaks_qp", "quasipoisson", "quasipoisson", "breaks ~ wool * tension", "warpbreaks"),
    ("esoph_qb", "quasibinomial", "quasibinomial", "cbind(ncases, ncontrols) ~ agegp + alcgp", "esoph"),
    ("quine_mu2", 'quasi(variance = "mu^2", link = "log")', "quasi(variance=mu^2, link=log)", "Days ~ Eth + Sex + Age + Lrn", "quine"),
    ("quine_mu", 'quasi(variance = "mu", link = "log")', "quasi(variance=mu, link=log)", "Days ~ Eth + Lrn", "quine"),
    ("mtcars_const", "quasi()", "quasi", "mpg ~ wt + hp", "mtcars"),
    ("mtcars_mu3", 'quasi(variance = "mu^3", link = "log")', "quasi(variance=mu^3, link=log)", "mpg ~ wt", "mtcars"),
    ("quine_sqrt", 'quasipoisson(link = "sqrt")', "quasipoisson", "Days ~ Sex + Age", "quine"),
]
LINKS = {"quine_sqrt": "sqrt"}


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    require_r("MASS")
    return {
        "warpbreaks": r_dataset("warpbreaks"),
        "esoph": unordered(r_dataset("esoph")),
        "quine": r_dataset("quine", "MASS"),
        "mtcars": r_dataset("mtcars"),
    }


@pytest.fixture(scope="module")
def r_fits(data) -> dict:
    lines = []
    for label, r_family, _, formula, dataset in CASES:
        lines.append(f"""
m <- polish(glm({formula}, family = {r_family}, data = {dataset}, control = tight)); s <- summary(m)
out('{label}_coef', coef(m)); out('{label}_se', s$coefficients[, 2]); out('{label}_t', s$coefficients[, 3])
out('{label}_p', s$coefficients[, 4]); out('{label}_disp', s$dispersion); out('{label}_dev', m$deviance)
out('{label}_null', m$null.deviance); out('{label}_df', c(m$df.residual, m$df.null)); out('{label}_aic', m$aic)
""")
    return run_r(TIGHT + "\n".join(lines), **data)


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_quasi_fit_matches_r(case, data, r_fits):
    label, _, family, formula, dataset = case
    fit = ng.glm(formula, data[dataset], family=family, link=LINKS.get(label))
    table = fit.coef_table()
    assert list(table.columns[:4]) == ["estimate", "std_error", "t_value", "p_value"]  # t tests: φ estimated
    assert_allclose(fit.coef.to_numpy(), r_fits[f"{label}_coef"], rtol=RTOL, atol=1e-9)
    assert_allclose(fit.std_errors.to_numpy(), r_fits[f"{label}_se"], rtol=RTOL)
    assert_allclose(table["t_value"].to_numpy(), r_fits[f"{label}_t"], rtol=RTOL, atol=1e-8)
    assert_allclose(table["p_value"].to_numpy(), r_fits[f"{label}_p"], rtol=1e-5, atol=1e-12)
    assert_allclose(fit.dispersion, r_fits[f"{label}_disp"][0], rtol=RTOL)
    assert_allclose(fit.deviance, r_fits[f"{label}_dev"][0], rtol=RTOL)
    assert_allclose(fit.null_deviance, r_fits[f"{label}_null"][0], rtol=RTOL)
    assert (fit.df_resid, fit.df_null) == tuple(r_fits[f"{label}_df"])
    assert np.isnan(r_fits[f"{label}_aic"][0])  # R: NA
    assert np.isnan(fit.loglik) and np.isnan(fit.aic) and np.isnan(fit.bic)
    assert fit.dispersion_method == "pearson"


def test_quasipoisson_has_the_poisson_estimates_and_statsmodels_x2_standard_errors(data):
    frame = data["warpbreaks"]
    quasi = ng.glm("breaks ~ wool * tension", frame, family="quasipoisson")
    poisson = ng.glm("breaks ~ wool * tension", frame, family="poisson")
    assert_allclose(quasi.coef.to_numpy(), poisson.coef.to_numpy(), rtol=1e-10)
    assert_allclose(quasi.dispersion, poisson.pearson_chi2 / poisson.df_resid, rtol=1e-12)
    assert_allclose(quasi.std_errors.to_numpy(), poisson.std_errors.to_numpy() * np.sqrt(quasi.dispersion), rtol=1e-8)
    reference = smf.glm("breaks ~ wool * tension", frame, family=sm.families.Poisson()).fit(scale="X2", tol=1e-13)
    assert_allclose(quasi.coef.to_numpy(), reference.params.to_numpy(), rtol=RTOL)
    assert_allclose(quasi.std_errors.to_numpy(), reference.bse.to_numpy(), rtol=RTOL)
    assert_allclose(quasi.dispersion, reference.scale, rtol=RTOL)


def test_quasibinomial_matches_statsmodels_with_pearson_scale(data):
    frame = data["esoph"]
    fit = ng.glm("cbind(ncases, ncontrols) ~ agegp + alcgp", frame, family="quasibinomial")
    trials = (frame["ncases"] + frame["ncontrols"]).to_numpy(float)
    exog = pd.get_dummies(frame[["agegp", "alcgp"]], drop_first=True, dtype=float)
    # Proportions with the trials as variance weights: statsmodels' X2 scale then weights the
    # Pearson residuals by the trials, as R does (its two-column endog does not).
    model = sm.GLM(frame["ncases"] / trials, sm.add_constant(exog), family=sm.families.Binomial(), var_weights=trials)
    reference = model.fit(scale="X2", tol=1e-13)
    assert_allclose(fit.coef.to_numpy(), reference.params.to_numpy(), rtol=RTOL)
    assert_allclose(fit.std_errors.to_numpy(), reference.bse.to_numpy(), rtol=RTOL)


def test_quasi_anova_uses_f_with_the_pearson_dispersion(data, r_fits):
    frame = data["warpbreaks"]
    small = ng.glm("breaks ~ wool + tension", frame, family="quasipoisson")
    big = ng.glm("breaks ~ wool * tension", frame, family="quasipoisson")
    table = ng.anova(small, big)
    assert table.attrs["test"] == "F"
    r = run_r(
        TIGHT + "a <- anova(glm(breaks ~ wool + tension, quasipoisson, d, control = tight), "
        "glm(breaks ~ wool * tension, quasipoisson, d, control = tight), test = 'F');"
        "out('F', a$F[2]); out('p', a[['Pr(>F)']][2])",
        d=frame,
    )
    assert_allclose(table["statistic"].iloc[1], r["F"][0], rtol=RTOL)
    assert_allclose(table["p_value"].iloc[1], r["p"][0], rtol=RTOL)


def test_summary_prints_na_for_the_missing_likelihood(data):
    text = str(ng.glm("breaks ~ wool + tension", data["warpbreaks"], family="quasipoisson").summary())
    assert "AIC NA" in text and "Log-likelihood NA" in text and "BIC NA" in text
    assert "(Pearson)" in text and "t_value" in text


@pytest.mark.parametrize(
    "family",
    [QuasiPoisson(), QuasiBinomial(), Quasi(), Quasi(variance="mu^2", link="log"), Quasi("mu(1-mu)", "logit"), Quasi("mu", "power(0.5)")],
    ids=str,
)
def test_registry_spelling_round_trips(family):
    assert get_family(family.registry_name) == family
    assert get_family(family.registry_name).default_link == family.default_link


def test_r_spellings_with_quotes_and_spaces_are_read():
    assert get_family('quasi(variance = "mu(1-mu)", link = "logit")') == Quasi("mu(1-mu)", "logit")
    assert get_family("quasi(link='1/mu^2', variance='mu^3')") == Quasi("mu^3", "inverse_squared")
    assert get_family("QuasiPoisson".lower()) == QuasiPoisson()


@pytest.mark.parametrize(
    ("spelling", "match"),
    [
        ("quasi(variance=mu^4)", "'variance' parameter of quasi"),
        ("quasi(variance=mu, link=softplus)", "'link' parameter of quasi"),
        ("quasi(mu)", "Cannot read the family"),
        ("quasi(variance=mu, variance=mu^2)", "Cannot read the family"),
        ("quasipoisson(2)", "takes no parameter"),
    ],
)
def test_bad_quasi_spellings_are_refused_with_the_spelling(spelling, match):
    with pytest.raises(SpecificationError, match=match):
        get_family(spelling)


def test_quasi_default_link_is_its_own_and_an_explicit_link_wins(data):
    frame = data["quine"]
    implicit = ng.glm("Days ~ Eth", frame, family="quasi(variance=mu, link=log)")
    explicit = ng.glm("Days ~ Eth", frame, family="quasi(variance=mu)", link="log")
    assert implicit.link.name == explicit.link.name == "log"
    assert_allclose(implicit.coef.to_numpy(), explicit.coef.to_numpy(), rtol=1e-12)
    with pytest.raises(SpecificationError, match="not available"):
        ng.glm("Days ~ Eth", frame, family="quasipoisson", link="logit")


@pytest.mark.parametrize("family", ["quasipoisson", "quasi(variance=mu^2, link=log)"])
def test_quasi_fits_save_and_load(family, data):
    frame = data["quine"]
    fit = ng.glm("Days ~ Eth + Sex", frame, family=family)
    buffer = io.BytesIO()
    fit.save(buffer)
    loaded = ng.load(io.BytesIO(buffer.getvalue()))
    assert loaded.family == fit.family and loaded.link == fit.link
    assert_allclose(loaded.predict(frame).to_numpy(), fit.predict(frame).to_numpy(), rtol=1e-12)
    assert np.isnan(loaded.aic) and loaded.dispersion == fit.dispersion


def test_quasi_responses_outside_the_variance_domain_are_refused():
    frame = pd.DataFrame({"y": [-1.0, 2.0, 3.0, 4.0], "x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ng.errors.DomainError, match="quasipoisson"):
        ng.glm("y ~ x", frame, family="quasipoisson")
    with pytest.raises(ng.errors.DomainError, match="y > 0"):
        ng.glm("y ~ x", frame.assign(y=[0.0, 2.0, 3.0, 4.0]), family="quasi(variance=mu^3, link=log)")


@pytest.mark.parametrize(
    "family",
    [QuasiPoisson(), QuasiBinomial(), Quasi(), Quasi("mu(1-mu)"), Quasi("mu"), Quasi("mu^2"), Quasi("mu^3")],
    ids=str,
)
def test_quasi_deviance_laws(family):
    """d(y, y) = 0 and ∂d/∂μ = −2(y − μ)/V(μ): the deviance is the quasi-likelihood of V (McCullagh & Nelder §9.2)."""
    import jax

    low, high = (0.1, 0.9) if family.mu_domain.high == 1.0 else (0.5, 7.0)
    y = np.linspace(low, high, 9)
    mu = y[::-1].copy()
    with jax.enable_x64(True):
        assert_allclose(np.asarray(family.unit_deviance(y, y)), 0.0, atol=1e-12)
        gradient = jax.vmap(jax.grad(lambda y_i, mu_i: family.unit_deviance(y_i, mu_i), argnums=1))(y, mu)
        assert_allclose(np.asarray(gradient), -2.0 * (y - mu) / np.asarray(family.variance(mu)), rtol=1e-9, atol=1e-12)
