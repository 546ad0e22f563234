"""Analysis of deviance by term against live R: ``anova(fit)``, ``drop1``, ``add1`` and ``step``.

Every table is computed by R (stats 4.2) and here on R's own datasets, and compared number
for number: degrees of freedom, deviances, AIC, test statistics and p-values, row labels and
order. R's models are fitted with ``glm.control(epsilon = 1e-12)`` (its sub-model fits inherit
it), so that both sides are converged fits and 1e-6 relative is a real check of the formulas —
a wrong dispersion, df or AIC shift moves numbers by percents.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import SpecificationError
from r_session import r_dataset, require_r, run_r, unordered

RTOL = 1e-6
PRELUDE = """
tight <- glm.control(epsilon = 1e-12, maxit = 100)
tab <- function(name, a) {
  for (col in names(a)) if (is.numeric(a[[col]])) out(paste0(name, '|', col), a[[col]])
  out(paste0(name, '|rows'), setNames(seq_len(nrow(a)), if (is.null(a$Step)) rownames(a) else as.character(a$Step)))
}
"""


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    require_r("MASS")
    mtcars = r_dataset("mtcars")
    mtcars["cyl"] = pd.Categorical(mtcars["cyl"].astype(int).astype(str))
    return {
        "warpbreaks": r_dataset("warpbreaks"),
        "esoph": unordered(r_dataset("esoph")),
        "mtcars": mtcars,
        "infert": r_dataset("infert"),
        "Insurance": unordered(r_dataset("Insurance", "MASS")),
    }


# id -> (R code making the table `a`, neuralglm call making the table)
ANOVA = {
    "poisson_chisq": (
        "anova(glm(breaks ~ wool * tension, poisson, warpbreaks, control = tight), test = 'Chisq')",
        lambda d: ng.anova(ng.glm("breaks ~ wool * tension", d["warpbreaks"], family="poisson"), test="Chisq"),
    ),
    "quasipoisson_f": (
        "anova(glm(breaks ~ wool * tension, quasipoisson, warpbreaks, control = tight), test = 'F')",
        lambda d: ng.anova(ng.glm("breaks ~ wool * tension", d["warpbreaks"], family="quasipoisson")),
    ),
    "gaussian_f": (
        "anova(glm(mpg ~ wt + cyl + hp, gaussian, mtcars, control = tight), test = 'F')",
        lambda d: ng.anova(ng.glm("mpg ~ wt + cyl + hp", d["mtcars"]), test="F"),
    ),
    "gamma_chisq": (
        "anova(glm(mpg ~ wt + cyl + hp, Gamma(link = 'log'), mtcars, control = tight), test = 'Chisq')",
        lambda d: ng.anova(ng.glm("mpg ~ wt + cyl + hp", d["mtcars"], family="gamma", link="log"), test="Chisq"),
    ),
    "binomial_trials": (
        "anova(glm(cbind(ncases, ncontrols) ~ agegp + alcgp + tobgp, binomial, esoph, control = tight), test = 'Chisq')",
        lambda d: ng.anova(ng.glm("cbind(ncases, ncontrols) ~ agegp + alcgp + tobgp", d["esoph"], family="binomial")),
    ),
    "poisson_offset": (
        "anova(glm(Claims ~ District + Group + Age, poisson, Insurance, offset = log(Holders), control = tight), test = 'Chisq')",
        lambda d: ng.anova(ng.glm("Claims ~ District + Group + Age", d["Insurance"], family="poisson", exposure="Holders")),
    ),
    "no_intercept": (
        "anova(glm(breaks ~ 0 + tension + wool, poisson, warpbreaks, control = tight), test = 'Chisq')",
        lambda d: ng.anova(ng.glm("breaks ~ 0 + tension + wool", d["warpbreaks"], family="poisson")),
    ),
}

DROP1 = {
    "poisson_marginality": (
        "drop1(glm(breaks ~ wool * tension, poisson, warpbreaks, control = tight), test = 'Chisq')",
        lambda d: ng.drop1(ng.glm("breaks ~ wool * tension", d["warpbreaks"], family="poisson"), test="Chisq"),
    ),
    "poisson_additive_bic": (
        "drop1(glm(breaks ~ wool + tension, poisson, warpbreaks, control = tight), test = 'Chisq', k = log(54))",
        lambda d: ng.drop1(ng.glm("breaks ~ wool + tension", d["warpbreaks"], family="poisson"), test="Chisq", k=math.log(54)),
    ),
    "quasipoisson_f": (
        "drop1(glm(breaks ~ wool + tension, quasipoisson, warpbreaks, control = tight), test = 'F')",
        lambda d: ng.drop1(ng.glm("breaks ~ wool + tension", d["warpbreaks"], family="quasipoisson")),
    ),
    "quasipoisson_scaled_chisq": (
        "drop1(glm(breaks ~ wool + tension, quasipoisson, warpbreaks, control = tight), test = 'Chisq')",
        lambda d: ng.drop1(ng.glm("breaks ~ wool + tension", d["warpbreaks"], family="quasipoisson"), test="Chisq"),
    ),
    "gaussian_f": (
        "drop1(glm(mpg ~ wt + hp + qsec + cyl, gaussian, mtcars, control = tight), test = 'F')",
        lambda d: ng.drop1(ng.glm("mpg ~ wt + hp + qsec + cyl", d["mtcars"])),
    ),
    "gaussian_lrt": (
        "drop1(glm(mpg ~ wt + hp + qsec + cyl, gaussian, mtcars, control = tight), test = 'LRT')",
        lambda d: ng.drop1(ng.glm("mpg ~ wt + hp + qsec + cyl", d["mtcars"]), test="LRT"),
    ),
    "gaussian_scale": (
        "drop1(glm(mpg ~ wt + hp, gaussian, mtcars, control = tight), test = 'Chisq', scale = 6)",
        lambda d: ng.drop1(ng.glm("mpg ~ wt + hp", d["mtcars"]), test="Chisq", scale=6.0),
    ),
    "gamma_chisq": (
        "drop1(glm(mpg ~ wt + hp + cyl, Gamma(link = 'log'), mtcars, control = tight), test = 'Chisq')",
        lambda d: ng.drop1(ng.glm("mpg ~ wt + hp + cyl", d["mtcars"], family="gamma", link="log"), test="Chisq"),
    ),
    "binomial_scope": (
        "drop1(glm(case ~ spontaneous + induced + age + education, binomial, infert, control = tight), ~ age + education, test = 'Chisq')",
        lambda d: ng.drop1(ng.glm("case ~ spontaneous + induced + age + education", d["infert"], family="binomial"), "~ age + education"),
    ),
    "poisson_offset": (
        "drop1(glm(Claims ~ District + Group + Age, poisson, Insurance, offset = log(Holders), control = tight), test = 'Chisq')",
        lambda d: ng.drop1(ng.glm("Claims ~ District + Group + Age", d["Insurance"], family="poisson", exposure="Holders")),
    ),
}

ADD1 = {
    "poisson_interaction": (
        "add1(glm(breaks ~ wool + tension, poisson, warpbreaks, control = tight), ~ .^2, test = 'Chisq')",
        lambda d: ng.add1(ng.glm("breaks ~ wool + tension", d["warpbreaks"], family="poisson"), "~ .^2"),
    ),
    "poisson_marginality": (
        "add1(glm(breaks ~ wool, poisson, warpbreaks, control = tight), ~ wool * tension, test = 'Chisq')",
        lambda d: ng.add1(ng.glm("breaks ~ wool", d["warpbreaks"], family="poisson"), "~ wool * tension"),
    ),
    "gaussian_f": (
        "add1(glm(mpg ~ wt, gaussian, mtcars, control = tight), ~ . + hp + qsec + cyl + drat, test = 'F')",
        lambda d: ng.add1(ng.glm("mpg ~ wt", d["mtcars"]), "~ . + hp + qsec + cyl + drat"),
    ),
    "quasipoisson_f": (
        "add1(glm(breaks ~ wool, quasipoisson, warpbreaks, control = tight), ~ . + tension, test = 'F')",
        lambda d: ng.add1(ng.glm("breaks ~ wool", d["warpbreaks"], family="quasipoisson"), "~ . + tension"),
    ),
    "binomial_chisq": (
        "add1(glm(case ~ age, binomial, infert, control = tight), ~ . + spontaneous + induced + parity + education, test = 'Chisq')",
        lambda d: ng.add1(ng.glm("case ~ age", d["infert"], family="binomial"), ["spontaneous", "induced", "parity", "education"]),
    ),
    "gamma_chisq_offset_free": (
        "add1(glm(mpg ~ wt, Gamma, mtcars, control = tight), ~ . + hp + cyl, test = 'Chisq')",
        lambda d: ng.add1(ng.glm("mpg ~ wt", d["mtcars"], family="gamma"), "~ . + hp + cyl", test="Chisq"),
    ),
}

STEP = {
    "gaussian_backward": (
        "step(glm(mpg ~ wt + hp + qsec + drat + disp + cyl, gaussian, mtcars, control = tight), trace = 0)$anova",
        lambda d: ng.step(ng.glm("mpg ~ wt + hp + qsec + drat + disp + cyl", d["mtcars"])),
    ),
    "binomial_forward": (
        "step(glm(case ~ 1, binomial, infert, control = tight), scope = ~ spontaneous + induced + age + parity + education,"
        " direction = 'forward', trace = 0)$anova",
        lambda d: ng.step(
            ng.glm("case ~ 1", d["infert"], family="binomial"), "~ spontaneous + induced + age + parity + education", "forward"
        ),
    ),
    "poisson_both_lower_upper": (
        "step(glm(breaks ~ wool, poisson, warpbreaks, control = tight), scope = list(lower = ~ wool, upper = ~ wool * tension),"
        " trace = 0)$anova",
        lambda d: ng.step(ng.glm("breaks ~ wool", d["warpbreaks"], family="poisson"), {"lower": "~ wool", "upper": "~ wool * tension"}),
    ),
    "gaussian_both_bic": (
        "step(glm(mpg ~ wt + hp + qsec + drat + disp, gaussian, mtcars, control = tight), scope = ~ .^2, k = log(32), trace = 0)$anova",
        lambda d: ng.step(ng.glm("mpg ~ wt + hp + qsec + drat + disp", d["mtcars"]), "~ .^2", k=math.log(32)),
    ),
    "poisson_offset": (
        "step(glm(Claims ~ District * Group + Age, poisson, Insurance, offset = log(Holders), control = tight), trace = 0)$anova",
        lambda d: ng.step(ng.glm("Claims ~ District * Group + Age", d["Insurance"], family="poisson", exposure="Holders")),
    ),
}

# Our column -> R's column (statistic columns depend on the test and are listed per table kind).
ANOVA_COLUMNS = {"df": "Df", "deviance_change": "Deviance", "df_resid": "Resid. Df", "deviance": "Resid. Dev"}
DROP_COLUMNS = {"df": "Df", "deviance": "Deviance", "aic": "AIC"}
STEP_COLUMNS = {"df": "Df", "deviance_change": "Deviance", "df_resid": "Resid. Df", "deviance": "Resid. Dev", "aic": "AIC"}


@pytest.fixture(scope="module")
def r_tables(data) -> dict:
    code = [PRELUDE]
    for kind, cases in (("anova", ANOVA), ("drop1", DROP1), ("add1", ADD1), ("step", STEP)):
        code += [f"tab('{kind}:{name}', {r_code})" for name, (r_code, _) in cases.items()]
    return run_r("\n".join(code), **data)


def _r_column(r_tables, key: str, column: str) -> np.ndarray | None:
    return r_tables.get(f"{key}|{column}")


def _compare(table: pd.DataFrame, r_tables: dict, key: str, columns: dict[str, str]) -> None:
    assert table.index.tolist() == r_tables[f"{key}|rows"].names
    for ours, theirs in columns.items():
        assert_allclose(table[ours].to_numpy(float), r_tables[f"{key}|{theirs}"], rtol=RTOL, atol=1e-9, err_msg=f"{key} {ours}")


def _compare_tests(table: pd.DataFrame, r_tables: dict, key: str) -> None:
    """F value and Pr(>F), or the (scaled) LRT and Pr(>Chi), whichever R computed."""
    if table.attrs["test"] == "F":
        statistic = _r_column(r_tables, key, "F value")
        statistic = statistic if statistic is not None else _r_column(r_tables, key, "F")
        p_value = r_tables[f"{key}|Pr(>F)"]
    else:
        statistic = next((r_tables[f"{key}|{c}"] for c in ("LRT", "scaled dev.") if f"{key}|{c}" in r_tables), None)
        p_value = r_tables[f"{key}|Pr(>Chi)"]
    if statistic is not None:
        assert_allclose(table["statistic"].to_numpy(float), statistic, rtol=RTOL, atol=1e-9, err_msg=f"{key} statistic")
    assert_allclose(table["p_value"].to_numpy(float), p_value, rtol=1e-5, atol=1e-14, err_msg=f"{key} p_value")


@pytest.mark.parametrize("name", list(ANOVA))
def test_sequential_anova_matches_r(name, data, r_tables):
    table = ANOVA[name][1](data)
    assert table.columns.tolist() == ["df", "deviance_change", "df_resid", "deviance", "statistic", "p_value"]
    key = f"anova:{name}"
    _compare(table, r_tables, key, ANOVA_COLUMNS)
    _compare_tests(table, r_tables, key)
    if table.attrs["test"] == "Chisq":  # R prints no statistic: it is the deviance change over the dispersion
        expected = r_tables[f"{key}|Deviance"] / table.attrs["dispersion"]
        assert_allclose(table["statistic"].to_numpy(float), expected, rtol=RTOL)


@pytest.mark.parametrize("name", list(DROP1))
def test_drop1_matches_r(name, data, r_tables):
    _check_single_term_table(DROP1[name][1](data), r_tables, f"drop1:{name}")


@pytest.mark.parametrize("name", list(ADD1))
def test_add1_matches_r(name, data, r_tables):
    _check_single_term_table(ADD1[name][1](data), r_tables, f"add1:{name}")


def _check_single_term_table(table: pd.DataFrame, r_tables: dict, key: str) -> None:
    assert table.columns.tolist() == ["df", "deviance", "aic", "statistic", "p_value"]
    if f"{key}|AIC" in r_tables:
        _compare(table, r_tables, key, DROP_COLUMNS)
    else:  # quasi families: R drops the AIC column, which is NaN here
        _compare(table, r_tables, key, {"df": "Df", "deviance": "Deviance"})
        assert table["aic"].isna().all()
    _compare_tests(table, r_tables, key)


@pytest.mark.parametrize("name", list(STEP))
def test_step_path_and_final_model_match_r(name, data, r_tables):
    result = STEP[name][1](data)
    key = f"step:{name}"
    path = result.path
    assert path.columns.tolist() == ["step", "df", "deviance_change", "df_resid", "deviance", "aic"]
    assert [label.replace(" ", "") for label in path["step"]] == [label.replace(" ", "") for label in r_tables[f"{key}|rows"].names]
    for ours, theirs in STEP_COLUMNS.items():
        assert_allclose(path[ours].to_numpy(float), r_tables[f"{key}|{theirs}"], rtol=RTOL, atol=1e-9, err_msg=f"{key} {ours}")
    assert_allclose(result.fit.deviance, path["deviance"].iloc[-1], rtol=1e-12)
    assert result.fit.call is not None  # the selected model is a fit like any other: it can be refitted


# ---- behaviour beyond R's numbers ------------------------------------------------------------------------------


def test_anova_of_a_model_without_terms_is_its_null_row(data):
    fit = ng.glm("breaks ~ 1", data["warpbreaks"], family="poisson")
    table = ng.anova(fit)
    assert table.index.tolist() == ["NULL"]
    assert_allclose(table["deviance"].iloc[0], fit.deviance, rtol=1e-10)


def test_f_test_with_a_fixed_dispersion_warns_as_r_does(data):
    fit = ng.glm("breaks ~ wool + tension", data["warpbreaks"], family="poisson")
    with pytest.warns(UserWarning, match="quasi"):
        table = ng.drop1(fit, test="F")
    assert table.attrs["test"] == "F"


def test_tables_refuse_what_they_cannot_compute(data):
    frame = data["warpbreaks"]
    fit = ng.glm("breaks ~ wool + tension", frame, family="poisson")
    with pytest.raises(SpecificationError, match="'test' parameter of drop1"):
        ng.drop1(fit, test="Rao")
    with pytest.raises(SpecificationError, match="can only drop terms of the model"):
        ng.drop1(fit, "~ wool:tension")
    with pytest.raises(SpecificationError, match="no terms"):
        ng.add1(fit, "~ wool + tension")
    with pytest.raises(SpecificationError, match="upper scope must contain"):
        ng.add1(fit, "~ wool")
    with pytest.raises(SpecificationError, match="'k' parameter"):
        ng.drop1(fit, k=-1)
    with pytest.raises(SpecificationError, match="AIC is not defined"):
        ng.step(ng.glm("breaks ~ wool + tension", frame, family="quasipoisson"))
    with pytest.raises(SpecificationError, match="'direction' parameter of step"):
        ng.step(fit, direction="sideways")
    X = np.column_stack([np.ones(len(frame)), (frame["wool"] == "B").to_numpy(float)])
    with pytest.raises(SpecificationError, match="formula"):
        ng.anova(ng.glm_fit(X, frame["breaks"].to_numpy(float), family="poisson"))


def test_step_and_add1_need_the_call_and_loaded_models_say_so(data, tmp_path):
    fit = ng.glm("breaks ~ wool + tension", data["warpbreaks"], family="poisson")
    path = tmp_path / "model.npz"
    fit.save(path, include_data=True)
    loaded = ng.load(path)
    assert_allclose(ng.drop1(loaded)["deviance"].to_numpy(), ng.drop1(fit)["deviance"].to_numpy(), rtol=1e-10)
    with pytest.raises(SpecificationError, match="loaded from a file"):
        ng.add1(loaded, "~ .^2")


def test_user_data_is_not_mutated(data):
    frame = data["mtcars"].copy()
    before = frame.copy()
    ng.step(ng.glm("mpg ~ wt + hp + qsec", frame), "~ .^2")
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize(("family", "r_family"), [("poisson", "poisson"), ("quasipoisson", "quasipoisson"), ("gaussian", "gaussian")])
def test_anova_of_two_models_with_an_f_test_matches_r(data, family, r_family):
    # R's anova.glmlist: a fixed dispersion (poisson) has infinite denominator df, an estimated one df_resid.
    r = run_r(
        f"""tight <- glm.control(epsilon = 1e-12, maxit = 100)
        a <- anova(glm(breaks ~ wool, {r_family}, d, control = tight), glm(breaks ~ wool + tension, {r_family}, d, control = tight), test = 'F')
        out('F', a[['F']][2]); out('p', a[['Pr(>F)']][2])""",
        d=data["warpbreaks"],
    )
    small = ng.glm("breaks ~ wool", data["warpbreaks"], family=family)
    big = ng.glm("breaks ~ wool + tension", data["warpbreaks"], family=family)
    if family == "poisson":
        with pytest.warns(UserWarning, match="quasi"):
            table = ng.anova(small, big, test="F")
    else:
        table = ng.anova(small, big, test="F")
    assert_allclose(table[["statistic", "p_value"]].iloc[1].to_numpy(float), [r["F"][0], r["p"][0]], rtol=1e-6)
