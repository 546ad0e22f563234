"""Focused unit tests of the design builder (:mod:`neuralglm.data.design`): what each stage puts in a :class:`Design`.

The independent reference for design matrices is patsy (statsmodels' formula engine), whose
treatment coding follows R's ``contr.treatment``: levels sorted, the first is the reference.
Responses, weights and offsets are compared with the arithmetic they stand for (``s/(s+f)``,
``log(exposure)``). Every builder call leaves the caller's frame exactly as it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import polars as pl
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import neuralglm as ng
from neuralglm.data.design import design_from_arrays, make_design, model_matrix_for
from neuralglm.errors import DataWarning
from neuralglm.family.family import Binomial, Gaussian, Poisson

N = 30


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=N),
            "g": rng.choice(["west", "north", "south"], N),
            "k": pd.Categorical(rng.choice(["lo", "mid", "hi"], N), categories=["mid", "lo", "hi", "unused"]),
            "e": rng.uniform(0.5, 2.0, N),
            "o": rng.normal(scale=0.1, size=N),
            "w": rng.uniform(0.5, 2.0, N),
            "f": rng.integers(1, 4, N).astype(float),
            "s": rng.integers(0, 5, N).astype(float),
            "fail": rng.integers(0, 5, N).astype(float),
        },
        index=[f"r{i}" for i in range(N)],
    )
    frame["y"] = rng.poisson(2.0, N).astype(float)
    return frame


def unchanged(frame: pd.DataFrame):
    """Context that asserts ``frame`` is equal to its state on entry (values, dtypes, categories, index)."""

    class _Check:
        def __enter__(self):
            self.before = frame.copy(deep=True)

        def __exit__(self, *exc):
            pd.testing.assert_frame_equal(frame, self.before)
            return False

    return _Check()


@pytest.mark.parametrize(
    ("formula", "has_intercept"), [("y ~ x", True), ("y ~ x - 1", False), ("y ~ 0 + x", False), ("y ~ 1", True), ("y ~ C(g) - 1", False)]
)
def test_intercept_is_detected_from_the_formula(df, formula, has_intercept):
    design = make_design(formula, df, Poisson())
    assert design.has_intercept is has_intercept
    assert ("Intercept" in design.column_names) is has_intercept


def test_intercept_of_a_ready_matrix_is_a_column_of_ones(df):
    x = df["x"].to_numpy()
    assert design_from_arrays(np.column_stack([x, np.ones(N)]), df["y"], family=Poisson()).has_intercept
    assert not design_from_arrays(np.column_stack([x, x**2]), df["y"], family=Poisson()).has_intercept


@pytest.mark.parametrize("formula", ["y ~ x + C(g)", "y ~ C(g) * x", "y ~ C(g) + C(k)", "y ~ C(g) - 1", "y ~ np.log(e) + C(g):x"])
def test_the_design_matrix_equals_patsy_with_r_treatment_contrasts(df, formula):
    with unchanged(df):
        design = make_design(formula, df, Poisson())
    # patsy keeps declared but unused categories; R's model.frame drops them, as the builder does.
    reference = patsy.dmatrix(formula.split("~")[1], df.assign(k=df["k"].cat.remove_unused_categories()), return_type="dataframe")
    assert sorted(design.column_names) == sorted(reference.columns)
    assert_allclose(pd.DataFrame(design.X, columns=design.column_names)[reference.columns].to_numpy(), reference.to_numpy(), rtol=1e-14)


def test_factor_levels_are_sorted_and_the_first_is_the_reference(df):
    design = make_design("y ~ C(g)", df, Poisson())
    assert design.column_names == ("Intercept", "C(g)[T.south]", "C(g)[T.west]")  # 'north' is the reference
    assert_array_equal(design.X[:, 1], (df["g"] == "south").to_numpy(dtype=float))
    # A pandas categorical keeps its declared order (R's factor levels); the unused level gets no column.
    categorical = make_design("y ~ k", df, Poisson())
    assert categorical.column_names == ("Intercept", "k[T.lo]", "k[T.hi]")


def test_polars_and_dict_frames_give_the_same_design(df):
    reference = make_design("y ~ x + C(g)", df, Poisson())
    plain = df.drop(columns="k")
    for data in (pl.from_pandas(plain), {name: plain[name].tolist() for name in plain.columns}):
        design = make_design("y ~ x + C(g)", data, Poisson())
        assert design.column_names == reference.column_names
        assert_allclose(design.X, reference.X, rtol=0)
        assert_allclose(design.y, reference.y, rtol=0)


def test_cbind_gives_proportions_with_trials_as_weights(df):
    design = make_design("cbind(s, fail) ~ x", df.assign(w=1.0), Binomial(), weights="w")
    trials = (df["s"] + df["fail"]).to_numpy()
    assert_allclose(design.weights, trials, rtol=0)
    assert_allclose(design.y, np.divide(df["s"], trials, out=np.zeros(N), where=trials > 0), rtol=0)
    assert design.response_name == "cbind(s, fail)"


def test_a_two_level_text_response_takes_the_first_level_as_failure(df):
    design = make_design("outcome ~ x", df.assign(outcome=np.where(df["y"] > 1, "yes", "no")), Binomial())
    assert_array_equal(design.y, (df["y"] > 1).to_numpy(dtype=float))


def test_exposure_enters_as_log_offset_added_to_the_offset(df):
    design = make_design("y ~ x", df, Poisson(), exposure="e", offset="o")
    assert_allclose(design.offset, df["o"] + np.log(df["e"]), rtol=1e-15)
    assert design.offset_source.exposure_column == "e" and design.offset_source.offset_column == "o"
    assert design.offset_source.describe() == "o + log(e)"
    from_arrays = make_design("y ~ x", df, Poisson(), exposure=df["e"].to_numpy())
    assert_allclose(from_arrays.offset, np.log(df["e"]), rtol=1e-15)
    assert from_arrays.offset_source.exposure_array and from_arrays.offset_source.describe() == "log(exposure)"


def test_weights_and_frequency_weights_are_kept_apart(df):
    design = make_design("y ~ x", df, Poisson(), weights="w", freq_weights="f")
    assert_allclose(design.weights, df["w"], rtol=0)
    assert design.freq_weights is not None
    assert_allclose(design.freq_weights, df["f"], rtol=0)
    assert_allclose(design.total_weights, df["w"] * df["f"], rtol=0)
    assert make_design("y ~ x", df, Poisson()).freq_weights is None


def test_row_labels_are_the_frame_index(df):
    design = make_design("y ~ x", df, Poisson())
    assert list(design.row_labels) == list(df.index)


def test_missing_drop_keeps_exactly_the_complete_rows(df):
    frame = df.copy()
    frame.loc["r3", "x"] = np.nan
    frame.loc["r7", "w"] = np.inf
    frame.loc["r9", "g"] = None
    frame.loc["r12", "e"] = 0.0  # log(0) in the formula's terms: dropped at the matrix stage
    with unchanged(frame), pytest.warns(DataWarning, match="Dropped"):
        design = make_design("y ~ x + C(g) + np.log(e)", frame, Poisson(), weights="w", missing="drop")
    kept = [label for label in frame.index if label not in {"r3", "r7", "r9", "r12"}]
    assert list(design.row_labels) == kept
    reference = make_design("y ~ x + C(g) + np.log(e)", frame.loc[kept], Poisson(), weights="w")
    assert_allclose(design.X, reference.X, rtol=0)
    assert_allclose(design.y, reference.y, rtol=0)
    assert_allclose(design.weights, reference.weights, rtol=0)


def test_the_caller_frame_and_arrays_are_never_modified_or_shared(df):
    weights = df["w"].to_numpy().copy()
    with unchanged(df):
        design = make_design("y ~ x + k", df, Poisson(), weights=weights, exposure="e")
    design.y[:] = -1.0
    design.weights[:] = -1.0
    assert (df["y"] >= 0).all() and (weights > 0).all()
    assert list(df["k"].cat.categories) == ["mid", "lo", "hi", "unused"]


def test_new_data_get_the_same_columns_as_the_training_data(df):
    design = make_design("y ~ x + C(g) + k + np.log(e)", df, Poisson(), exposure="e")
    X, offset = model_matrix_for(design, df)
    assert_allclose(X, design.X, rtol=0)
    assert_allclose(offset, design.offset, rtol=0)
    first = df.iloc[[0]]  # one row: every other level absent, the columns stay
    X_one, _ = model_matrix_for(design, first)
    assert_allclose(X_one, design.X[:1], rtol=0)


def test_ready_matrices_keep_their_names_and_do_not_copy_float64_input(df):
    X = np.ascontiguousarray(np.column_stack([np.ones(N), df["x"]]))
    design = design_from_arrays(X, df["y"].to_numpy(), column_names=["Intercept", "x"], family=Gaussian())
    assert design.X is X
    assert design.column_names == ("Intercept", "x")
    assert design_from_arrays(X.astype(np.float32), df["y"], family=Gaussian()).column_names == ("x1", "x2")


def test_pandas_string_dtype_columns_are_factors_as_plain_text_columns_are():
    # formulaic passes pandas' "string" dtype (pd.NA for missing) through as numbers; the design
    # reads it as the factor a plain text column gives, in fits and in predict.
    claims = ng.datasets.load_insurance()
    text = claims.assign(age=claims["age"].astype(str))
    nullable = claims.assign(age=claims["age"].astype("string"))
    plain = ng.glm("claims ~ age + group", text, family="poisson", exposure="holders")
    fit = ng.glm("claims ~ age + group", nullable, family="poisson", exposure="holders")
    pd.testing.assert_series_equal(fit.coef, plain.coef)
    np.testing.assert_array_equal(fit.predict(nullable), plain.predict(text))
    assert nullable["age"].dtype == "string"  # the caller's frame is untouched
    with_missing = nullable.copy()
    with_missing.loc[3, "age"] = pd.NA
    with pytest.raises(ng.errors.DataError, match="age"):
        ng.glm("claims ~ age + group", with_missing, family="poisson", exposure="holders")
