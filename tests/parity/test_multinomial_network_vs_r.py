"""A multinomial network without hidden units against live nnet::multinom (MASS::housing).

The network is trained by L-BFGS and finished by Newton's method at the maximum-likelihood
estimates; R's BFGS is run with a tight ``reltol`` so that its answer is the optimum to ~1e-9
(see test_multinomial_vs_r.py). Both are compared at 1e-6 relative, as the GLM is.
"""

from __future__ import annotations

import numpy as np
import pytest

import neuralglm as ng
from r_session import r_dataset, require_r, run_r


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_network_without_hidden_units_matches_multinom(solver):
    require_r("MASS", "nnet")
    housing = r_dataset("housing", "MASS")
    formula = "Sat ~ Infl + Type + Cont"
    net = ng.fit(formula, housing, family="multinomial", weights="Freq", solver=solver, epochs=20)
    r = run_r(
        f"""
        m <- nnet::multinom({formula}, data = d, weights = Freq, trace = FALSE, reltol = 1e-15, abstol = 1e-300, maxit = 10000)
        out("coef", as.vector(t(coef(m))))
        out("deviance", deviance(m)); out("aic", AIC(m))
        out("probs", as.vector(t(predict(m, newdata = d, type = "probs"))))
        """,
        d=housing,
    )
    np.testing.assert_allclose(net.coef.to_numpy(), r["coef"], rtol=1e-6, atol=1e-8)
    assert net.deviance == pytest.approx(r["deviance"][0], rel=1e-9)
    assert net.aic == pytest.approx(r["aic"][0], rel=1e-9)
    np.testing.assert_allclose(net.predict(housing).to_numpy().reshape(-1), r["probs"], rtol=1e-6, atol=1e-10)
