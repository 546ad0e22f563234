"""``fit.conf_int(method="profile")`` against live R: MASS's ``confint.glm`` and the profile itself.

MASS evaluates the signed root deviance ``z`` on a grid (steps of ``zmax/5`` standard errors)
and inverts a spline through it, so its ends carry interpolation error; ours are roots found
by ``brentq``. Two checks, each with a tolerance that follows from how the reference is made:

- **exactness**: R refits the model with each coefficient held at our ends (``glm.fit`` with
  ``x_j·b`` in the offset, ``epsilon = 1e-14``) and computes ``z`` itself. It must be
  ``∓ qnorm((1 − level)/2)`` to 1e-6: the error of our root (``xtol`` 1e-10 standard
  errors) and of both deviances (relative 1e-12) are far smaller.
- **MASS**: ``confint`` from a profile on a grid 20 times finer than the default (``del =
  zmax/100``) agrees with our ends to 1e-5 standard errors. A cubic spline's error shrinks
  with the fourth power of the step; on esoph's strongly curved intercept profile a grid 8
  times finer than the default still missed by 1.04e-5 standard errors, 20 times finer is
  well inside. MASS's default ``confint(fit)`` is checked too, to 1e-3 standard errors (its
  grid's error).

With an estimated dispersion (Gamma, Gaussian) MASS compares ``tau = sqrt(ΔD/φ̂)`` with
normal quantiles, and so do we.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

import neuralglm as ng
from r_session import r_dataset, require_r, run_r, unordered


def _trees():
    d = r_dataset("trees")
    d["log_girth"], d["log_height"] = np.log(d["Girth"]), np.log(d["Height"])
    return d


CASES = {
    "warpbreaks-poisson": (lambda: r_dataset("warpbreaks"), "breaks ~ wool + tension", {"family": "poisson"}, "poisson"),
    "insurance-poisson-offset": (
        lambda: unordered(r_dataset("Insurance", "MASS")),
        "Claims ~ District + Group + Age",
        {"family": "poisson", "exposure": "Holders"},
        "poisson",
    ),
    "esoph-binomial": (
        lambda: unordered(r_dataset("esoph")),
        "cbind(ncases, ncontrols) ~ agegp + alcgp",
        {"family": "binomial"},
        "binomial",
    ),
    "trees-gamma-log": (_trees, "Volume ~ log_girth + log_height", {"family": "gamma", "link": "log"}, "Gamma(link = 'log')"),
    "insectsprays-poisson-sqrt": (
        lambda: r_dataset("InsectSprays"),
        "count ~ spray",
        {"family": "poisson", "link": "sqrt"},
        "poisson(link = 'sqrt')",
    ),
}

R_CODE = """
m <- glm({formula}, data = d, family = {family}{offset}, control = glm.control(epsilon = 1e-14, maxit = 100))
X <- model.matrix(m); mf <- model.frame(m); Y <- model.response(mf)
O <- model.offset(mf); if (is.null(O)) O <- rep(0, nrow(X))
W <- model.weights(mf); if (is.null(W)) W <- rep(1, nrow(X))
phi <- summary(m)$dispersion
z_at <- function(j, b) {{
  fm <- glm.fit(X[, -j, drop = FALSE], Y, weights = W, offset = O + X[, j] * b, family = family(m),
                control = glm.control(epsilon = 1e-14, maxit = 100))
  sign(b - coef(m)[[j]]) * sqrt(max(fm$deviance - deviance(m), 0) / phi)
}}
out('z_lower', sapply(seq_len(ncol(X)), function(j) z_at(j, ours$lower[j])))
out('z_upper', sapply(seq_len(ncol(X)), function(j) z_at(j, ours$upper[j])))
out('se', sqrt(diag(vcov(m))))
out('default', suppressMessages(confint(m, level = {level})))
alpha <- (1 - {level}) / 4
zmax <- if (family(m)$family %in% c('binomial', 'poisson')) sqrt(qchisq(1 - alpha, 1)) else sqrt(qf(1 - alpha, 1, nrow(X) - ncol(X)))
fine <- profile(m, alpha = alpha, del = zmax / 100, maxsteps = 400)
out('fine', MASS:::confint.profile.glm(fine, level = {level}))
"""


@pytest.mark.parametrize(("case", "level"), [(case, 0.95) for case in CASES] + [("warpbreaks-poisson", 0.8), ("trees-gamma-log", 0.8)])
def test_profile_intervals_match_r(case, level):
    require_r("MASS")
    load, formula, options, r_family = CASES[case]
    data = load()
    fit = ng.glm(formula, data, **options)
    ours = fit.conf_int(level, method="profile")
    assert list(ours.columns) == ["lower", "upper"]
    assert list(ours.index) == list(fit.coef.index)
    assert ours.attrs["level"] == level
    offset = f", offset = log({options['exposure']})" if "exposure" in options else ""
    code = R_CODE.format(formula=formula, family=r_family, offset=offset, level=level)
    r = run_r(code, d=data, ours=ours.reset_index(drop=True))
    q = stats.norm.ppf(0.5 + level / 2)
    assert_allclose(r["z_lower"], -q, rtol=0, atol=1e-6)
    assert_allclose(r["z_upper"], q, rtol=0, atol=1e-6)
    se = np.asarray(r["se"])
    n = len(se)
    fine = np.column_stack([r["fine"][:n], r["fine"][n:]])
    default = np.column_stack([r["default"][:n], r["default"][n:]])
    assert np.all(np.abs(ours.to_numpy() - fine) <= 1e-5 * se[:, None])
    assert np.all(np.abs(ours.to_numpy() - default) <= 1e-3 * se[:, None])


def test_negative_binomial_with_estimated_theta_matches_glm_nb():
    """glm.nb: MASS profiles with θ held at its estimate, and so do we (the fit's family carries θ)."""
    require_r("MASS")
    quine = unordered(r_dataset("quine", "MASS"))
    fit = ng.glm("Days ~ Eth + Sex + Age", quine, family="negative_binomial")
    r = run_r(
        "m <- MASS::glm.nb(Days ~ Eth + Sex + Age, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))\n"
        "out('ci', suppressMessages(confint(m)))\n"
        "p <- predict(m, newdata = d[1:5, ], type = 'response', se.fit = TRUE); out('fit', p$fit); out('se', p$se.fit)",
        d=quine,
    )
    ours = fit.conf_int(method="profile").to_numpy()
    n = len(ours)
    default = np.column_stack([r["ci"][:n], r["ci"][n:]])
    assert np.all(np.abs(ours - default) <= 1e-3 * fit.std_errors.to_numpy()[:, None])  # MASS's default grid
    table = fit.predict(quine.head(5), se_fit=True)
    assert_allclose(table["fit"], r["fit"], rtol=1e-6)
    assert_allclose(table["se_fit"], r["se"], rtol=1e-6)
