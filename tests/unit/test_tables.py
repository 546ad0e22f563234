"""Coefficient tables and summaries: one name for interval columns, the level in the title, counts as integers."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import neuralglm as ng
from neuralglm.errors import SpecificationError
from neuralglm.inference.significance import wald_table
from neuralglm.results.summary import format_count

FORMULA = "claims ~ C(district) + group + age"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def claims():
    return ng.datasets.load_insurance()


@pytest.fixture(scope="module")
def poisson_fit(claims):
    return ng.glm(FORMULA, claims, family="poisson", exposure="holders")


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_coef_table_names_its_interval_lower_upper_at_every_level(poisson_fit, level):
    table = poisson_fit.coef_table(level=level)
    assert list(table.columns) == ["estimate", "std_error", "z_value", "p_value", "lower", "upper"]
    assert table.attrs["level"] == level
    critical = stats.norm.ppf((1 + level) / 2)  # dispersion fixed: z intervals
    assert_allclose(table["lower"], poisson_fit.coef - critical * poisson_fit.std_errors, rtol=1e-12)
    assert_allclose(table["upper"], poisson_fit.coef + critical * poisson_fit.std_errors, rtol=1e-12)
    interval = poisson_fit.conf_int(level=level)
    assert list(interval.columns) == ["lower", "upper"] and interval.attrs["level"] == level
    assert_allclose(interval.to_numpy(), table[["lower", "upper"]].to_numpy(), rtol=0)


def test_t_table_has_the_same_interval_columns(claims):
    fit = ng.glm("claims ~ group + age", claims)  # Gaussian: dispersion estimated, t on df_resid
    table = fit.coef_table(level=0.9)
    assert list(table.columns) == ["estimate", "std_error", "t_value", "p_value", "lower", "upper"]
    assert_allclose(table["upper"] - fit.coef, stats.t.ppf(0.95, fit.df_resid) * fit.std_errors, rtol=1e-12)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, "0.9", True, None, float("nan")])
def test_a_level_outside_zero_one_is_refused(poisson_fit, level):
    with pytest.raises(SpecificationError, match=r"The 'level' parameter must be a float in the range \(0, 1\)"):
        poisson_fit.coef_table(level=level)


def test_wald_table_alone():
    table = wald_table(pd.Series({"a": 2.0}), pd.Series({"a": 1.0}), df_resid=10.0, level=0.8)
    assert table.attrs["level"] == 0.8
    assert_allclose(table.loc["a", ["lower", "upper"]], 2.0 + np.array([-1, 1]) * stats.t.ppf(0.9, 10.0), rtol=1e-12)


def test_summary_titles_the_interval_with_its_level(poisson_fit):
    text = str(poisson_fit.summary())
    assert "Coefficients, with Wald z tests and 95% confidence intervals (lower, upper):" in text
    header = next(line for line in text.splitlines() if line.lstrip().startswith("estimate"))
    assert header.split() == ["estimate", "std_error", "z_value", "p_value", "lower", "upper", "signif"]
    assert "ci_lower" not in text and "ci_upper" not in text
    level_90 = poisson_fit.summary(level=0.9)
    assert "90% confidence intervals (lower, upper)" in str(level_90)
    assert "90% confidence intervals (lower, upper)" in level_90._repr_html_()
    assert level_90.coefficients.attrs["level"] == 0.9
    lower = float(level_90.coefficients.loc["Intercept", "lower"])
    assert_allclose(lower, poisson_fit.conf_int(0.9).loc["Intercept", "lower"], rtol=0)


def test_summary_prints_whole_counts_as_integers(claims):
    doubled = ng.glm("claims ~ group + age", claims, family="poisson", exposure="holders", freq_weights=np.full(64, 2.0))
    assert isinstance(doubled.n_obs, float) and doubled.n_obs == 128.0  # the attribute keeps its value
    text = str(doubled.summary())
    assert "Observations: 128   Df residual: 121   Dispersion" in text
    assert "on 121 df · Null deviance" in text and "on 127 df" in text
    assert not re.search(r"\d\.0\b|\d\.000\b", "\n".join(text.splitlines()[:3] + text.splitlines()[-2:]))
    linear = str(ng.glm("claims ~ group + age", claims).summary())
    assert "Residual standard error: 48.6294 on 57 df" in linear and " on 6 and 57 df, p " in linear


def test_summary_keeps_the_digits_of_a_fractional_count(claims):
    # Fractional frequency weights are allowed: n_obs = 64 × 1.3 = 83.2 is printed, not rounded to 83.
    fit = ng.glm("claims ~ group + age", claims, family="poisson", exposure="holders", freq_weights=np.full(64, 1.3))
    assert "Observations: 83.2   Df residual: 76.2" in str(fit.summary())


@pytest.mark.parametrize(
    ("value", "text"), [(64.0, "64"), (1234567.0, "1,234,567"), (0.0, "0"), (83.2, "83.2"), (np.float64(54.0), "54"), (float("inf"), "inf")]
)
def test_format_count(value, text):
    assert format_count(value) == text


def test_readme_summary_is_what_the_code_prints(poisson_fit):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"The summary prints as statisticians expect:\n\n```text\n(.*?)```", text, flags=re.S)
    assert block is not None
    printed = {line.rstrip() for line in str(poisson_fit.summary()).splitlines()}
    shown = [line for line in block.group(1).splitlines() if line.strip() and line != "..."]
    assert len(shown) >= 8
    for line in shown:
        assert line.rstrip() in printed, line
