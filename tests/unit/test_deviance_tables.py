"""Analysis of deviance by term without R: each row is the fit the table says it is.

The R parity tests (tests/parity/test_anova_vs_r.py) need Rscript; these hold everywhere. Every
sub-model a table reports is refitted here with ``ng.glm`` on the corresponding formula, and the
table's deviance, df and (for a known dispersion, where R's drop1 AIC is the true AIC) AIC
must be that fit's. Marginality is checked on the term sets R documents (``?drop.scope``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.inference.terms import Term, add_scope, drop_scope


def _term(label: str) -> Term:
    return Term(label, frozenset(label.split(":")))


def _labels(terms) -> list[str]:
    return [term.label for term in terms]


def test_drop_scope_keeps_marginality():
    model = [_term(x) for x in ("a", "b", "c", "a:b")]
    assert _labels(drop_scope(model, [])) == ["c", "a:b"]
    assert _labels(drop_scope(model, [_term("c")])) == ["a:b"]
    assert _labels(drop_scope([_term("a")], [])) == ["a"]


def test_add_scope_waits_for_the_margins():
    model = [_term("a")]
    upper = [_term(x) for x in ("a", "b", "c", "a:b", "b:c", "a:b:c")]
    assert _labels(add_scope(model, upper)) == ["b", "c"]
    assert _labels(add_scope([_term(x) for x in ("a", "b", "c")], upper)) == ["a:b", "b:c"]
    assert _labels(add_scope([_term(x) for x in ("a", "b", "c")], [*upper[:3], _term("b:a")])) == ["b:a"]  # a:b is b:a


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 240
    data = pd.DataFrame({"a": rng.choice(["p", "q", "r"], n), "b": rng.choice(["u", "v"], n), "x": rng.normal(size=n)})
    effect = {"p": 0.0, "q": 0.3, "r": -0.2}
    data["y"] = rng.poisson(np.exp(0.4 + data["a"].map(effect) + 0.3 * data["x"] + 0.2 * (data["b"] == "v")))
    return data


def test_sequential_rows_are_the_nested_fits(frame):
    fit = ng.glm("y ~ a + x + b", frame, family="poisson")
    table = ng.anova(fit)
    assert table.index.tolist() == ["NULL", "a", "x", "b"]
    for i, formula in enumerate(["y ~ 1", "y ~ a", "y ~ a + x", "y ~ a + x + b"]):
        nested = ng.glm(formula, frame, family="poisson")
        assert_allclose(table["deviance"].iloc[i], nested.deviance, rtol=1e-9)
        assert table["df_resid"].iloc[i] == nested.df_resid
    assert_allclose(table["deviance_change"].iloc[1:].sum(), fit.null_deviance - fit.deviance, rtol=1e-9)


def test_drop1_rows_are_the_refits_and_their_aic(frame):
    fit = ng.glm("y ~ a + x + b", frame, family="poisson")
    table = ng.drop1(fit)
    for term, formula in [("a", "y ~ x + b"), ("x", "y ~ a + b"), ("b", "y ~ a + x")]:
        smaller = ng.glm(formula, frame, family="poisson")
        assert_allclose(table.loc[term, "deviance"], smaller.deviance, rtol=1e-9)
        assert_allclose(table.loc[term, "aic"], smaller.aic, rtol=1e-9)  # a known dispersion: R's drop1 AIC is the AIC
        assert table.loc[term, "df"] == fit.rank - smaller.rank
    assert_allclose(table.loc["<none>", "aic"], fit.aic, rtol=1e-12)


def test_add1_rows_are_the_refits(frame):
    fit = ng.glm("y ~ a", frame, family="poisson")
    table = ng.add1(fit, "~ . + x + b + a:b")
    assert table.index.tolist() == ["<none>", "x", "b"]  # a:b waits for b
    for term in ("x", "b"):
        bigger = ng.glm(f"y ~ a + {term}", frame, family="poisson")
        assert_allclose(table.loc[term, "deviance"], bigger.deviance, rtol=1e-9)
        assert_allclose(table.loc[term, "aic"], bigger.aic, rtol=1e-9)


def test_step_ends_at_a_model_no_single_change_improves(frame):
    fit = ng.glm("y ~ a * b + x", frame, family="poisson")
    best, path = ng.step(fit, "~ (a + b + x)^2")
    assert path["aic"].is_monotonic_decreasing
    assert_allclose(path["aic"].iloc[-1], best.aic, rtol=1e-12)
    assert (ng.drop1(best)["aic"].iloc[1:] > best.aic - 1e-7).all()
    assert best.refit().deviance == pytest.approx(best.deviance, rel=1e-12)  # a fit like any other


def test_k_is_the_penalty_per_coefficient(frame):
    fit = ng.glm("y ~ a + x + b", frame, family="poisson")
    aic, bic = ng.drop1(fit), ng.drop1(fit, k=np.log(fit.n_obs))
    ranks = fit.rank - aic["df"].fillna(0.0)
    assert_allclose(bic["aic"] - aic["aic"], (np.log(fit.n_obs) - 2.0) * ranks, rtol=1e-10)
