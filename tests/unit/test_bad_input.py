"""Bad data input, class by class: each is a library error naming the argument or column, and the caller's data stay unchanged.

An adversarial test kept apart from the project found inputs that reached numpy, pandas or
formulaic and ended in their errors (or in a NaN deviance). Each class below is exercised
with several examples, through every entry point that reads data (``ng.glm``, ``ng.fit`` as
a GLM and as a network, ``ng.glm_fit``, ``predict``), with pandas and polars frames. Where the
library accepts an input (a dict of equal-length columns, a categorical with an unused
level), the result is compared with the one it must equal.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import polars as pl
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import DataError, DataWarning, DomainError

N = 40


@pytest.fixture
def df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.uniform(0.5, 2.0, N),
            "g": rng.choice(["a", "b", "c"], N),
            "holders": rng.integers(1, 6, N),
            "e": rng.uniform(1.0, 2.0, N),
            "w": rng.uniform(0.5, 1.5, N),
        }
    )
    frame["y"] = rng.poisson(np.exp(0.2 + 0.5 * frame["x"])).astype(float)
    frame["amount"] = rng.gamma(3.0, 1.0, N)
    return frame


def _glm(formula, data, **kwargs):
    return ng.glm(formula, data, family=kwargs.pop("family", "poisson"), **kwargs)


def _fit_glm(formula, data, **kwargs):
    return ng.fit(formula, data, family=kwargs.pop("family", "poisson"), hidden=(), **kwargs)


def _fit_network(formula, data, **kwargs):
    return ng.fit(formula, data, family=kwargs.pop("family", "poisson"), hidden=(2,), solver="lbfgs", epochs=5, **kwargs)


ENTRY_POINTS = [pytest.param(_glm, id="glm"), pytest.param(_fit_glm, id="fit-glm"), pytest.param(_fit_network, id="fit-network")]


def refused(call, error: type[Exception], match: str, *frames) -> None:
    """``call()`` raises ``error`` matching ``match`` in one line, and leaves every frame as it was."""
    before = [frame.clone() if isinstance(frame, pl.DataFrame) else frame.copy() for frame in frames]
    with pytest.raises(error, match=match) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message, message
    for frame, copy in zip(frames, before, strict=True):
        if isinstance(frame, pd.DataFrame):
            pd.testing.assert_frame_equal(frame, copy)
        else:
            assert frame.equals(copy)


# ---------------------------------------------------------------------------------------------
# Arguments of the wrong type
# ---------------------------------------------------------------------------------------------

WRONG_ARGUMENTS = [
    ("weights", ["a"] * N, r"weights must be numeric; .*not numbers in 40 rows.*'a'"),
    ("weights", {}, r"weights must be a column name or an array of 40 numbers .*got a dict"),
    ("weights", {"w": 1.0}, r"weights must be a column name .*got a dict"),
    ("weights", {1.0, 2.0}, r"weights must be a column name .*got a set"),
    ("weights", 2.0, r"weights must be a column name or an array of 40 numbers.*shape \(\)"),
    ("weights", np.ones((N, 2)), r"weights must be .*shape \(40, 2\)"),
    ("weights", np.ones((2, N, 1)), r"weights must be .*shape \(2, 40, 1\)"),
    ("weights", np.ones(N - 1), r"weights has 39 values but the data have 40 rows"),
    ("weights", np.ones(N) + 1j, r"weights holds complex numbers"),
    ("offset", "nonexistent_column", r"Unknown column 'nonexistent_column' in offset="),
    ("offset", np.zeros(N, dtype=complex), r"offset holds complex numbers"),
    ("offset", "g", r"offset \('g'\) must be numeric; .*not numbers.*'[abc]'"),
    ("exposure", [object()] * N, r"exposure must be numeric; .*not numbers in 40 rows.*<object object"),
    ("exposure", pd.Series(["1.5"] * N), r"exposure must be numeric; .*'1.5'.*pd.to_numeric"),
    ("freq_weights", ["1"] * N, r"freq_weights must be numeric; .*'1'"),
    ("freq_weights", [1.0] * (N - 1) + ["x"], r"freq_weights must be numeric; .*1 row \(39\).*'x'"),
    ("freq_weights", np.array(["2024-01-01"] * N, dtype="datetime64[D]"), r"freq_weights must be numeric"),
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(("argument", "value", "match"), WRONG_ARGUMENTS, ids=lambda v: None)
def test_an_argument_of_the_wrong_type_is_refused_naming_it(df, entry, argument, value, match):
    refused(lambda: entry("y ~ x", df, **{argument: value}), DataError, match, df)


@pytest.mark.parametrize(("argument", "value", "match"), WRONG_ARGUMENTS[:6], ids=lambda v: None)
def test_polars_frames_refuse_the_same_arguments(df, argument, value, match):
    frame = pl.from_pandas(df)
    refused(lambda: _glm("y ~ x", frame, **{argument: value}), DataError, match, frame)


def test_a_column_vector_and_a_series_are_still_accepted_as_weights(df):
    reference = _glm("y ~ x", df, weights=df["w"].to_numpy())
    for value in (df["w"].to_numpy()[:, None], df["w"], df["w"].tolist(), pl.Series(df["w"].to_numpy()), "w"):
        assert_allclose(_glm("y ~ x", df, weights=value).coef, reference.coef, rtol=1e-12)


GLM_FIT_INPUTS = [
    ("X", lambda X, y: (X + 1j, y), r"X holds complex numbers.*X\.real"),
    ("X", lambda X, y: (X[:, :0], y), r"X has no columns"),
    ("X", lambda X, y: (X[:, :, None], y), r"X must be a 2-d array of real numbers .*shape \(40, 2, 1\)"),
    ("X", lambda X, y: (X[:, 0], y), r"X must be a 2-d array .*shape \(40,\)"),
    ("X", lambda X, y: (np.full(X.shape, "a"), y), r"X must be a 2-d array of real numbers.*text"),
    ("X", lambda X, y: (X.astype(str).astype(object), y), r"X must be .*not numbers .*row 0, column 0: '1\.0'"),
    ("X", lambda X, y: ([[1.0, 2.0], [1.0]], y[:2]), r"X must be a 2-d array .*not one"),
    ("X", lambda X, y: (None, y), r"X must be a 2-d array .*NoneType"),
    ("X", lambda X, y: (X[:0], y[:0]), r"X has no rows"),
    ("y", lambda X, y: (X, ["a"] * N), r"y must be numeric; .*'a'"),
    ("y", lambda X, y: (X, y + 1j), r"y holds complex numbers"),
    ("y", lambda X, y: (X, np.column_stack([y, y])), r"y must be .*shape \(40, 2\)"),
    ("y", lambda X, y: (X, None), r"y must be a column name or an array of 40 numbers .*NoneType"),
]


@pytest.mark.parametrize(("argument", "make", "match"), GLM_FIT_INPUTS, ids=lambda v: None)
def test_glm_fit_refuses_matrices_and_responses_that_are_not_real_numbers(df, argument, make, match):
    X = np.column_stack([np.ones(N), df["x"].to_numpy()])
    y = df["y"].to_numpy()
    X_before, y_before = X.copy(), y.copy()
    bad_X, bad_y = make(X, y)
    with pytest.raises(DataError, match=match):
        ng.glm_fit(bad_X, bad_y, family="poisson")
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_glm_fit_refuses_column_names_that_are_not_a_list(df):
    X = np.column_stack([np.ones(N), df["x"].to_numpy()])
    for names, match in (
        (5, r"column_names must be a list of 2 names"),
        ("ab", "column_names must be a list"),
        (["a"], "1 names but X has 2"),
    ):
        with pytest.raises(DataError, match=match):
            ng.glm_fit(X, df["y"].to_numpy(), family="poisson", column_names=names)


def test_glm_fit_accepts_an_object_matrix_of_numbers_and_a_data_frame(df):
    X = np.column_stack([np.ones(N), df["x"].to_numpy()])
    reference = ng.glm_fit(X, df["y"].to_numpy(), family="poisson")
    for same in (X.astype(object), pd.DataFrame(X), X.tolist()):
        assert_allclose(ng.glm_fit(same, df["y"].to_numpy(), family="poisson").coef, reference.coef, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Odd frames
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_duplicate_column_names_that_the_model_uses_are_refused(df, entry):
    for extra, formula, kwargs in (("x", "y ~ x", {}), ("y", "y ~ x", {}), ("w", "y ~ x", {"weights": "w"}), ("g", "y ~ C(g)", {})):
        frame = pd.concat([df, df[[extra]]], axis=1)
        refused(
            lambda f=formula, d=frame, k=kwargs: entry(f, d, **k), DataError, rf"'{extra}' appear more than once .*rename or drop", frame
        )


def test_a_duplicated_column_the_model_does_not_use_is_harmless(df):
    frame = pd.concat([df, df[["amount"]]], axis=1)
    assert_allclose(_glm("y ~ x", frame).coef, _glm("y ~ x", df).coef, rtol=1e-12)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_hierarchical_column_names_are_refused_with_the_fix(df, entry):
    frame = df.copy()
    frame.columns = pd.MultiIndex.from_tuples([(c, "level") for c in df.columns])
    refused(lambda: entry("y ~ x", frame), DataError, r"MultiIndex.*Flatten them", frame)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_dict_of_columns_is_a_data_frame_when_its_columns_have_one_length(df, entry):
    columns = {name: df[name].tolist() for name in df.columns}
    before = {name: list(values) for name, values in columns.items()}
    if entry is _glm:
        assert_allclose(entry("y ~ x + C(g)", columns).coef, entry("y ~ x + C(g)", df).coef, rtol=1e-12)
    ragged = {"y": [1.0, 2.0, 3.0], "x": [1.0, 2.0]}
    with pytest.raises(DataError, match=r"different lengths \('y': 3, 'x': 2\)"):
        entry("y ~ x", ragged)
    with pytest.raises(DataError, match=r"data\['y'\] is a single value"):
        entry("y ~ x", {"y": 1.0, "x": [1.0, 2.0]})
    assert columns == before


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_text_in_a_numeric_response_names_the_rows(df, entry):
    frame = df.assign(y=df["y"].astype(object))
    frame.loc[[3, 7], "y"] = ["abc", "n/a"]
    refused(
        lambda: entry("y ~ x", frame),
        DataError,
        r"response 'y' mixes numbers and text: .*2 rows \(3, 7\): 'abc', 'n/a'.*pd.to_numeric",
        frame,
    )
    polars = pl.from_pandas(frame.astype({"y": str}))
    refused(lambda: entry("y ~ x", polars), DataError, r"response 'y' is not numeric", polars)
    as_text = pl.from_pandas(df.astype({"y": str}))
    refused(lambda: entry("y ~ x", as_text), DataError, r"response 'y' holds numbers written as text .*cast\(pl.Float64\)", as_text)


def test_an_object_response_of_numbers_is_numeric(df):
    assert_allclose(_glm("y ~ x", df.assign(y=df["y"].astype(object))).coef, _glm("y ~ x", df).coef, rtol=1e-12)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_empty_frames_and_frames_of_other_kinds_are_refused(df, entry):
    for data in (pd.DataFrame(), df.iloc[:0], pl.DataFrame({"y": [], "x": []}), {"y": [], "x": []}):
        with pytest.raises(DataError, match="The data have no rows"):
            entry("y ~ x", data)
    for data in (None, df.to_numpy(), df["x"], [[1.0, 2.0]]):
        with pytest.raises(DataError, match="data must be a pandas or polars DataFrame, or a dict of equal-length columns"):
            entry("y ~ x", data)


def test_non_string_column_names_get_the_fix(df):
    frame = df.set_axis(range(df.shape[1]), axis=1)
    refused(lambda: _glm("y ~ x", frame), DataError, r"Unknown column .*not strings.*astype\(str\)", frame)


# ---------------------------------------------------------------------------------------------
# Values that overflow
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("family", "column"), [("gaussian", "y"), ("poisson", "y"), ("gamma", "amount"), ("inverse_gaussian", "amount")])
def test_a_response_too_large_for_float64_is_refused_not_a_nan_deviance(df, family, column):
    frame = df.assign(**{column: df[column] * 1e300})
    refused(
        lambda: _glm(f"{column} ~ x", frame, family=family), DomainError, rf"Response '{column}' has .*\|value\| > 1e\+100.*Rescale", frame
    )
    X = np.column_stack([np.ones(N), df["x"].to_numpy()])
    with pytest.raises(DomainError, match=r"Response 'y' has .*> 1e\+100"):
        ng.glm_fit(X, frame[column].to_numpy(), family=family)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_zero_weight_row_with_a_huge_response_is_refused(df, entry):
    frame = df.assign(y=df["y"].where(df.index != 0, 1e200))
    weights = np.where(df.index == 0, 0.0, 1.0)
    refused(lambda: entry("y ~ x", frame, family="gaussian", weights=weights), DomainError, r"1 row \(0\) with \|value\| > 1e\+100", frame)


def test_a_large_response_below_the_limit_fits_and_scales_exactly(df):
    # Gaussian identity fits are scale-equivariant: coef(c·y) = c·coef(y), deviance c².
    scaled = _glm("y ~ x", df.assign(y=df["y"] * 1e50), family="gaussian")
    plain = _glm("y ~ x", df, family="gaussian")
    assert np.isfinite(scaled.deviance)
    assert_allclose(scaled.coef / 1e50, plain.coef, rtol=1e-10)
    assert_allclose(scaled.deviance / 1e100, plain.deviance, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("formula", "term"),
    [("y ~ np.log(g)", "np.log(g)"), ("y ~ x + np.sqrt(g)", "np.sqrt(g)"), ("y ~ I(g*2)", "I(g * 2)"), ("y ~ I(g + 'z')", "I(g + 'z')")],
)
def test_a_transform_of_a_text_column_names_the_term_and_the_column(df, entry, formula, term):
    refused(lambda: entry(formula, df), DataError, rf"term '{re.escape(term)}' of formula .*column 'g' holds text", df)


def test_a_text_method_on_a_text_column_is_still_a_factor(df):
    upper = _glm("y ~ g.str.upper()", df)
    plain = _glm("y ~ G", df.assign(G=df["g"].str.upper()))
    assert_allclose(upper.coef.to_numpy(), plain.coef.to_numpy(), rtol=1e-12)


def test_a_transform_of_a_text_column_in_polars_names_it_too(df):
    frame = pl.from_pandas(df)
    refused(lambda: _glm("y ~ np.log(g)", frame), DataError, r"term 'np.log\(g\)' .*column 'g' holds text", frame)


@pytest.mark.parametrize("formula", ["y ~ x +* (", "y ~ x + (", "y ~ x + )", "y ~ C(g", "y ~ x + + + :"])
def test_a_formula_syntax_error_is_one_line_naming_the_formula(df, formula):
    refused(lambda: _glm(formula, df), DataError, rf"Cannot parse the formula {re.escape(repr(formula))}", df)


def test_a_syntax_error_gives_the_position_in_the_formula(df):
    with pytest.raises(DataError, match=r"at position 7 \('\+\*'\)"):
        _glm("y ~ x +* x", df)


@pytest.mark.parametrize(
    ("formula", "power"),
    [
        ("y ~ I(holders^2)", "y ~ I(holders**2)"),
        ("y ~ x + I(x^3)", "y ~ x + I(x**3)"),
        ("y ~ np.exp(x^2)", "y ~ np.exp(x**2)"),
        ("I(y^2) ~ x", "I(y**2) ~ x"),
    ],
)
def test_caret_in_a_python_expression_is_a_power_as_in_r(df, formula, power):
    # Issue 10: inside I() (or any expression of a formula) ^ is R's power, never Python's XOR,
    # also on an integer column ('holders'), where XOR used to run silently.
    assert_allclose(_glm(formula, df, family="gaussian").coef.to_numpy(), _glm(power, df, family="gaussian").coef.to_numpy(), rtol=1e-12)


def test_caret_between_terms_keeps_its_r_meaning(df):
    # Outside I(), ^ is the formula's interaction power (as in R): (x + holders)^2 = x * holders.
    assert_allclose(_glm("y ~ (x + holders)^2", df).coef.to_numpy(), _glm("y ~ x * holders", df).coef.to_numpy(), rtol=1e-12)
    squared = _glm("y ~ I(holders**2)", df)
    by_hand = _glm("y ~ h2", df.assign(h2=df["holders"] ** 2))
    assert_allclose(squared.coef.to_numpy(), by_hand.coef.to_numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_predict_accepts_a_categorical_with_an_unused_extra_level(df, kind):
    fit = _glm("y ~ x + C(g)", df)
    expected = fit.predict(df)
    extra = df.assign(g=pd.Categorical(df["g"], categories=["a", "b", "c", "zz"]))
    new = extra if kind == "pandas" else pl.from_pandas(extra)
    before = extra.copy()
    assert_allclose(fit.predict(new).to_numpy(), expected.to_numpy(), rtol=1e-12)
    pd.testing.assert_frame_equal(extra, before)
    assert list(extra["g"].cat.categories) == ["a", "b", "c", "zz"]


def test_predict_refuses_a_level_that_is_unseen_and_used(df):
    fit = _glm("y ~ x + g", df.assign(g=pd.Categorical(df["g"])))
    new = df.assign(g=pd.Categorical(["zz", *df["g"][1:]], categories=["a", "b", "c", "zz"]))
    refused(lambda: fit.predict(new), DataError, r"factor levels not seen when fitting: \{'zz'\}", new)


def test_predict_refuses_text_in_a_column_that_was_numeric(df):
    fit = _glm("y ~ x + np.log(e)", df)
    for column in ("x", "e"):
        new = df.assign(**{column: df[column].astype(object)})
        new.loc[2, column] = "abc"
        refused(lambda new=new: fit.predict(new), DataError, rf"(Column '{column}' was numeric|column '{column}' holds text)", new)


def test_predict_refuses_odd_new_frames(df):
    fit = _glm("y ~ x + C(g)", df)
    duplicated = pd.concat([df, df[["g"]]], axis=1)
    refused(lambda: fit.predict(duplicated), DataError, r"'g' appear more than once in the new data", duplicated)
    with pytest.raises(DataError, match="different lengths"):
        fit.predict({"x": [1.0, 2.0], "g": ["a"]})
    assert_allclose(fit.predict({"x": df["x"].tolist(), "g": df["g"].tolist()}).to_numpy(), fit.predict(df).to_numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Text that is mostly numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_a_text_column_of_mostly_numbers_warns_naming_the_column_and_values(df, kind):
    frame = df.assign(x=df["x"].round(3).astype(str))
    frame.loc[[4, 9], "x"] = ["abc", "?"]
    data = frame if kind == "pandas" else pl.from_pandas(frame)
    with pytest.warns(DataWarning, match=r"Column 'x' holds text but is mostly numbers: .*2 rows \(4, 9\): 'abc', '\?'.*pd.to_numeric"):
        _glm("y ~ x", data)


def test_text_columns_of_words_or_of_numbers_only_do_not_warn(df):
    # Words are a factor; a column of numeric codes (all numbers, e.g. postcodes) is one too, as in R.
    _glm("y ~ C(g)", df)
    _glm("y ~ code", df.assign(code=df["holders"].map(lambda h: f"{h:05d}")))


# ---------------------------------------------------------------------------------------------
# Columns a GLM cannot read, and regressors that overflow
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("column", "make", "match"),
    [
        ("x", lambda s: s + 1j, r"Column 'x' holds complex numbers"),
        ("y", lambda s: s + 0j, r"Column 'y' holds complex numbers"),
        ("x", lambda s: pd.date_range("2020-01-01", periods=len(s)), r"Column 'x' holds dates .*\.dt\.days"),
        ("x", lambda s: [[1.0, 2.0]] * len(s), r"Column 'x' holds values that are neither numbers nor text \(list\) in 40 rows"),
        ("x", lambda s: [{"a": 1}, *s[1:]], r"Column 'x' holds values that are neither numbers nor text \(dict\) in 1 row \(0\)"),
    ],
    ids=lambda v: None,
)
def test_columns_that_are_neither_numbers_nor_labels_are_refused(df, entry, column, make, match):
    frame = df.assign(**{column: make(df[column])})
    refused(lambda: entry("y ~ x", frame), DataError, match, frame)


def test_numbers_stored_as_objects_warn_that_they_become_a_factor(df):
    with pytest.warns(DataWarning, match=r"Column 'x' holds numbers stored as Python objects .*astype\(float\)"):
        _glm("y ~ x", df.assign(x=df["x"].astype(object)))


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_regressor_too_large_for_float64_is_refused_naming_the_column(df, entry):
    frame = df.assign(x=df["x"].where(df.index != 5, 1e250))
    refused(lambda: entry("y ~ x", frame), DataError, r"Column 'x' of the design matrix has 1 row \(5\) with \|value\| > 1e\+100", frame)
    X = np.column_stack([np.ones(N), frame["x"].to_numpy()])
    with pytest.raises(DataError, match=r"Column 'x2' of the design matrix has 1 row \(5\)"):
        ng.glm_fit(X, df["y"].to_numpy(), family="poisson")


def test_pyarrow_tables_are_read_and_lazy_polars_frames_are_refused(df):
    pa = pytest.importorskip("pyarrow")
    assert_allclose(_glm("y ~ x", pa.Table.from_pandas(df)).coef, _glm("y ~ x", df).coef, rtol=1e-12)
    with pytest.raises(DataError, match=r"polars LazyFrame: call \.collect\(\)"):
        _glm("y ~ x", pl.from_pandas(df).lazy())
