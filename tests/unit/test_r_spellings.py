"""R's formula spellings (issue 10): each against an independent computation, through predict and model files.

Live-R comparisons are in ``tests/parity/test_formula_vs_r.py``; here the references are plain
NumPy (a power, a logarithm, orthonormal polynomials), the equivalent spelling already supported
(``exposure=``, ``C(x)``, listing the columns), and the crafted-file checks of the allowlist.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from helpers import model_file_entries, resealed_model_file
from neuralglm.data.r_spellings import expand_dot, translate
from neuralglm.errors import DataError, ModelFileError, SpecificationError

N = 120


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "k": rng.integers(1, 7, N),  # integers: where ^ used to be XOR
            "x": rng.uniform(0.5, 2.0, N),
            "e": rng.uniform(1.0, 5.0, N),
            "w": rng.uniform(0.5, 1.5, N),
            "dose": pd.Categorical(rng.choice(["low", "mid", "high", "max"], N), categories=["low", "mid", "high", "max"], ordered=True),
            "g": rng.choice(["b", "a", "c"], N),
        }
    )
    eta = 0.2 + 0.1 * frame["k"] + 0.3 * frame["x"] + frame["dose"].cat.codes * 0.2
    frame["y"] = rng.poisson(frame["e"] * np.exp(eta))
    return frame


def _glm(formula, data, **kwargs):
    return ng.glm(formula, data, family=kwargs.pop("family", "poisson"), **kwargs)


def _round_trip(fit):
    buffer = io.BytesIO()
    fit.save(buffer)
    buffer.seek(0)
    return ng.load(buffer)


# ---- the translation itself ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "text", "offsets"),
    [
        ("I(x^2)", "I(x**2)", ()),
        ("I(`my x`^2) + C(g, levels=['a^b'])", "I(`my x`**2) + C(g, levels=['a^b'])", ()),  # ^ in names and strings stays
        ("(a + b)^2", "(a + b)^2", ()),  # between terms: the interaction power
        ("x + offset(log(e))", "x", ("log(e)",)),
        ("offset(log(e)) + x", "x", ("log(e)",)),
        ("x + offset(e) - 1", "x  - 1", ("e",)),
        ("offset(e)", "1", ("e",)),
        ("offset(e) - 1", "1 - 1", ("e",)),
        ("x + offset(e^2) + offset(w)", "x", ("e**2", "w")),
    ],
)
def test_translation(side, text, offsets):
    assert translate(f"y ~ {side}", side) == type(translate("y ~ 1", "1"))(text, offsets)


@pytest.mark.parametrize("side", ["x:offset(e)", "x + offset(e):x", "x - offset(e)", "x * offset(e)"])
def test_an_offset_inside_another_term_is_refused(side):
    with pytest.raises(
        SpecificationError, match=r"The term 'offset\(e\)' of formula .* must be added on its own: write '\.\.\. \+ offset\(e\)'"
    ):
        translate(f"y ~ {side}", side)


@pytest.mark.parametrize(
    ("term", "name", "advice"),
    [
        ("ns(x, 3)", "ns", "bs(x, df=...)"),
        ("relevel(g, 'b')", "relevel", "C(g, contr.treatment('b'))"),
        ("interaction(g, k)", "interaction", "a:b"),
        ("ordered(g)", "ordered", "ordered=True"),
        ("frobnicate(x)", "frobnicate", "log, exp, sqrt, abs, I(), factor() or C(), poly(x, k)"),
        ("as.numeric(x)", "as.numeric", "pd.to_numeric"),
    ],
)
def test_r_functions_without_counterpart_are_refused_naming_the_term_and_the_spelling(df, term, name, advice):
    shown = re.escape(term).replace("x\\)", "(x|\\.\\.\\.)\\)")  # as.numeric(...): 'as' stops Python from parsing the term
    with pytest.raises(SpecificationError, match=rf"The term '{shown}' of formula .* calls {re.escape(name)}\(\).*{re.escape(advice)}"):
        _glm(f"y ~ {term}", df)


def test_as_factor_is_refused_with_factor_as_the_spelling(df):
    with pytest.raises(SpecificationError, match=r"calls as\.factor\(\), .*: write factor\(x\) or C\(x\)\.$"):
        _glm("y ~ as.factor(k)", df)


# ---- I(x^2), log, sqrt, abs, factor ------------------------------------------------------------
def test_caret_is_a_power_on_integers_never_xor(df):
    fit = _glm("y ~ I(k^2) + log(x^3)", df)
    assert list(fit.coef.index) == ["Intercept", "I(k ** 2)", "log(x ** 3)"]
    k = df["k"].to_numpy()
    assert_allclose(fit.design.X[:, 1], k.astype(float) ** 2, rtol=0)
    assert not np.array_equal(fit.design.X[:, 1], k ^ 2)
    assert_allclose(fit.design.X[:, 2], 3 * np.log(df["x"].to_numpy()), rtol=1e-14)


def test_r_functions_without_np_are_numpys(df):
    fit = _glm("y ~ log(x) + sqrt(e) + abs(x - 1) + exp(-x)", df)
    by_hand = _glm("y ~ np.log(x) + np.sqrt(e) + np.abs(x - 1) + np.exp(-x)", df)
    assert list(fit.coef.index) == ["Intercept", "log(x)", "sqrt(e)", "abs(x - 1)", "exp(-x)"]
    assert_allclose(fit.coef.to_numpy(), by_hand.coef.to_numpy(), rtol=1e-12)


def test_factor_is_C_with_R_level_order(df):
    fit = _glm("y ~ factor(k) + factor(g)", df)
    reference = _glm("y ~ C(k) + C(g)", df)
    assert_allclose(fit.coef.to_numpy(), reference.coef.to_numpy(), rtol=1e-12)
    assert [n for n in fit.coef.index if "(g)" in n] == ["factor(g)[T.b]", "factor(g)[T.c]"]  # levels a < b < c
    assert [n for n in fit.coef.index if "(k)" in n] == [f"factor(k)[T.{v}]" for v in range(2, 7)]  # numeric order, not text
    chosen = _glm("y ~ factor(g, levels=['c', 'b', 'a'])", df)
    assert chosen.coef.index[1:].tolist() == ["factor(g, levels=['c', 'b', 'a'])[T.b]", "factor(g, levels=['c', 'b', 'a'])[T.a]"]


def test_TRUE_and_FALSE_are_R_logicals(df):
    raw = _glm("y ~ poly(x, 2, raw = TRUE)", df)
    assert_allclose(raw.design.X[:, 1:], np.column_stack([df["x"], df["x"] ** 2]), rtol=1e-14)


# ---- poly ----------------------------------------------------------------------------------------
def test_poly_is_an_orthonormal_basis_kept_for_new_data(df):
    fit = _glm("y ~ poly(x, 3)", df)
    basis = fit.design.X[:, 1:]
    assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    assert_allclose(basis.sum(axis=0), 0, atol=1e-12)
    # The span is that of x, x², x³ (with the intercept): same fitted values as the raw powers.
    assert_allclose(fit.predict().to_numpy(), _glm("y ~ x + I(x^2) + I(x^3)", df).predict().to_numpy(), rtol=1e-9)
    new = df.iloc[:7].assign(x=[0.1, 0.7, 1.1, 1.9, 2.5, 3.0, 0.5])
    assert_allclose(fit.predict(new).to_numpy(), _glm("y ~ x + I(x^2) + I(x^3)", df).predict(new).to_numpy(), rtol=1e-9)


# ---- offset() ------------------------------------------------------------------------------------
def test_offset_term_is_an_offset_as_exposure_is(df):
    fit = _glm("y ~ x + offset(log(e))", df)
    exposure = _glm("y ~ x", df, exposure="e")
    assert list(fit.coef.index) == ["Intercept", "x"]
    assert_allclose(fit.coef.to_numpy(), exposure.coef.to_numpy(), rtol=1e-12)
    assert_allclose(fit.design.offset, np.log(df["e"].to_numpy()), rtol=1e-15)
    new = df.iloc[:5].assign(e=[1.0, 2.0, 10.0, 0.5, 3.0])
    assert_allclose(fit.predict(new).to_numpy(), exposure.predict(new).to_numpy(), rtol=1e-12)
    assert_allclose(
        fit.predict(new, type="link").to_numpy(), fit.coef["Intercept"] + fit.coef["x"] * new["x"] + np.log(new["e"]), rtol=1e-12
    )


def test_offset_term_adds_to_offset_and_exposure_arguments(df):
    fit = _glm("y ~ x + offset(0.5 * w)", df, exposure="e", offset="w")
    assert_allclose(fit.design.offset, np.log(df["e"]) + 1.5 * df["w"], rtol=1e-14)
    new = df.iloc[:4]
    by_hand = fit.coef["Intercept"] + fit.coef["x"] * new["x"] + np.log(new["e"]) + 1.5 * new["w"]
    assert_allclose(fit.predict(new, type="link").to_numpy(), by_hand, rtol=1e-12)


def test_offset_term_with_bad_values_is_reported_or_dropped(df):
    bad = df.copy()
    bad.loc[bad.index[3], "e"] = 0.0
    with pytest.raises(DataError, match=r"'offset\(log\(e\)\)' has 1 row"):
        _glm("y ~ x + offset(log(e))", bad)
    with pytest.warns(ng.errors.DataWarning, match=r"Dropped 1 of"):
        dropped = _glm("y ~ x + offset(log(e))", bad, missing="drop")
    assert dropped.n_obs == N - 1
    with pytest.raises(DataError, match=r"offset\(log\(e\)\)"):
        _glm("y ~ x + offset(log(e))", df).predict(bad.iloc[:5])
    with pytest.raises(DataError, match=r"'e'"):
        _glm("y ~ x + offset(log(e))", df).predict(df[["x"]])


def test_offset_term_in_a_network(df):
    net = ng.fit("y ~ x + offset(log(e))", df, family="poisson", hidden=(), seed=0)
    exposure = ng.fit("y ~ x", df, family="poisson", hidden=(), exposure="e", seed=0)
    assert_allclose(net.predict(df.iloc[:5]).to_numpy(), exposure.predict(df.iloc[:5]).to_numpy(), rtol=1e-6)


# ---- y ~ . ---------------------------------------------------------------------------------------
def test_dot_is_every_other_column(df):
    fit = _glm("y ~ .", df, weights="w", exposure="e")
    assert fit.formula == "y ~ k + x + dose + g"
    assert_allclose(fit.coef.to_numpy(), _glm("y ~ k + x + dose + g", df, weights="w", exposure="e").coef.to_numpy(), rtol=1e-12)
    assert _glm("y ~ . - g + offset(log(e))", df.drop(columns=["w"])).formula == "y ~ (k + x + dose + g) - g + offset(log(e))"
    assert expand_dot("log(y) ~ .", ".", ["y", "my col", "z"], ["y"]) == "`my col` + z"
    with pytest.raises(SpecificationError, match=r"The '\.' of formula 'y ~ \.' stands for no column"):
        _glm("y ~ .", df[["y"]])


# ---- ordered categoricals --------------------------------------------------------------------------
def _contr_poly(n: int) -> np.ndarray:
    """R's contr.poly(n): orthonormal polynomials in the scores 1..n, signs making the leading power positive."""
    scores = np.arange(1, n + 1, dtype=float)
    q, r = np.linalg.qr(np.vander(scores - scores.mean(), n, increasing=True))
    return (q * np.sign(np.diag(r)))[:, 1:]


def test_ordered_categorical_gets_contr_poly(df):
    fit = _glm("y ~ dose + x", df)
    assert list(fit.coef.index) == ["Intercept", "dose.L", "dose.Q", "dose.C", "x"]
    codes = df["dose"].cat.codes.to_numpy()
    assert_allclose(fit.design.X[:, 1:4], _contr_poly(4)[codes], atol=1e-14)
    unordered = _glm("y ~ dose + x", df.assign(dose=df["dose"].cat.as_unordered()))
    assert_allclose(fit.predict().to_numpy(), unordered.predict().to_numpy(), rtol=1e-9)  # another coding, same model
    assert list(unordered.coef.index[1:4]) == ["dose[T.mid]", "dose[T.high]", "dose[T.max]"]  # the category order kept


def test_ordered_categorical_in_interactions_and_without_intercept(df):
    assert _glm("y ~ 0 + dose", df).coef.index.tolist() == ["doselow", "dosemid", "dosehigh", "dosemax"]
    assert _glm("y ~ dose:x", df).coef.index.tolist() == ["Intercept", "doselow:x", "dosemid:x", "dosehigh:x", "dosemax:x"]
    assert _glm("y ~ C(dose)", df).coef.index.tolist() == ["Intercept", "C(dose)[T.mid]", "C(dose)[T.high]", "C(dose)[T.max]"]
    assert len(_glm("y ~ dose * x", df).coef) == 8


def test_ordered_categorical_on_new_data_of_any_kind(df):
    fit = _glm("y ~ dose + x", df)
    new = df.iloc[:6]
    expected = fit.predict(new).to_numpy()
    assert_allclose(fit.predict(new.assign(dose=new["dose"].astype(str))).to_numpy(), expected, rtol=1e-14)
    with pytest.raises(DataError, match="not seen when fitting"):
        fit.predict(new.assign(dose=["low", "mid", "huge", "low", "low", "low"]))


def test_factor_of_an_ordered_categorical_stays_ordered_as_in_R(df):
    # R: factor() of an ordered factor returns an ordered factor, so its coding stays contr.poly.
    fit = _glm("y ~ factor(dose) + x", df)
    assert list(fit.coef.index) == ["Intercept", "factor(dose).L", "factor(dose).Q", "factor(dose).C", "x"]
    bare = _glm("y ~ dose + x", df)
    assert_allclose(fit.coef.to_numpy(), bare.coef.to_numpy(), rtol=1e-10)
    new = df.iloc[:6]
    expected = fit.predict(new).to_numpy()
    assert_allclose(expected, bare.predict(new).to_numpy(), rtol=1e-10)
    # New data read from a CSV hold the levels as text: coded the same way, also after a save and load.
    as_text = new.assign(dose=new["dose"].astype(str))
    assert_allclose(fit.predict(as_text).to_numpy(), expected, rtol=1e-14)
    buffer = io.BytesIO()
    ng.save(fit, buffer)
    buffer.seek(0)
    assert_allclose(ng.load(buffer).predict(as_text).to_numpy(), expected, rtol=1e-14)


def test_log_with_a_base_is_refused_with_the_spelling_to_use(df):
    for term in ("log(x, 2)", "log(x, base=2)"):
        with pytest.raises(SpecificationError, match=rf"The term '{re.escape(term)}' .* gives log\(\) a base.*log2\(x\)"):
            _glm(f"y ~ {term}", df)
    assert list(_glm("y ~ log2(x)", df.assign(x=df["x"].abs() + 1)).coef.index) == ["Intercept", "log2(x)"]


# ---- model files ---------------------------------------------------------------------------------
def test_model_file_with_every_spelling_predicts_identically(df):
    formula = "y ~ I(k^2) + log(x) + sqrt(w) + abs(x - 1) + factor(g) + dose + poly(x, 2) + offset(log(e))"
    for fit in (_glm(formula, df), ng.fit(formula, df, family="poisson", hidden=(3,), seed=0, max_iter=20)):
        loaded = _round_trip(fit)
        assert loaded.formula == formula and list(loaded.coef.index if hasattr(loaded, "coef") else []) == list(
            fit.coef.index if hasattr(fit, "coef") else []
        )
        new = df.iloc[10:30].assign(e=np.linspace(1, 9, 20))
        assert_allclose(loaded.predict(new).to_numpy(), fit.predict(new).to_numpy(), rtol=0, atol=0)


@pytest.fixture(scope="module")
def raw(df) -> bytes:
    buffer = io.BytesIO()
    _glm("y ~ x + dose + offset(log(e))", df).save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + dose + offset(__import__('os').getcwd())",
        "y ~ x + dose + offset(open('notes.txt'))",
        "y ~ x + dose + offset(e ** 10 ** 10)",
        "y ~ x + dose + x:offset(e)",
        "I(y ^ 99999) ~ x + dose",
    ],
)
def test_crafted_formula_text_with_r_spellings_is_refused_at_load(raw, formula):
    spec, arrays = model_file_entries(raw)
    spec["result"]["design"]["formula"] = formula
    with pytest.raises(ModelFileError):
        ng.load(resealed_model_file(spec, arrays))


def test_crafted_contrasts_are_refused_at_load(raw):
    spec, arrays = model_file_entries(raw)
    spec["result"]["design"]["spec"]["encoder_state"]["dose"]["contrasts"]["coding"] = "helmert"
    with pytest.raises(ModelFileError, match=r"contrasts 'helmert'"):
        ng.load(resealed_model_file(spec, arrays))


def test_partial_dependence_reads_the_offset_term_columns(df):
    from neuralglm.plots import partial_dependence

    fit = _glm("y ~ x + dose + offset(log(e))", df)
    ax = partial_dependence(fit, df, "dose")
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["low", "mid", "high", "max"]


def test_power_of_a_narrow_integer_column_does_not_wrap_around():
    """int32 columns (polars, Parquet) are widened before I(k^3) is evaluated: the fit equals the float column's."""
    rng = np.random.default_rng(0)
    k = rng.integers(1, 2000, size=300).astype(np.int32)  # k**3 reaches 8e9 > 2**31
    frame = pd.DataFrame({"k": k, "y": 1 + 1e-9 * k.astype(float) ** 3 + rng.normal(size=300)})
    narrow = ng.glm("y ~ I(k^3)", frame)
    as_float = ng.glm("y ~ I(k^3)", frame.assign(k=frame["k"].astype(float)))
    np.testing.assert_allclose(narrow.coef.to_numpy(), as_float.coef.to_numpy(), rtol=1e-10)
    assert frame["k"].dtype == np.int32  # the caller's frame is not changed


def test_percent_in_is_refused_not_read_as_nesting():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": ["a", "b", "a", "b"], "y": [1.0, 2.0, 2.5, 4.0]})
    with pytest.raises(SpecificationError, match="x:g"):
        ng.glm("y ~ x %in% g", frame)
