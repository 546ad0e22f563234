"""The IRLS state machine (fit/irls_state.py): init, one step, terminate, and the control's fields.

References are computed here independently: the starting values from R's ``poisson()$initialize``
(μ = y + 0.1), one weighted least-squares solve by NumPy's ``lstsq`` on √W·X, R's stopping rule
recomputed from the recorded deviances, and statsmodels for the optimum.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

import neuralglm as ng
from neuralglm.errors import ConvergenceWarning, DivergenceError, RankDeficientError
from neuralglm.family.family import Poisson
from neuralglm.family.link import Identity, Log
from neuralglm.fit import gradient, gradient_steps, irls_state
from neuralglm.fit.gradient import GradientControl
from neuralglm.fit.info import HISTORY_COLUMNS, Status
from neuralglm.fit.irls import fit_irls
from neuralglm.fit.irls_state import IRLSControl, IRLSProblem


def poisson_problem(n: int = 400, seed: int = 0) -> IRLSProblem:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    offset = rng.uniform(-0.3, 0.3, n)
    weights = rng.uniform(0.5, 2.0, n)
    y = rng.poisson(np.exp(X @ np.array([0.3, 0.5, -0.2]) + offset)).astype(float)
    return IRLSProblem(X, y, weights, offset, Poisson(), Log(), ("Intercept", "a", "b"))


def sm_deviance(problem: IRLSProblem, mu: np.ndarray) -> float:
    return float(sm.families.Poisson().deviance(problem.y, mu, var_weights=problem.weights))


def test_init_is_R_start_from_the_data_means():
    problem = poisson_problem()
    state = irls_state.init(problem)
    mu = problem.y + 0.1  # R's poisson()$initialize
    assert state.coef is None and state.iteration == 0 and state.records == () and state.factor is None
    assert_allclose(state.mu, mu, rtol=1e-15)
    assert_allclose(state.eta, np.log(mu), rtol=1e-15)
    assert_allclose(state.deviance, sm_deviance(problem, mu), rtol=1e-12)
    assert not state.rank_checked and irls_state.init(problem, check_rank=False).rank_checked
    assert irls_state.terminate(IRLSControl(), state) is None


def test_one_step_is_one_weighted_least_squares_solve():
    problem = poisson_problem()
    state = irls_state.init(problem)
    after = irls_state.step(problem, IRLSControl(), state)
    # Poisson/log: W = w·μ, z = η − offset + (y − μ)/μ at the starting means.
    mu = state.mu
    W = problem.weights * mu
    z = state.eta - problem.offset + (problem.y - mu) / mu
    root = np.sqrt(W)
    expected = np.linalg.lstsq(problem.X * root[:, None], z * root, rcond=None)[0]
    assert_allclose(after.coef, expected, rtol=1e-12)
    assert_allclose(after.eta, problem.X @ expected + problem.offset, rtol=1e-12)
    assert_allclose(after.deviance, sm_deviance(problem, np.exp(after.eta)), rtol=1e-12)
    assert_allclose(after.factor.inverse(), np.linalg.inv((problem.X * W[:, None]).T @ problem.X), rtol=1e-10)
    assert after.iteration == 1 and after.rank_checked and len(after.records) == 1
    iteration, objective, gradient_norm, step, validation, _ = after.records[0]
    assert iteration == 1 and math.isinf(step) and math.isnan(gradient_norm) and math.isnan(validation)
    assert_allclose(objective, after.deviance / problem.weights.sum(), rtol=1e-15)
    # The state is a value: the step made a new one and left the old one as it was.
    assert state.coef is None and state.iteration == 0


def test_terminate_fires_on_R_criterion():
    """With no polishing steps, IRLS stops at the first iteration where |Δdev| / (|dev| + 0.1) < epsilon."""
    problem = poisson_problem(seed=1)
    control = IRLSControl(epsilon=1e-8, polish_steps=0)
    state = irls_state.init(problem)
    deviances = [state.deviance]
    while (status := irls_state.terminate(control, state)) is None:
        state = irls_state.step(problem, control, state)
        deviances.append(state.deviance)
    assert status is Status.CONVERGED
    changes = [abs(b - a) / (abs(b) + 0.1) for a, b in itertools.pairwise(deviances)]
    assert [c < control.epsilon for c in changes] == [False] * (len(changes) - 1) + [True]
    # The default rule then polishes to 1e-9 standard errors: more iterations, and the statsmodels optimum.
    full = fit_irls(*problem[:6], column_names=problem.column_names)
    assert full.info.n_iter >= state.iteration
    reference = sm.GLM(problem.y, problem.X, family=sm.families.Poisson(), offset=problem.offset, var_weights=problem.weights)
    assert_allclose(full.coef, reference.fit(tol=1e-13, tol_criterion="params").params, rtol=1e-9)


def test_a_small_subsample_threshold_takes_the_large_data_path_to_the_same_optimum():
    problem = poisson_problem(n=3_000, seed=2)
    default = fit_irls(*problem[:6], column_names=problem.column_names)
    control = IRLSControl(subsample_min_n=1_000, subsample_rows=500)
    warm = fit_irls(*problem[:6], column_names=problem.column_names, control=control)
    history = warm.info.history
    # The preconditioned steps come first in the history: they alone report a gradient.
    assert np.isfinite(history["gradient_norm"].iloc[0]) and np.isnan(history["gradient_norm"].iloc[-1])
    assert np.isnan(default.info.history["gradient_norm"]).all()
    se = np.sqrt(np.diag(default.factor.inverse()))
    # Both stop within 1e-9 SE of the one optimum (coef_tol), so they agree to 2e-9 SE.
    assert np.max(np.abs(warm.coef - default.coef) / se) < 2e-9
    assert_allclose(np.sqrt(np.diag(warm.factor.inverse())), se, rtol=1e-7)


def test_control_fields_change_the_iterations_not_the_answer():
    problem = poisson_problem(seed=3)
    default = fit_irls(*problem[:6], column_names=problem.column_names)
    # A Gram factor never reused as the information: the stopping rule costs Grams, not accuracy.
    strict = fit_irls(*problem[:6], column_names=problem.column_names, control=IRLSControl(covariance_rtol=0.0))
    se = np.sqrt(np.diag(default.factor.inverse()))
    assert np.max(np.abs(strict.coef - default.coef) / se) < 2e-9
    assert strict.info.n_iter >= default.info.n_iter


def test_step_halving_goes_back_until_valid_and_max_halvings_bounds_it():
    """R's rule: a proposal with invalid means is halved towards the last coefficients until valid."""
    rng = np.random.default_rng(4)
    n = 50
    x = rng.uniform(0.0, 1.0, n)
    problem = IRLSProblem(
        np.column_stack([np.ones(n), x]),
        rng.poisson(1.0 + x).astype(float),
        np.ones(n),
        np.zeros(n),
        Poisson(),
        Identity(),
        ("Intercept", "x"),
    )
    old, proposal = np.array([1.0, 1.0]), np.array([-3.0, 1.0])  # μ = 1 + x > 0, then μ = x − 3 < 0
    # Independent: the first k with every mean of old + (proposal − old)/2^k positive.
    k = next(k for k in range(1, 30) if np.all(problem.X @ (old + (proposal - old) / 2**k) > 0))
    _, coef, eta, _, _ = irls_state._valid_step(problem, IRLSControl(), old, proposal, 1)
    assert_allclose(coef, old + (proposal - old) / 2**k, rtol=1e-15)
    assert np.all(eta > 0)
    with pytest.raises(DivergenceError, match="no valid coefficients"):
        irls_state._valid_step(problem, IRLSControl(max_halvings=k - 1), old, proposal, 1)


def one_sentence(message: str) -> bool:
    """One sentence: a single full stop at the end, and no capital letter after a semicolon or colon."""
    return message.endswith(".") and re.search(r"\.\s", message) is None and re.search(r"[;:]\s*[A-Z]", message) is None


def test_iteration_limit_warns_and_is_recorded():
    problem = poisson_problem(seed=5)
    with pytest.warns(ConvergenceWarning, match=r"IRLS did not converge in 2 iterations") as record:
        solution = fit_irls(*problem[:6], column_names=problem.column_names, control=IRLSControl(max_iter=2))
    info = solution.info
    assert info.status is Status.ITERATION_LIMIT and not info.converged and info.n_iter == 2
    assert list(info.history.columns) == list(HISTORY_COLUMNS) and info.history["iteration"].tolist() == [1, 2]
    # The message reads as one sentence (it joined the status sentence after a semicolon before).
    assert str(record[0].message) == info.message
    assert re.fullmatch(
        r"IRLS did not converge in 2 iterations \(last relative deviance change \d\.\d\de[-+]\d+\): "
        r"increase max_iter, scale the inputs, or simplify the model\.",
        info.message,
    )
    assert one_sentence(info.message)


def test_status_messages_with_details_read_as_one_sentence():
    """Details go in parentheses before the status sentence's full stop, not after it."""
    converged = gradient._lbfgs_outcome(GradientControl(solver="lbfgs", tol=1e-4), 30, 2e-5, 0, 0.0)
    assert converged == (Status.CONVERGED, "The convergence criterion was met (largest gradient component 2.00e-05 ≤ tol=0.0001).", False)
    status, message = gradient._minibatch_outcome(GradientControl(early_stopping=True), True, True, 7, 17)
    assert status is Status.EARLY_STOPPED
    assert message == (
        "Training stopped early: the validation deviance stopped improving; the best weights were restored "
        "(best validation deviance at epoch 7 of 17)."
    )
    assert one_sentence(converged[1]) and one_sentence(message)


def test_aliased_columns_raise_at_the_first_step():
    problem = poisson_problem(seed=6)
    X = np.column_stack([problem.X, problem.X[:, 1] + problem.X[:, 2]])
    aliased = problem._replace(X=X, column_names=(*problem.column_names, "a_plus_b"))
    with pytest.raises(RankDeficientError, match=r"'a_plus_b' ≈ 1·a \+ 1·b"):
        irls_state.step(aliased, IRLSControl(), irls_state.init(aliased))


def test_no_valid_start_raises():
    problem = poisson_problem(seed=7)
    with pytest.raises(DivergenceError, match="starting coefficients"):
        irls_state.init(problem, start=np.array([np.inf, 0.0, 0.0]))


# ---- statuses of the gradient solvers ---------------------------------------------------------


def test_an_lbfgs_stall_is_stalled_not_converged():
    """tol=1e-300 cannot be met: the line search stops making progress at the optimum (float64, working precision)."""
    rng = np.random.default_rng(8)
    df = pd_frame(rng)
    net = ng.fit("y ~ x1 + x2", df, family="poisson", l2=1e-6, solver="lbfgs", dtype="float64", tol=1e-300, epochs=2000)
    assert net.info.status is Status.STALLED and not net.info.converged
    assert "working precision" in net.info.message
    assert net.info.at_precision
    assert " · stalled at working precision · " in str(net.summary())  # the solver line's status
    assert "\nNote: " in str(net.summary()) and "\nWarning: " not in str(net.summary())  # it did not warn
    # The summary reads the structured field, not the message: the same fit marked as a stall
    # above the floor (its message, shown on the warning line, still says "working precision")
    # is only "stalled" on the solver line.
    above = dataclasses.replace(net, info=dataclasses.replace(net.info, at_precision=False))
    assert " · stalled at working precision · " not in str(above.summary())
    assert " · stalled · " in str(above.summary()) and "\nWarning: " in str(above.summary())
    glm = ng.glm("y ~ x1 + x2", df, family="poisson")
    assert_allclose(net.coef.to_numpy(), glm.coef.to_numpy(), rtol=1e-4)  # l2 = 1e-6 moves them by ~1e-6


def pd_frame(rng):
    import pandas as pd

    n = 300
    df = pd.DataFrame({"x1": rng.standard_normal(n), "x2": rng.standard_normal(n)})
    df["y"] = rng.poisson(np.exp(0.2 + 0.4 * df.x1 - 0.3 * df.x2)).astype(float)
    return df


@pytest.mark.parametrize(("gmax", "floor", "warns"), [(1e-3, 1e-2, False), (1e-1, 1e-2, True)])
def test_a_stall_warns_only_above_the_precision_floor(gmax, floor, warns):
    control = GradientControl(solver="lbfgs", tol=1e-5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, message, at_precision = gradient._lbfgs_outcome(control, 100, gmax, 5, floor)
    assert status is Status.STALLED
    assert [issubclass(w.category, ConvergenceWarning) for w in caught] == ([True] if warns else [])
    assert ("working precision" in message) is not warns
    assert at_precision is not warns


def test_the_stall_floor_is_the_gradient_where_the_objective_is_within_rounding_of_its_minimum():
    """A stored pair s = e₀, y = h·e₀ says the curvature is h: the floor is 10·√(8·eps·|f|·h)."""
    import jax.numpy as jnp

    h, value = 400.0, 0.7
    state = gradient_steps.init_lbfgs_state((jnp.zeros(3, dtype=jnp.float32),), memory_size=2)
    memory = np.zeros((2, 3), dtype=np.float32)
    memory[0, 0] = 1.0
    lbfgs_state = state[0]._replace(diff_params_memory=jnp.asarray(memory), diff_updates_memory=jnp.asarray(h * memory))
    floor = gradient._stall_floor((lbfgs_state, *state[1:]), value, jnp.float32)
    assert_allclose(floor, gradient.STALL_MARGIN * np.sqrt(8 * float(np.finfo(np.float32).eps) * value * h), rtol=1e-12)
    assert gradient._stall_floor(state, value, jnp.float32) == 0.0  # no curvature known yet: every stall warns
