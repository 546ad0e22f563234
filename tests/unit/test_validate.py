"""Every bad input of the GLM front door gives an error (or warning) that says what, where and what to do.

Each ``match=`` pins the useful parts of the message: the column, the count and first rows,
and the advice. Where the library still fits (dropped rows, non-integer counts, polars input,
cbind), the fit is compared with the fit it must equal, at the invariance tolerance of
``tests/properties/test_invariances.py`` (same estimator on the same rows: ≤ 1e-6 SE).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import (
    ConvergenceWarning,
    DataError,
    DataWarning,
    DivergenceError,
    DomainError,
    RankDeficientError,
    SeparationWarning,
    SpecificationError,
)
from neuralglm.fit.info import Status

N = 60


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=N),
            "x2": rng.normal(size=N),
            "region": rng.choice(["north", "south", "west"], size=N),
            "exposure": rng.uniform(0.5, 2.0, size=N),
        }
    )
    frame["claims"] = rng.poisson(frame["exposure"] * np.exp(0.3 + 0.4 * frame["x1"])).astype(float)
    frame["amount"] = rng.gamma(4.0, np.exp(0.5 + 0.2 * frame["x2"]) / 4.0)
    frame["trials"] = rng.integers(1, 8, size=N).astype(float)
    frame["successes"] = rng.binomial(frame["trials"].astype(int), 0.4).astype(float)
    frame["failures"] = frame["trials"] - frame["successes"]
    return frame


def assert_same_fit(a: ng.FitResult, b: ng.FitResult) -> None:
    """Same estimator on the same rows: estimates within 1e-6 SE, deviance to 1e-10 relative."""
    pd.testing.assert_index_equal(a.coef.index, b.coef.index)
    assert np.all(np.abs(a.coef.to_numpy() - b.coef.to_numpy()) <= 1e-6 * a.std_errors.to_numpy())
    assert_allclose(a.std_errors.to_numpy(), b.std_errors.to_numpy(), rtol=1e-7)
    assert_allclose([a.deviance, a.loglik], [b.deviance, b.loglik], rtol=1e-10)


# ---- missing values -------------------------------------------------------------------------


def test_nan_and_inf_in_used_columns_raise_with_counts_and_rows(df):
    df.loc[[3, 7], "x1"] = np.nan
    df.loc[5, "claims"] = np.inf
    message = r"'x1' has 2 rows \(3, 7\) missing or infinite; 'claims' has 1 row \(5\) missing or infinite\..*missing='drop'"
    with pytest.raises(DataError, match=message):
        ng.glm("claims ~ x1 + x2", df, family="poisson")


def test_nan_in_unused_column_is_ignored(df):
    df.loc[0, "amount"] = np.nan
    fit = ng.glm("claims ~ x1", df, family="poisson")
    assert fit.n_obs == N


def test_missing_drop_warns_and_equals_fitting_the_clean_rows(df):
    df.loc[[3, 7], "x1"] = np.nan
    df.loc[5, "claims"] = np.inf
    weights = np.linspace(0.5, 1.5, N)
    with pytest.warns(DataWarning, match=r"Dropped 3 of 60 rows .*'x1' has 2 rows \(3, 7\)"):
        dropped = ng.glm("claims ~ x1 + x2", df, family="poisson", weights=weights, exposure="exposure", missing="drop")
    clean = np.isfinite(df["x1"]) & np.isfinite(df["claims"])
    reference = ng.glm("claims ~ x1 + x2", df[clean], family="poisson", weights=weights[clean.to_numpy()], exposure="exposure")
    assert dropped.n_obs == N - 3
    assert_same_fit(dropped, reference)
    assert list(dropped.predict().index) == list(df.index[clean])


def test_missing_in_weights_array_names_the_argument(df):
    weights = np.ones(N)
    weights[4] = np.nan
    with pytest.raises(DataError, match=r"'weights' has 1 row \(4\) missing or infinite"):
        ng.glm("claims ~ x1", df, family="poisson", weights=weights)


def test_missing_in_a_factor_column(df):
    df.loc[[1, 2], "region"] = None
    with pytest.raises(DataError, match=r"'region' has 2 rows \(1, 2\) missing"):
        ng.glm("claims ~ C(region)", df, family="poisson")


def test_unknown_missing_option(df):
    with pytest.raises(DataError, match="missing must be 'raise' or 'drop'; got 'omit'"):
        ng.glm("claims ~ x1", df, family="poisson", missing="omit")


def test_nan_in_design_matrix_of_glm_fit():
    X = np.column_stack([np.ones(5), [1.0, np.nan, 3.0, 4.0, 5.0]])
    with pytest.raises(DataError, match=r"X has missing or infinite values: 'x' has 1 row \(1\)"):
        ng.glm_fit(X, np.arange(5.0), column_names=["Intercept", "x"])


# ---- response outside the family's domain ---------------------------------------------------


@pytest.mark.parametrize(
    ("family", "column", "values", "condition"),
    [
        ("poisson", "claims", {2: -1.0, 4: -3.0, 9: -1.0}, "y ≥ 0"),
        ("negative_binomial(0.5)", "claims", {2: -1.0}, "y ≥ 0"),
        ("binomial", "successes", {0: 1.5, 8: -0.5}, "0 ≤ y ≤ 1"),
        ("gamma", "amount", {1: 0.0, 6: -2.0}, "y > 0"),
        ("inverse_gaussian", "amount", {1: 0.0}, "y > 0"),
    ],
)
def test_response_outside_domain(df, family, column, values, condition):
    df[column] = 0.5 if family == "binomial" else df[column]
    for row, value in values.items():
        df.loc[row, column] = value
    rows = ", ".join(str(r) for r in values)
    noun = "row" if len(values) == 1 else "rows"
    message = (
        rf"needs {condition}; response '{column}' has {len(values)} {noun} \({rows}\) outside that range\. Fix the data, or choose a family"
    )
    with pytest.raises(DomainError, match=message):
        ng.glm(f"{column} ~ x1", df, family=family)


def test_binomial_counts_point_to_proportions_or_cbind(df):
    with pytest.raises(DomainError, match=r"0 ≤ y ≤ 1.*proportion with weights=trials, or write cbind\(successes, failures\)"):
        ng.glm("trials ~ x1", df, family="binomial")


@pytest.mark.parametrize("family", ["poisson", "negative_binomial(0.5)"])
def test_non_integer_counts_only_warn(df, family):
    df.loc[[0, 3], "claims"] += 0.5
    with pytest.warns(DataWarning, match=r"expects whole counts; response 'claims' has 2 rows \(0, 3\) that are not whole"):
        fit = ng.glm("claims ~ x1", df, family=family)
    assert fit.info.converged


def test_non_integer_binomial_successes_only_warn(df):
    with pytest.warns(DataWarning, match=r"whole numbers of successes \(y × weights\); response 'p' has 60 rows"):
        ng.glm("p ~ x1", df.assign(p=0.3), family="binomial", weights=np.full(N, 2.0))


# ---- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: ng.glm("claims ~ x1 + x_2", d, family="poisson"), r"Unknown column 'x_2' \(did you mean 'x2'\?\) in formula"),
        (lambda d: ng.glm("claims ~ np.log(exposre)", d, family="poisson"), r"Unknown column 'exposre' \(did you mean 'exposure'\?\)"),
        (
            lambda d: ng.glm("clams ~ x1", d, family="poisson"),
            r"Unknown column 'clams' \(did you mean 'claims'\?\) in the formula's response",
        ),
        (
            lambda d: ng.glm("claims ~ x1", d, family="poisson", weights="trails"),
            r"Unknown column 'trails' \(did you mean 'trials'\?\) in weights=",
        ),
        (
            lambda d: ng.glm("claims ~ x1", d, family="poisson", exposure="exposur"),
            r"Unknown column 'exposur' \(did you mean 'exposure'\?\) in exposure=",
        ),
        (
            lambda d: ng.glm("cbind(successes, fails) ~ x1", d, family="binomial"),
            r"Unknown column 'fails' \(did you mean 'failures'\?\) in the formula's cbind",
        ),
        (lambda d: ng.glm("claims ~ age", d, family="poisson"), r"Unknown column 'age' in formula .*The data have columns: x1, x2, region"),
    ],
    ids=["rhs", "inside-function", "response", "weights", "exposure", "cbind", "no-close-match"],
)
def test_unknown_column_names(df, call, message):
    with pytest.raises(DataError, match=message):
        call(df)


def test_unknown_family_lists_valid_ones(df):
    with pytest.raises(
        SpecificationError, match=r"Unknown family 'poison'\. Valid families: gaussian, binomial, poisson, gamma, inverse_gaussian"
    ):
        ng.glm("claims ~ x1", df, family="poison")


def test_unknown_link_lists_valid_ones(df):
    with pytest.raises(SpecificationError, match=r"Unknown link 'lgo'\. Valid links: identity, log, logit, probit, cloglog, inverse"):
        ng.glm("claims ~ x1", df, family="poisson", link="lgo")


@pytest.mark.parametrize(
    ("family", "link", "message"),
    [
        ("tweedie(0.5)", None, r"The 'power' parameter of Tweedie must be a float ≤ 0 or ≥ 1 .*Got 0\.5 instead\."),
        (
            "negative_binomial(-1)",
            None,
            r"The 'alpha' parameter of NegativeBinomial must be a float in the range \(0, inf\)\. Got -1\.0 instead\.",
        ),
        ("poisson(2)", None, r"Family 'poisson' takes no parameter"),
        ("poisson", "power", r"The power link needs its exponent, e\.g\. 'power\(0\.5\)'"),
        ("poisson", "log(2)", r"Link 'log' takes no parameter"),
    ],
)
def test_bad_family_or_link_parameters(df, family, link, message):
    with pytest.raises(SpecificationError, match=message):
        ng.glm("claims ~ x1", df, family=family, link=link)


def test_formula_without_tilde(df):
    with pytest.raises(DataError, match=r"one '~' with the response on the left, like 'y ~ x1 \+ x2'"):
        ng.glm("claims x1", df, family="poisson")


# ---- weights, offsets, exposure -------------------------------------------------------------


def test_non_positive_exposure(df):
    df.loc[[0, 2], "exposure"] = [0.0, -1.0]
    with pytest.raises(DomainError, match=r"exposure must be > 0 .*'exposure' has 2 rows \(0, 2\) that are zero or negative"):
        ng.glm("claims ~ x1", df, family="poisson", exposure="exposure")
    with pytest.raises(DomainError, match=r"exposure must be > 0 .*'exposure' has 2 rows \(0, 2\)"):
        ng.glm("claims ~ x1", df, family="poisson", exposure=df["exposure"].to_numpy())


@pytest.mark.parametrize("argument", ["weights", "freq_weights"])
def test_negative_weights(df, argument):
    values = np.ones(N)
    values[[5, 9]] = -1.0
    with pytest.raises(DomainError, match=rf"{argument} must be ≥ 0; 2 rows \(5, 9\) are negative"):
        ng.glm("claims ~ x1", df, family="poisson", **{argument: values})


def test_all_zero_weights(df):
    with pytest.raises(DomainError, match="weights are all zero"):
        ng.glm("claims ~ x1", df, family="poisson", weights=np.zeros(N))


@pytest.mark.parametrize(("argument", "length"), [("offset", N - 1), ("weights", N + 3), ("exposure", 2), ("freq_weights", N - 10)])
def test_length_mismatch(df, argument, length):
    with pytest.raises(DataError, match=rf"{argument} has {length} values but the data have {N} rows; they must match"):
        ng.glm("claims ~ x1", df, family="poisson", **{argument: np.ones(length)})


def test_length_mismatch_in_glm_fit():
    with pytest.raises(DataError, match="y has 4 values but the data have 5 rows"):
        ng.glm_fit(np.ones((5, 1)), np.ones(4))
    with pytest.raises(DataError, match="column_names has 3 names but X has 1 columns"):
        ng.glm_fit(np.ones((5, 1)), np.ones(5), column_names=["a", "b", "c"])


# ---- rank deficiency ------------------------------------------------------------------------


def test_linear_combination_names_the_aliased_column(df):
    with pytest.raises(RankDeficientError, match=r"1 column\(s\) .*'x3' ≈ 1·x1 \+ 1·x2\. Drop the aliased column"):
        ng.glm("claims ~ x1 + x2 + x3", df.assign(x3=df["x1"] + df["x2"]), family="poisson")


def test_duplicated_dummy_names_the_factor_level(df):
    df["is_south"] = (df["region"] == "south").astype(float)
    with pytest.raises(RankDeficientError, match=r"'is_south' ≈ 1·C\(region\)\[T\.south\].*merge factor levels"):
        ng.glm("claims ~ x1 + C(region) + is_south", df, family="poisson")


def test_all_zero_column_and_duplicated_column(df):
    with pytest.raises(RankDeficientError, match=r"'zero' is all zeros"):
        ng.glm("claims ~ x1 + zero", df.assign(zero=0.0), family="poisson")
    X = np.column_stack([np.ones(N), df["x1"], 2.0 * df["x1"]])
    with pytest.raises(RankDeficientError, match=r"'b' ≈ 2·a"):
        ng.glm_fit(X, df["claims"], family="poisson", column_names=["Intercept", "a", "b"])


@pytest.mark.parametrize(("family", "link"), [("gaussian", "identity"), ("gamma", "log")])
def test_rank_deficiency_is_found_for_every_solver_path(df, family, link):
    """Closed-form least squares and IRLS both refuse an aliased design."""
    with pytest.raises(RankDeficientError, match=r"'x3' ≈ 1·x1 \+ 1·x2"):
        ng.glm("amount ~ x1 + x2 + x3", df.assign(x3=df["x1"] + df["x2"]), family=family, link=link)


# ---- solver outcomes ------------------------------------------------------------------------


def test_perfect_separation_warns_and_is_recorded():
    data = pd.DataFrame({"x": np.linspace(-1.0, 1.0, 40)})
    data["y"] = (data["x"] > 0).astype(float)
    with pytest.warns(SeparationWarning, match=r"\(quasi-\)separated.*\(\d+ of 40 fitted probabilities are 0 or 1\.\)"):
        fit = ng.glm("y ~ x", data, family="binomial")
    assert fit.info.status is Status.SEPARATION
    assert "separated" in fit.info.message


def test_non_convergence_warns_and_returns(df):
    with pytest.warns(
        ConvergenceWarning, match=r"IRLS did not converge in 2 iterations \(last relative deviance change (\d\.\d\de[-+]\d+)\)"
    ):
        fit = ng.glm("claims ~ x1 + x2", df, family="poisson", max_iter=2)
    assert fit.info.converged is False
    assert fit.info.status is Status.ITERATION_LIMIT
    assert fit.info.n_iter == 2
    # The reported change is the last iteration's, not zero (the deviance still moved).
    history = fit.info.history["objective"].to_numpy()
    assert abs(history[-1] - history[-2]) > 0


def test_reported_deviance_change_is_the_last_one(df):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = ng.glm("claims ~ x1 + x2", df, family="poisson", max_iter=2)
    (warning,) = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    reported = float(re.search(r"deviance change ([0-9.e+-]+)\)", str(warning.message)).group(1))
    dev = fit.info.history["objective"].to_numpy() * len(df)  # the mean deviance per unit weight (unit weights here)
    # Printed with 3 significant digits: relative agreement 5e-3.
    assert_allclose(reported, abs(dev[-1] - dev[-2]) / (abs(dev[-1]) + 0.1), rtol=5e-3)


def test_divergence_raises_when_no_valid_coefficients_exist():
    """Identity-link Poisson through the origin with x of both signs: mu = b·x > 0 is impossible."""
    data = pd.DataFrame({"x": np.r_[-np.ones(10), np.ones(10)], "y": np.arange(20.0)})
    with pytest.raises(
        DivergenceError, match=r"IRLS found no valid coefficients .*identity link .*poisson .*Try the family's default link \('log'\)"
    ):
        ng.glm("y ~ x - 1", data, family="poisson", link="identity")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"max_iter": 0}, r"The 'max_iter' parameter of glm must be an int in the range \[1, inf\)\. Got 0 instead\."),
        ({"epsilon": 0.0}, r"The 'epsilon' parameter of glm must be a float in the range \(0\.0, inf\)\. Got 0\.0 instead\."),
        ({"cov_type": "hc3"}, r"The 'cov_type' parameter of glm must be a str among \{'expected', 'observed', 'sandwich'\}"),
    ],
)
def test_bad_solver_options(df, option, message):
    with pytest.raises(SpecificationError, match=message):
        ng.glm("claims ~ x1", df, family="poisson", **option)


# ---- prediction -----------------------------------------------------------------------------


def test_unseen_factor_levels_in_predict(df):
    fit = ng.glm("claims ~ x1 + C(region)", df, family="poisson")
    new = pd.DataFrame({"x1": [0.0, 1.0, 2.0], "region": ["north", "east", "mars"]})
    with pytest.raises(DataError, match=r"factor levels not seen when fitting: .*'east'.*The model has no coefficient for them"):
        fit.predict(new)


def test_predict_needs_the_columns_and_complete_rows(df):
    fit = ng.glm("claims ~ x1 + C(region)", df, family="poisson", exposure="exposure")
    with pytest.raises(DataError, match=r"Unknown column 'region' in new data"):
        fit.predict(df[["x1", "exposure"]])
    with pytest.raises(DataError, match=r"'x1' has 1 row \(2\) missing.*Predictions need complete rows"):
        fit.predict(df.assign(x1=np.where(df.index == 2, np.nan, df["x1"])))
    with pytest.raises(DomainError, match=r"exposure must be > 0"):
        fit.predict(df.assign(exposure=-1.0))


# ---- accepted inputs ------------------------------------------------------------------------


def test_polars_frame_gives_the_same_fit(df):
    pandas_fit = ng.glm("claims ~ x1 + C(region)", df, family="poisson", exposure="exposure")
    polars_fit = ng.glm("claims ~ x1 + C(region)", pl.from_pandas(df), family="poisson", exposure="exposure")
    assert_same_fit(pandas_fit, polars_fit)
    assert_allclose(polars_fit.predict(pl.from_pandas(df.head(5))).to_numpy(), pandas_fit.predict(df.head(5)).to_numpy(), rtol=1e-12)


def test_polars_nulls_are_missing_values(df):
    frame = pl.from_pandas(df).with_columns(pl.when(pl.col("x1") > 1.0).then(None).otherwise(pl.col("x1")).alias("x1"))
    n_null = int(frame["x1"].null_count())
    with pytest.raises(DataError, match=rf"'x1' has {n_null} rows .* missing"):
        ng.glm("claims ~ x1", frame, family="poisson")


def test_cbind_equals_proportion_with_trial_weights(df):
    cbind = ng.glm("cbind(successes, failures) ~ x1 + C(region)", df, family="binomial")
    proportion = ng.glm("p ~ x1 + C(region)", df.assign(p=df["successes"] / df["trials"]), family="binomial", weights="trials")
    assert_same_fit(cbind, proportion)
    assert cbind.df_resid == proportion.df_resid == N - 4


def test_cbind_needs_binomial_and_non_negative_counts(df):
    with pytest.raises(DataError, match=r"cbind\(successes, failures\) ~ … is for the binomial family; got family poisson"):
        ng.glm("cbind(successes, failures) ~ x1", df, family="poisson")
    df.loc[4, "failures"] = -1.0
    with pytest.raises(DomainError, match=r"cbind\(\) counts must be ≥ 0; column 'failures' has 1 row \(4\) negative"):
        ng.glm("cbind(successes, failures) ~ x1", df, family="binomial")


def test_two_level_string_response_is_binomial(df):
    """As R: the first level (alphabetically, or of a categorical) is failure, the other success."""
    df["outcome"] = np.where(df["successes"] > df["failures"], "yes", "no")
    as_string = ng.glm("outcome ~ x1", df, family="binomial")
    as_numbers = ng.glm("y ~ x1", df.assign(y=(df["outcome"] == "yes").astype(float)), family="binomial")
    assert_same_fit(as_string, as_numbers)
    reversed_levels = pd.Categorical(df["outcome"], categories=["yes", "no"])
    flipped = ng.glm("outcome ~ x1", df.assign(outcome=reversed_levels), family="binomial")
    assert np.all(np.abs(flipped.coef.to_numpy() + as_numbers.coef.to_numpy()) <= 1e-6 * as_numbers.std_errors.to_numpy())


def test_non_numeric_response_for_other_families(df):
    with pytest.raises(DataError, match=r"The response 'region' is not numeric \(levels \['north', 'south', 'west'\]\)"):
        ng.glm("region ~ x1", df, family="binomial")
    with pytest.raises(DataError, match=r"The response 'region' is not numeric"):
        ng.glm("region ~ x1", df, family="poisson")
