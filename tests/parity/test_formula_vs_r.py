"""R's formula spellings against live R: the same model matrix, coefficients and predictions.

Each formula is written as an R user writes it (``I(hp^2)``, ``offset(log(Holders))``,
``log(hp)``, ``factor(cyl)``, ``poly(hp, 3)``, ``mpg ~ .``, an ordered factor, text levels)
and fitted here and by R's ``glm`` on R's own datasets. The model matrices agree to rounding
(``1e-12``); coefficients to ``1e-7`` against R's IRLS run to ``epsilon = 1e-12`` (Gaussian fits
are exact least squares on both sides). Column names of ordered factors are compared with R's
own (``agegp.L``, ``agegp.Q``, ...).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from r_session import r_dataset, require_r, run_r

RTOL = 1e-7
# R stops when the deviance changes by less than epsilon, which can leave a coefficient ~1e-7
# from the solution on a flat deviance: R's IRLS is run to 1e-12, then restarted from its own
# estimates (each restart is at least one more Fisher-scoring step), so it is the converged fit.
TIGHT = """tight <- glm.control(epsilon = 1e-12, maxit = 100)
polish <- function(m) { for (i in 1:4) m <- update(m, start = coef(m)); m }
"""


def _r_fit(code: str, **frames: pd.DataFrame):
    """Run R's glm call ``code`` (assigning ``m``) and read its coefficients and model matrix."""
    return run_r(
        TIGHT + code + "\nm <- polish(m)\nout('coef', coef(m)); out('X', model.matrix(m)); out('dim', dim(model.matrix(m)))", **frames
    )


def _same_fit(fit, r, names=None) -> None:
    n, p = (int(v) for v in r["dim"])
    X = np.asarray(r["X"]).reshape((n, p), order="F")
    assert fit.design.X.shape == (n, p)
    assert_allclose(fit.design.X, X, rtol=1e-12, atol=1e-12)
    assert_allclose(fit.coef.to_numpy(), np.asarray(r["coef"]), rtol=RTOL, atol=1e-10)
    if names is not None:
        assert list(fit.coef.index) == names


@pytest.fixture(scope="module")
def mtcars() -> pd.DataFrame:
    return r_dataset("mtcars")


def test_I_power_on_an_integer_column_is_a_power(mtcars):
    assert pd.api.types.is_integer_dtype(mtcars["hp"])  # the column where ^ used to be a silent XOR
    fit = ng.glm("mpg ~ hp + I(hp^2)", mtcars, family="gaussian")
    _same_fit(fit, _r_fit("m <- glm(mpg ~ hp + I(hp^2), data = d, control = tight)", d=mtcars), ["Intercept", "hp", "I(hp ** 2)"])
    assert_allclose(fit.design.X[:, 2], mtcars["hp"].to_numpy(float) ** 2, rtol=0)


def test_log_sqrt_abs_without_np(mtcars):
    formula = "mpg ~ log(hp) + sqrt(wt) + abs(qsec - 18) + exp(-drat)"
    fit = ng.glm(formula, mtcars, family="gamma", link="log")
    r = _r_fit(f"m <- glm({formula}, family = Gamma(link = 'log'), data = d, control = tight)", d=mtcars)
    _same_fit(fit, r, ["Intercept", "log(hp)", "sqrt(wt)", "abs(qsec - 18)", "exp(-drat)"])


def test_factor_of_a_numeric_column_is_R_factor(mtcars):
    fit = ng.glm("mpg ~ factor(cyl) + wt", mtcars, family="gaussian")
    r = _r_fit("m <- glm(mpg ~ factor(cyl) + wt, data = d, control = tight)", d=mtcars)
    _same_fit(fit, r, ["Intercept", "factor(cyl)[T.6]", "factor(cyl)[T.8]", "wt"])
    assert [name.replace("(Intercept)", "Intercept") for name in r["coef"].names] == ["Intercept", "factor(cyl)6", "factor(cyl)8", "wt"]


def test_poly_is_R_orthogonal_poly_also_on_new_data(mtcars):
    fit = ng.glm("mpg ~ poly(hp, 3) + wt", mtcars, family="gaussian")
    new = pd.DataFrame({"hp": [60, 150, 230, 340], "wt": [2.0, 3.0, 3.5, 4.5]})
    r = _r_fit(
        "m <- glm(mpg ~ poly(hp, 3) + wt, data = d, control = tight)\n"
        "out('pred', predict(m, newdata = new)); out('basis', predict(poly(d$hp, 3), newdata = new$hp))",
        d=mtcars,
        new=new,
    )
    _same_fit(fit, r)
    # New data are evaluated in the training basis (R's predict.poly), not re-orthogonalized.
    X_new = fit.design.spec.get_model_matrix(new).to_numpy()
    assert_allclose(X_new[:, 1:4], np.asarray(r["basis"]).reshape((4, 3), order="F"), rtol=1e-10, atol=1e-12)
    assert_allclose(fit.predict(new, type="link").to_numpy(), np.asarray(r["pred"]), rtol=1e-10)


def test_dot_is_every_other_column_minus_weights(mtcars):
    # R's '.' would also take the weights column; here it is left out, so R is given the frame without it.
    fit = ng.glm("mpg ~ .", mtcars, family="gaussian", weights="carb")
    assert fit.formula == "mpg ~ cyl + disp + hp + drat + wt + qsec + vs + am + gear"
    rest = mtcars.drop(columns=["carb"])
    r = _r_fit("m <- glm(mpg ~ ., data = rest, weights = w$carb, control = tight)", rest=rest, w=mtcars[["carb"]])
    _same_fit(fit, r)


def test_offset_in_the_formula_with_ordered_factors_and_prediction():
    require_r("MASS")
    insurance = r_dataset("Insurance", "MASS")  # Group and Age are ordered factors in R
    assert insurance["Age"].cat.ordered and insurance["Group"].cat.ordered
    formula = "Claims ~ District + Group + Age + offset(log(Holders))"
    fit = ng.glm(formula, insurance, family="poisson")
    new = insurance.iloc[[0, 17, 40, 63]].assign(Holders=[10, 200, 3000, 45])
    r = _r_fit(
        f"m <- glm({formula}, family = poisson, data = d, control = tight)\nout('pred', predict(m, newdata = new, type = 'response'))",
        d=insurance,
        new=new,
    )
    names = [name.replace("(Intercept)", "Intercept") for name in r["coef"].names]
    polynomial = re.compile(r"\.[LQC]$|\^\d+$")
    assert (
        [n for n in fit.coef.index if polynomial.search(n)]
        == [n for n in names if polynomial.search(n)]
        == ["Group.L", "Group.Q", "Group.C", "Age.L", "Age.Q", "Age.C"]
    )
    _same_fit(fit, r)
    assert_allclose(fit.predict(new).to_numpy(), np.asarray(r["pred"]), rtol=1e-7)
    # The formula's offset and exposure= add up, as offset(log(Holders)) + log(Holders) would in R.
    both = ng.glm("Claims ~ District + Group + Age + offset(log(Holders))", insurance, family="poisson", exposure="Holders")
    twice = _r_fit(
        "m <- glm(Claims ~ District + Group + Age + offset(2 * log(Holders)), family = poisson, data = d, control = tight)", d=insurance
    )
    _same_fit(both, twice)


def test_ordered_factor_of_esoph_gets_contr_poly_names_and_numbers():
    esoph = r_dataset("esoph")
    formula = "cbind(ncases, ncontrols) ~ agegp + tobgp * alcgp"
    fit = ng.glm(formula, esoph, family="binomial")
    r = _r_fit(f"m <- glm({formula}, family = binomial, data = d, control = tight)", d=esoph)
    _same_fit(fit, r, [name.replace("(Intercept)", "Intercept") for name in r["coef"].names])
    assert fit.coef.index[1:6].tolist() == ["agegp.L", "agegp.Q", "agegp.C", "agegp^4", "agegp^5"]


def test_factor_of_an_ordered_factor_stays_ordered_as_in_R():
    esoph = r_dataset("esoph")
    formula = "cbind(ncases, ncontrols) ~ factor(agegp) + alcgp"
    fit = ng.glm(formula, esoph, family="binomial")
    r = _r_fit(f"m <- glm({formula}, family = binomial, data = d, control = tight)", d=esoph)
    _same_fit(fit, r, [name.replace("(Intercept)", "Intercept") for name in r["coef"].names])
    assert fit.coef.index[1:3].tolist() == ["factor(agegp).L", "factor(agegp).Q"]


def test_string_levels_sort_as_R_factor_in_the_C_locale():
    # Mixed case, digits and punctuation: Python's code-point order is R's in the C locale.
    rng = np.random.default_rng(7)
    levels = ["b", "B", "a", "A", "10", "9", "_x", "Zed"]
    frame = pd.DataFrame({"g": rng.choice(levels, 400), "x": rng.normal(size=400)})
    frame["y"] = rng.normal(size=400) + frame["g"].map({v: i for i, v in enumerate(levels)})
    fit = ng.glm("y ~ g + x", frame, family="gaussian")
    r = run_r(
        "invisible(Sys.setlocale('LC_COLLATE', 'C'))\nm <- glm(y ~ factor(g) + x, data = d)\nout('coef', coef(m))",
        d=frame,
    )
    assert_allclose(fit.coef.to_numpy(), np.asarray(r["coef"]), rtol=1e-10)
    r_levels = [name.removeprefix("factor(g)") for name in r["coef"].names[1:-1]]
    assert [name.removeprefix("g[T.").removesuffix("]") for name in fit.coef.index[1:-1]] == r_levels == sorted(levels)[1:]


def test_same_case_levels_sort_as_R_factor_in_its_default_locale():
    # Without mixed case, R's default (ICU) collation and code points agree.
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"g": rng.choice(["pear", "apple", "fig", "banana"], 200)})
    frame["y"] = rng.normal(size=200)
    fit = ng.glm("y ~ g", frame, family="gaussian")
    r = run_r("m <- glm(y ~ factor(g), data = d); out('coef', coef(m))", d=frame)
    assert [n.removeprefix("g[T.").removesuffix("]") for n in fit.coef.index[1:]] == [
        n.removeprefix("factor(g)") for n in r["coef"].names[1:]
    ]
    assert_allclose(fit.coef.to_numpy(), np.asarray(r["coef"]), rtol=1e-10)
