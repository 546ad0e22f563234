"""Edge cases found by an independent review: each is a clear error or R's behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import DataError, DataWarning, DivergenceError, SpecificationError


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame({"x": rng.uniform(0.5, 3.0, n), "y": rng.poisson(2.0, n).astype(float), "g": rng.gamma(2.0, size=n)})


def test_links_outside_rs_list_for_the_family_are_refused(df):
    with pytest.raises(SpecificationError, match=r"not available for the gamma family .*available links: inverse, identity, log"):
        ng.glm("g ~ x", df, family="gamma", link="logit")


def test_a_link_that_cannot_map_the_data_gives_a_divergence_error(df):
    with pytest.raises(DivergenceError, match=r"starting values.*default link \(.identity.\)"):
        ng.glm("I(y - 3) ~ x", df, family="gaussian", link="log")


def test_transforms_that_produce_inf_are_reported_or_dropped(df):
    bad = df.copy()
    bad.loc[0, "x"] = 0.0
    with pytest.raises(DataError, match=r"'np.log\(x\)' has 1 row \(0\) missing or infinite.*missing='drop'"):
        ng.glm("y ~ np.log(x)", bad, family="poisson")
    with pytest.warns(DataWarning, match="Dropped 1 of 60 rows"):
        dropped = ng.glm("y ~ np.log(x)", bad, family="poisson", missing="drop")
    clean = ng.glm("y ~ np.log(x)", bad.iloc[1:], family="poisson")
    assert_allclose(dropped.coef, clean.coef, rtol=1e-12)


def test_unused_categorical_levels_are_dropped_as_in_r(df):
    levels = np.array(["a", "b", "c"])[np.arange(len(df)) % 3]
    df["k"] = pd.Categorical(levels, categories=["a", "b", "c", "d"])
    before = df.copy()
    fit = ng.glm("y ~ k", df, family="poisson")
    reference = ng.glm("y ~ k", df.assign(k=df["k"].cat.remove_unused_categories()), family="poisson")
    assert list(fit.coef.index) == ["Intercept", "k[T.b]", "k[T.c]"]
    assert_allclose(fit.coef, reference.coef, rtol=1e-12)
    pd.testing.assert_frame_equal(df, before)


def test_anova_refuses_different_data_and_networks(df):
    df["y2"] = np.random.default_rng(1).poisson(3.0, len(df)).astype(float)
    with pytest.raises(SpecificationError, match="same rows, response, weights and offset"):
        ng.anova(ng.glm("y2 ~ 1", df, family="poisson"), ng.glm("y ~ x", df, family="poisson"))
    net = ng.fit("y ~ x", df, family="poisson", hidden=(2,), solver="lbfgs", activation="tanh", l2=0.1, epochs=3000)
    with pytest.raises(SpecificationError, match="held-out deviance"):
        ng.anova(ng.glm("y ~ 1", df, family="poisson"), net)


def test_pearson_dispersion_without_residual_df_is_nan(df):
    assert np.isnan(ng.glm("y ~ x", df.iloc[:2], dispersion="pearson").dispersion)


def test_dispersion_must_be_a_finite_positive_number(df):
    assert ng.glm("y ~ x", df, dispersion=np.float32(2.0)).dispersion == 2.0
    for bad in (True, float("inf"), -1.0, "mle"):
        with pytest.raises(
            SpecificationError,
            match=r"The 'dispersion' parameter of glm must be (None, a str among \{'pearson'\} or )?a float in the range \(0\.0, inf\)",
        ):
            ng.glm("y ~ x", df, dispersion=bad)


def test_unknown_residual_type_is_a_specification_error(df):
    with pytest.raises(SpecificationError, match="choose one of deviance, pearson, response, working"):
        ng.glm("y ~ x", df).residuals("student")


def test_empty_data_says_so(df):
    with pytest.raises(DataError, match="The data have no rows"):
        ng.glm("y ~ x", df.iloc[:0], family="poisson")


def test_unseen_integer_level_is_named_in_full(df):
    df["k"] = np.arange(len(df)) % 2 + 1
    fit = ng.glm("y ~ C(k)", df, family="poisson")
    with pytest.raises(DataError, match=r"not seen when fitting: \{np.int64\(5\)\}"):
        fit.predict(pd.DataFrame({"k": [5]}))


def test_polars_categorical_levels_are_sorted_like_r_factor():
    frame = pl.DataFrame({"k": pl.Series(["b", "a", "c", "a", "b", "c"], dtype=pl.Categorical), "y": [1.0, 2, 3, 2, 1, 3]})
    from_polars = ng.glm("y ~ k", frame)
    from_strings = ng.glm("y ~ k", frame.to_pandas().assign(k=lambda d: d["k"].astype(str)))
    assert list(from_polars.coef.index) == list(from_strings.coef.index) == ["Intercept", "k[T.b]", "k[T.c]"]
    assert_allclose(from_polars.coef, from_strings.coef, rtol=1e-12)


def test_glm_fit_keeps_a_reference_to_x_and_refuses_it_once_edited(df):
    # No defensive copy (0.28 s at n = 1e6, p = 100): the fit keeps the caller's matrix, as
    # statsmodels keeps exog, and whatever reads it after the fit first checks it is unchanged.
    X = np.column_stack([np.ones(len(df)), df["x"].to_numpy()])
    fit = ng.glm_fit(X, df["y"].to_numpy(), "poisson")
    assert np.shares_memory(fit.design.X, X)
    before = ng.influence(fit)
    coef = fit.coef.copy()
    X[3, 1] += 1.0
    with pytest.raises(DataError, match=r"X passed to glm_fit was modified after the fit .*'x2'.*pass X.copy\(\)"):
        ng.influence(fit)
    pd.testing.assert_series_equal(fit.coef, coef)  # the estimates themselves are stored, not recomputed
    X[3, 1] -= 1.0
    pd.testing.assert_frame_equal(ng.influence(fit), before)


def test_glm_fit_copies_x_only_to_convert_it(df):
    X = np.column_stack([np.ones(len(df)), df["x"].to_numpy()]).astype(np.float32)
    fit = ng.glm_fit(X, df["y"].to_numpy(), "poisson")
    assert fit.design.X.dtype == np.float64 and fit.design.X.flags.c_contiguous
    assert not np.shares_memory(fit.design.X, X)


def test_fixed_dispersion_stays_fixed_without_residual_df(df):
    # R's summary.glm: dispersion 1 for Poisson whatever df.residual is (a saturated fit included).
    assert ng.glm("y ~ x", df.iloc[:2], family="poisson").dispersion == 1.0


def test_a_bad_cov_type_is_refused_before_a_network_trains(df):
    with pytest.raises(
        SpecificationError,
        match=r"The 'cov_type' parameter of fit must be a str among \{'expected', 'observed', 'sandwich'\}\. Got 'hc3' instead\.",
    ):
        ng.fit("y ~ x", df, family="poisson", hidden=(2,), cov_type="hc3")
