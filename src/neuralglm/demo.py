"""``neuralglm demo``: the library's idea shown on data, in short sections, each with its picture.

1. Linear truth: OLS in closed form = a network with no hidden layer trained by L-BFGS
   (plot: both sets of coefficients, OLS with ±2 standard errors).
2. Nonlinear truth: OLS vs a ReLU network, held-out deviance and R², a plot of both fits.
3. Binary truth: logistic regression = a no-hidden-layer network with sigmoid output; then a
   one-hidden-layer network on a circular boundary, with decision surfaces.
4. Hidden layers as feature engineering: the last layer's features, drawn as curves over the
   input, and the GLM refitted on them.
5. Real data (car insurance claims with exposure): Poisson GLM vs neural Poisson GLM,
   compared by 5-fold cross-validation, with their calibration by decile.
6. Bootstrap and conformal bands for the claims network.
7. Nesting the GLM: GLM, network, CANN and LocalGLMnet on a simulated motor portfolio, by
   cross-validated deviance, balance, distance to the true rate and Gini (Lorenz curves).

The sections are listed in :data:`SECTIONS`, in order; a section is a function of the shared
:class:`Context` and the results of the sections before it, returning what it showed (its
plot under ``"plot"``). Everything is simulated from a fixed seed or shipped with the
package; no network access.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import neuralglm as ng
from neuralglm.cross_validation import cross_validate
from neuralglm.evaluate import heldout_deviance, heldout_deviance_explained

_RULE = "─" * 78


@dataclass(frozen=True)
class Context:
    """What every section gets: data size, iteration cap, seed, and the folder for its plot."""

    n_obs: int
    epochs: int
    seed: int
    out: Path


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"\nPlot: {path}")
    return path


def _split(data: pd.DataFrame, seed: int, fraction: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    test = rng.random(len(data)) < fraction
    return data.loc[~test], data.loc[test]


def _side_by_side(left: pd.Series, right: pd.Series, left_name: str, right_name: str) -> str:
    table = pd.DataFrame({left_name: left, right_name: right, "|difference|": (left - right).abs()})
    return table.to_string(float_format=lambda v: f"{v:.6f}" if abs(v) >= 1e-6 else f"{v:.1e}")


def _linear_truth(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    n_obs, seed = context.n_obs, context.seed
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n_obs, 3)), columns=["x1", "x2", "x3"])
    data["y"] = 1.0 + 2.0 * data["x1"] - 1.0 * data["x2"] + 0.5 * data["x3"] + rng.normal(size=n_obs)
    ols = ng.glm("y ~ x1 + x2 + x3", data)
    net = ng.fit("y ~ x1 + x2 + x3", data, hidden=(), solver="lbfgs", dtype="float64", tol=1e-10, seed=seed)
    print("y = 1 + 2·x1 − x2 + 0.5·x3 + ε,", f"n = {n_obs:,}\n")
    print(_side_by_side(ols.coef, net.coef, "OLS (QR)", "network, L-BFGS"))
    difference = float(np.max(np.abs(ols.coef - net.coef)))
    print(f"\nLargest difference {difference:.1e}: the network with no hidden layer is the linear model.")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    position = np.arange(len(ols.coef))
    ax.errorbar(position - 0.08, ols.coef, yerr=2 * ols.std_errors, fmt="o", color="#D55E00", capsize=3, label="OLS (QR), ±2 SE")
    ax.plot(position + 0.08, net.coef, "s", color="#009E73", label="network with no hidden layer (L-BFGS)")
    ax.plot(position, [1.0, 2.0, -1.0, 0.5], "k_", markersize=18, label="truth")
    ax.set_xticks(position, ols.coef.index)
    ax.set(ylabel="coefficient", title="Same estimates: a network without hidden layers is the GLM")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return {"max_coef_difference": difference, "plot": _save(fig, context.out / "linear_coefficients.png")}


def _relu_truth(x: np.ndarray) -> np.ndarray:
    # Y = ReLU(x W1 + b1) W2: three hinge units.
    hidden = np.maximum(0.0, np.column_stack([x - 1.0, -x - 0.5, x + 2.0]))
    return hidden @ np.array([2.0, 1.5, 0.5]) - 1.0


def _nonlinear_truth(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    n_obs, seed, epochs = context.n_obs, context.seed, context.epochs
    rng = np.random.default_rng(seed + 1)
    x = rng.uniform(-3.0, 3.0, n_obs)
    data = pd.DataFrame({"x": x, "y": _relu_truth(x) + rng.normal(scale=0.5, size=n_obs)})
    train, test = _split(data, seed)
    ols = ng.glm("y ~ x", train)
    net = ng.fit("y ~ x", train, hidden=(16,), activation="relu", l2=0.0, solver="lbfgs", epochs=epochs, seed=seed)
    rows = {
        "OLS": (heldout_deviance(ols, test), heldout_deviance_explained(ols, test)),
        "ReLU network (16)": (heldout_deviance(net, test), heldout_deviance_explained(net, test)),
    }
    truth_sse = float(np.sum((test["y"] - _relu_truth(test["x"].to_numpy())) ** 2))
    rows["true function"] = (truth_sse, float("nan"))
    table = pd.DataFrame(rows, index=["held-out deviance (SSE)", "held-out R²"]).T
    print(f"n = {len(train):,} training, {len(test):,} held-out rows\n")
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(data["x"], data["y"], s=6, alpha=0.25, color="0.5", label="data")
    grid = pd.DataFrame({"x": np.linspace(-3, 3, 300)})
    ax.plot(grid["x"], _relu_truth(grid["x"].to_numpy()), "k--", lw=1.5, label="truth")
    ax.plot(grid["x"], ols.predict(grid), lw=2.5, color="#d95f02", label="OLS")
    ax.plot(grid["x"], net.predict(grid), lw=2.5, color="#1b9e77", label="ReLU network")
    ax.set(xlabel="x", ylabel="y", title="A straight line cannot follow a ReLU truth; a network can")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return {"net": net, "data": train, "table": table, "plot": _save(fig, context.out / "nonlinear_fit.png")}


def _binary_truth(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    from neuralglm.plots import decision_surface

    n_obs, seed, epochs = context.n_obs, context.seed, context.epochs
    rng = np.random.default_rng(seed + 2)
    data = pd.DataFrame(rng.uniform(-2.0, 2.0, size=(n_obs, 2)), columns=["x1", "x2"])
    linear_p = 1.0 / (1.0 + np.exp(-(-0.5 + 1.5 * data["x1"] - 1.0 * data["x2"])))
    data["y"] = (rng.random(n_obs) < linear_p).astype(float)
    logistic = ng.glm("y ~ x1 + x2", data, family="binomial")
    net0 = ng.fit("y ~ x1 + x2", data, family="binomial", hidden=(), solver="lbfgs", dtype="float64", tol=1e-10, seed=seed)
    print(_side_by_side(logistic.coef, net0.coef, "logistic (IRLS)", "network, L-BFGS"))
    difference = float(np.max(np.abs(logistic.coef - net0.coef)))
    print(f"\nLargest difference {difference:.1e}.")

    circle_p = 1.0 / (1.0 + np.exp(-4.0 * (1.5 - data["x1"] ** 2 - data["x2"] ** 2)))
    circle = data[["x1", "x2"]].assign(y=(rng.random(n_obs) < circle_p).astype(float))
    train, test = _split(circle, seed)
    flat = ng.glm("y ~ x1 + x2", train, family="binomial")
    # 8 units with l2 = 1e-2: a well-posed fit. With 16 units and l2 = 1e-3 redundant units left
    # flat directions: in 16 checks (seeds 0-7 × n = 400, 2000) L-BFGS hit the 5000-iteration cap
    # 5 times in float32 (the default used here) and 9 times in float64; with these settings it
    # converged in all 16 in both, with a held-out deviance 0.19-0.74× the logistic
    # regression's (2026-12-03).
    curved = ng.fit(
        "y ~ x1 + x2", train, family="binomial", hidden=(8,), activation="tanh", l2=1e-2, solver="lbfgs", epochs=epochs, seed=seed
    )
    table = pd.DataFrame(
        {
            "held-out deviance": [heldout_deviance(flat, test), heldout_deviance(curved, test)],
            "held-out accuracy": [
                float(np.mean((flat.predict(test) > 0.5) == (test["y"] > 0.5))),
                float(np.mean((curved.predict(test) > 0.5) == (test["y"] > 0.5))),
            ],
        },
        index=["logistic regression", "tanh network (8)"],
    )
    print("\nA circular boundary, P(y = 1) = σ(4·(1.5 − x1² − x2²)):\n")
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    decision_surface(flat, train, "x1", "x2", ax=axes[0])
    axes[0].set_title("Logistic regression: a straight boundary")
    decision_surface(curved, train, "x1", "x2", ax=axes[1])
    axes[1].set_title("One hidden layer: the boundary bends")
    return {"max_coef_difference": difference, "table": table, "plot": _save(fig, context.out / "decision_surfaces.png")}


def _features(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    from neuralglm.plots import feature_curves

    data, seed, epochs = earlier["nonlinear"]["data"], context.seed, context.epochs
    # Two units: unpenalized, the fit must converge fully (gradient ≤ 1e-9) for the refitted GLM to
    # match it. With 4 units, nearly redundant units leave flat directions: L-BFGS reached the
    # tolerance within 5000 iterations in 1-2 of 12 checks (seeds 0-5 × n = 400, 2000); with 2 in
    # all 12 (≈ 370 iterations each), the GLM then matching to 4e-8 SD (2026-12-03).
    net = ng.fit("y ~ x", data, hidden=(2,), activation="tanh", l2=0.0, solver="lbfgs", dtype="float64", tol=1e-9, epochs=epochs, seed=seed)
    features = net.features(data)
    print("A network with 2 tanh units on the data of section 2. Its last hidden layer (first rows):\n")
    print(features.head(4).to_string(float_format=lambda v: f"{v:.3f}"))
    glm = net.output_glm()
    network_mean = net.predict().to_numpy()
    difference = float(np.max(np.abs(glm.predict().to_numpy() - network_mean)) / np.std(network_mean))
    kept = len(glm.coef) - 1
    dropped = "" if kept == features.shape[1] else f" ({features.shape[1] - kept} saturated or collinear unit(s) dropped, as R reports NA)"
    print(f"\nA Gaussian GLM refitted by IRLS on these features{dropped} reproduces the network's")
    print(f"predictions to {difference:.1e} standard deviations. Its coefficients, conditional on the")
    print("learned features (the hidden layer's uncertainty is not in these standard errors):\n")
    print(glm.coef_table().iloc[:, :4].to_string(float_format=lambda v: f"{v:.4g}"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    feature_curves(net, data, "x", ax=axes[0])
    axes[0].set_title("The two learned features h1(x), h2(x)")
    feature_curves(net, data, "x", ax=axes[1], scaled=True)
    axes[1].set_title("Weighted by the output layer, they add up to η")
    return {"max_difference_in_sd": difference, "plot": _save(fig, context.out / "learned_features.png")}


def _insurance(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    from neuralglm.plots import calibration_comparison

    data = ng.datasets.load_insurance()
    formula = "claims ~ C(district) + group + age"
    glm = ng.glm(formula, data, family="poisson", exposure="holders")
    net = ng.fit(
        formula,
        data,
        family="poisson",
        exposure="holders",
        hidden=(2,),
        activation="tanh",
        l2=0.1,
        solver="lbfgs",
        epochs=context.epochs,
        seed=context.seed,
    )
    print(glm.summary())
    print()
    print(net.summary())
    models = {"Poisson GLM": glm, "neural Poisson GLM (2 units)": net}
    # Both models refitted on the same 5 folds: a difference is judged against its paired standard error.
    scores = cross_validate(models, data, folds=5, seed=context.seed)
    fitted = pd.DataFrame({"parameters": [glm.rank, net.n_params], "AIC": [glm.aic, net.aic]}, index=list(models))
    table = pd.concat([fitted, scores], axis=1)
    print(f"\n5-fold cross-validation on the {len(data)} cells (held-out deviance per cell, SE across folds;")
    print("difference: to the GLM, paired over folds):\n")
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    difference, se = scores.iloc[1][["difference", "SE difference"]]
    print(f"\nThe network's held-out deviance is {difference:+.2f} ± {se:.2f} per cell against the GLM's. On 64 cells")
    print("whose main effects are close to multiplicative the GLM is hard to beat: a network earns its extra")
    print("parameters only when the data hold interactions or curvature it can find (sections 2 and 3).")
    fig, ax = plt.subplots(figsize=(6.5, 5))
    calibration_comparison(models, data, bins=10, ax=ax)
    ax.set_title("Claims per policyholder by decile of prediction (exposure-weighted)")
    return {"table": table, "network": net, "plot": _save(fig, context.out / "claims_calibration.png")}


def _bands(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    from neuralglm.plots import prediction_bands

    data = ng.datasets.load_insurance()
    train, calibration = _split(data, context.seed)
    net = earlier["insurance"]["network"].refit(train)
    boot = ng.bootstrap(net, n_boot=50 if context.n_obs < 1000 else 200, seed=context.seed)
    mean_band = boot.predict(data, level=0.95)
    count_band = ng.conformal(net, calibration, level=0.8).predict(data)
    shown = pd.concat([mean_band.add_prefix("mean "), count_band[["lower", "upper"]].add_prefix("claims ")], axis=1)
    print(f"The network refitted on {len(train)} cells; bootstrap ({boot.n_boot} refits) bands for the expected")
    print(f"claims, conformal bands (80%, calibrated on the other {len(calibration)} cells) for the claims themselves:\n")
    print(shown.head(6).to_string(float_format=lambda v: f"{v:,.1f}"))
    rate = data.assign(predicted_rate=net.predict(data) / data["holders"])
    fig, ax = plt.subplots(figsize=(7, 5))
    prediction_bands(
        rate,
        "predicted_rate",
        {"bootstrap (mean)": mean_band, "conformal (claims)": count_band},
        observed="claims",
        per="holders",
        kind="bars",
        ax=ax,
    )
    ax.set_title("Claims per policyholder: bands for the mean and for new claims")
    return {"bands": shown, "plot": _save(fig, context.out / "claims_bands.png")}


def _nested(context: Context, earlier: dict) -> dict:
    import matplotlib.pyplot as plt

    from neuralglm.plots import lorenz_plot

    # A portfolio shaped like freMTPL2freq, with its true frequency: every model's distance to the truth is known.
    quick = context.n_obs < 1000
    motor = ng.datasets.simulate_motor(1_000 if quick else 6_000, seed=context.seed)
    formula = "ClaimNb ~ DrivAge + BonusMalus + VehPower + VehGas + np.log(Density)"
    common = dict(family="poisson", exposure="Exposure", hidden=(4,) if quick else (8,), seed=context.seed, epochs=context.epochs)
    models = {
        "GLM": ng.glm(formula, motor, family="poisson", exposure="Exposure"),
        "network": ng.fit(formula, motor, **common),
        "CANN (GLM + network)": ng.fit(formula, motor, architecture="cann", **common),
        "LocalGLMnet": ng.fit(formula, motor, architecture="localglmnet", **common),
    }
    table = cross_validate(models, motor, folds=3, seed=context.seed)
    truth = np.log(motor["true_frequency"].to_numpy())
    rates = {name: np.log(model.predict(motor).to_numpy() / motor["Exposure"].to_numpy()) for name, model in models.items()}
    table["balance"] = [model.balance for model in models.values()]
    table["RMS log-rate error"] = [float(np.sqrt(np.mean((rates[name] - truth) ** 2))) for name in models]
    gini = ng.effects.gini(models)
    table["Gini"] = gini["gini"].to_numpy()
    print(f"{len(motor):,} simulated policies (claim frequency {motor['ClaimNb'].sum() / motor['Exposure'].sum():.3f} per year);")
    print("3-fold cross-validation, balance = Σ fitted / Σ observed, and the distance to the simulator's true rate:\n")
    shown = ["deviance per obs", "SE", "difference", "SE difference", "balance", "RMS log-rate error", "Gini"]
    print(table[shown].to_string(float_format=lambda v: f"{v:,.4f}"))
    print("\nCANN starts exactly at the GLM and keeps its balance; whether the network part earns its keep is read")
    print("from the paired difference and its SE, not from the training deviance.")
    fig, ax = plt.subplots(figsize=(6, 6))
    lorenz_plot(ng.effects.lorenz_curve(models), gini=gini, ax=ax)
    return {"table": table, "plot": _save(fig, context.out / "motor_lorenz.png")}


# The sections, in order: (key of its results, heading, function). A section is a function of the
# Context and the results of the sections before it; its number is its place here.
Section = tuple[str, str, Callable[[Context, dict], dict]]
SECTIONS: list[Section] = [
    ("linear", "Linear truth: OLS (closed form) = network with no hidden layer (gradient descent)", _linear_truth),
    ("nonlinear", "Nonlinear truth: OLS vs a ReLU network, Y = ReLU(x·W1 + b1)·W2 + ε", _nonlinear_truth),
    ("binary", "Binary truth: logistic regression = no-hidden-layer network with sigmoid output", _binary_truth),
    ("features", "Hidden layers are feature engineering: the output layer is a GLM on them", _features),
    ("insurance", "Real data: car insurance claims (Baxter et al. 1980), exposure = policyholders", _insurance),
    ("bands", "How sure is the network? Bootstrap and conformal bands on the claims data", _bands),
    ("nested", "Nesting the GLM in a network: CANN and LocalGLMnet on a simulated motor portfolio", _nested),
]


def run_demo(out: str | Path = "neuralglm-demo", *, quick: bool = False, seed: int = 0) -> dict:
    """Run the demo sections, print them, and write one PNG plot per section to ``out``.

    ``quick=True`` uses smaller data and fewer iterations (for tests). Returns the numbers shown,
    by section (each section's plot path under ``"plot"``).

    Examples
    --------
    >>> import tempfile
    >>> results = run_demo(tempfile.mkdtemp(), quick=True)  # doctest: +ELLIPSIS
    <BLANKLINE>
    ...
    >>> results["linear"]["max_coef_difference"] < 1e-6
    True
    >>> all(section["plot"].exists() for section in results.values())
    True
    """
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # L-BFGS iterations are cheap at these sizes (milliseconds); the cap only guards against stalls.
    context = Context(n_obs=400 if quick else 2000, epochs=5000, seed=seed, out=out)
    results: dict = {}
    for number, (key, title, section) in enumerate(SECTIONS, start=1):
        print(f"\n{_RULE}\n{number}. {title}\n{_RULE}")
        results[key] = section(context, results)
    print(f"\n{_RULE}\nDone in {time.perf_counter() - started:.1f} s. Plots written to {out.resolve()}")
    return results
