"""family="multinomial" against nnet::multinom (live R) and statsmodels' MNLogit.

nnet minimises the deviance by BFGS and stops at ``reltol`` (1e-8 by default, which leaves the
coefficients ~5e-6 from the optimum on MASS::housing); R is run here with ``reltol=1e-15`` so
that its answer is the optimum to ~1e-9, and our Newton iterations are compared with it at
1e-6 relative. statsmodels fits the same likelihood by Newton, an independent second reference
that needs no R.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.errors import DataError, SpecificationError
from r_session import r_dataset, require_r, run_r

_TIGHT = "trace = FALSE, reltol = 1e-15, abstol = 1e-300, maxit = 10000"


@pytest.mark.parametrize(
    ("dataset", "package", "formula", "weights"),
    [
        ("housing", "MASS", "Sat ~ Infl + Type + Cont", "Freq"),
        ("warpbreaks", "datasets", "tension ~ breaks + wool", None),
    ],
)
def test_multinom_matches_r(dataset, package, formula, weights):
    require_r("MASS", "nnet")
    data = r_dataset(dataset, package)
    fit = ng.glm(formula, data, family="multinomial", weights=weights)
    w = f", weights = {weights}" if weights else ""
    r = run_r(
        f"""
        m <- nnet::multinom({formula}, data = d{w}, {_TIGHT})
        out("coef", as.vector(t(coef(m))))
        out("se", sqrt(diag(vcov(m))))
        out("deviance", deviance(m)); out("aic", AIC(m)); out("bic", BIC(m)); out("loglik", as.numeric(logLik(m)))
        out("probs", as.vector(t(predict(m, type = "probs"))))
        """,
        d=data,
    )
    np.testing.assert_allclose(fit.coef.to_numpy(), r["coef"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), r["se"], rtol=1e-6)
    for name in ("deviance", "aic", "bic", "loglik"):
        assert getattr(fit, name) == pytest.approx(r[name][0], rel=1e-9), name
    np.testing.assert_allclose(fit.predict(data).to_numpy().reshape(-1), r["probs"], rtol=1e-6, atol=1e-10)
    # R's names say which coefficient is which: level-major, terms in formula order.
    assert [name.split(":")[0] for name in r["se"].names] == [level for level, _ in fit.coef.index]


def test_multinom_matches_statsmodels_mnlogit():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    n = 600
    x1, x2 = rng.normal(size=n), rng.uniform(-1, 1, size=n)
    eta = np.column_stack([np.zeros(n), 0.3 + 0.8 * x1, -0.2 - 0.5 * x1 + 1.2 * x2])
    prob = np.exp(eta) / np.exp(eta).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=p) for p in prob])
    df = pd.DataFrame({"y": np.array(["a", "b", "c"])[y], "x1": x1, "x2": x2})
    fit = ng.glm("y ~ x1 + x2", df, family="multinomial")
    reference = sm.MNLogit(y, sm.add_constant(np.column_stack([x1, x2]))).fit(method="newton", disp=False, tol=1e-12, maxiter=100)
    np.testing.assert_allclose(fit.coef_matrix.to_numpy(), reference.params.T, rtol=1e-7)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), np.asarray(reference.bse).T.reshape(-1), rtol=1e-6)
    assert fit.loglik == pytest.approx(reference.llf, rel=1e-10)
    assert fit.levels == ("a", "b", "c")


def test_weights_are_case_counts():
    """Rows with weight w give the fit of w identical rows (R's case weights)."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"y": rng.choice(["u", "v", "w"], size=40), "x": rng.normal(size=40)})
    counts = rng.integers(1, 4, size=40)
    weighted = ng.glm("y ~ x", df.assign(n=counts), family="multinomial", weights="n")
    expanded = ng.glm("y ~ x", df.loc[df.index.repeat(counts)].reset_index(drop=True), family="multinomial")
    np.testing.assert_allclose(weighted.coef.to_numpy(), expanded.coef.to_numpy(), rtol=1e-9)
    assert weighted.deviance == pytest.approx(expanded.deviance, rel=1e-12)


def test_separation_warns():
    df = pd.DataFrame({"y": ["a", "a", "b", "b", "c", "c"], "x": [0.0, 0.1, 1.0, 1.1, 2.0, 2.1]})
    with pytest.warns(ng.errors.SeparationWarning, match="separated"):
        fit = ng.glm("y ~ x", df, family="multinomial")
    assert fit.info.status.name == "SEPARATION" and not fit.info.converged


def test_bad_multinomial_input_is_refused():
    df = pd.DataFrame({"y": ["a", "a", "a"], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="at least two levels"):
        ng.glm("y ~ x", df, family="multinomial")
    df = pd.DataFrame({"y": ["a", "b", "a", "b"], "x": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(SpecificationError, match="logit link only"):
        ng.glm("y ~ x", df, family="multinomial", link="probit")
    with pytest.raises(SpecificationError, match="no offset"):
        ng.glm("y ~ x", df, family="multinomial", offset=np.zeros(4))
    # Saving is no longer refused: tests/unit/test_multinomial_model_file.py round-trips multinomial fits.


def test_tables_by_term_refuse_a_multinomial_fit_saying_why():
    df = pd.DataFrame({"y": ["a", "b", "c", "a", "b", "c", "b", "a"], "x": [0.1, 0.5, 0.9, 0.4, 0.2, 0.7, 0.8, 0.3]})
    fit = ng.glm("y ~ x", df, family="multinomial")
    for table in (ng.anova, ng.drop1, ng.step):
        with pytest.raises(SpecificationError, match="not available for multinomial fits yet"):
            table(fit)


def test_aliased_columns_are_named():
    df = pd.DataFrame({"y": ["a", "b", "c", "a", "b", "c", "b", "a"], "x": [0.1, 0.5, 0.9, 0.4, 0.2, 0.7, 0.8, 0.3]})
    with pytest.raises(ng.errors.RankDeficientError, match=r"'I\(2 \* x\)' ≈ 2·x"):
        ng.glm("y ~ x + I(2 * x)", df, family="multinomial")
