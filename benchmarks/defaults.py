"""Do ``ng.fit``'s defaults give a network that generalizes? A grid of simulated truths.

    python -m benchmarks.defaults                    # 4 families × 4 truths × 2k, 20k rows (a few minutes)
    python -m benchmarks.defaults --full             # adds 100k rows
    python -m benchmarks.defaults --families poisson --truths smooth --sizes 2000
    python -m benchmarks.defaults --set l2=0 --set epochs=1000   # the network with other settings

Every cell draws a training set of ``n`` rows and a fresh test set of :data:`N_TEST` rows from
one known truth, with four inputs ``x1..x4`` uniform on [−√3, √3] (mean 0, variance 1; bounded, so
that no far tail makes the misspecified GLM diverge; ``x4`` has no effect):

- families: gaussian (identity link, σ = 1), Poisson with exposure (log link, exposure
  uniform on [0.5, 2], fitted with ``exposure=``), Bernoulli (logit; the linear predictor below doubled), Gamma (log link, shape 2);
- truths (the linear predictor): ``linear`` = a + 0.4·x1 − 0.3·x2 + 0.2·x3; ``smooth`` adds
  sin(1.5·x1) + 0.5·cos(1.5·x2) (centred); ``interaction`` adds 0.6·x1·x2; ``threshold`` adds
  0.8·1(x3 > 0.5) (centred).

In each cell the GLM (``ng.glm`` on ``y ~ x1 + x2 + x3 + x4``) and the network
(``ng.fit(..., hidden=HIDDEN)``, every other setting at its default unless ``--set``) are
fitted on the training rows, and the mean unit deviance of their predictions is measured on
the test rows, as is that of the true mean. For a nonlinear truth, *gap closed* =
(dev_GLM − dev_net) / (dev_GLM − dev_truth): 100 % is the truth, 0 % the GLM. For a linear
truth the GLM is the right model, and the table gives the network's excess over it in
standard errors of the paired mean difference over the test rows (z = mean(d_net − d_GLM) /
SE); with 100k test rows that SE is small, so it also gives the excess as a share of the
GLM's deviance (per mille). The network's status, warnings and seconds are listed.

As a reference from another library, scikit-learn's ``MLPRegressor`` (gaussian) and
``MLPClassifier`` (Bernoulli) with the same hidden layer, ``early_stopping=True`` and its other
defaults, on standardized inputs, are fitted in the same cells. PyTorch is used for the same
reference when it can be imported (it is not a dependency).
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import platform
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

FAMILIES = ("gaussian", "poisson", "binomial", "gamma")
LINKS = {"gaussian": "identity", "poisson": "log", "binomial": "logit", "gamma": "log"}
TRUTHS = ("linear", "smooth", "interaction", "threshold")
SIZES = (2_000, 20_000)
FULL_SIZES = (2_000, 20_000, 100_000)
N_TEST = 100_000
HIDDEN = (16,)
FORMULA = "y ~ x1 + x2 + x3 + x4"
GAMMA_SHAPE = 2.0
SEED = 20261203
ROOT3 = math.sqrt(3.0)  # inputs uniform on [-√3, √3]: mean 0, variance 1, no far tails


# ---- the truths ---------------------------------------------------------------------------------


def linear_predictor(truth: str, X: np.ndarray, family: str) -> np.ndarray:
    """The true linear predictor (without exposure) of ``truth`` at inputs ``X`` (n, 4)."""
    x1, x2, x3 = X[:, 0], X[:, 1], X[:, 2]
    eta = 0.4 * x1 - 0.3 * x2 + 0.2 * x3
    if truth == "smooth":
        eta = eta + np.sin(1.5 * x1) + 0.5 * (np.cos(1.5 * x2) - math.sin(1.5 * ROOT3) / (1.5 * ROOT3))  # centred
    elif truth == "interaction":
        eta = eta + 0.6 * x1 * x2
    elif truth == "threshold":
        eta = eta + 0.8 * ((x3 > 0.5) - (ROOT3 - 0.5) / (2 * ROOT3))  # centred
    if family == "binomial":
        eta = 2.0 * eta  # a Bernoulli row carries little information: stronger effects, so the gaps are not tiny
    intercept = {"gaussian": 1.0, "poisson": 0.0, "binomial": 0.0, "gamma": 0.5}[family]
    return intercept + eta


def simulate(family: str, truth: str, n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """A data frame (``y``, ``x1..x4``, ``exposure`` for Poisson) and the true mean of ``y``."""
    X = rng.uniform(-ROOT3, ROOT3, (n, 4))
    eta = linear_predictor(truth, X, family)
    frame = pd.DataFrame(X, columns=["x1", "x2", "x3", "x4"])
    if family == "gaussian":
        mu = eta
        y = mu + rng.standard_normal(n)
    elif family == "poisson":
        exposure = rng.uniform(0.5, 2.0, n)
        frame["exposure"] = exposure
        mu = exposure * np.exp(eta)
        y = rng.poisson(mu).astype(np.float64)
    elif family == "binomial":
        mu = 1.0 / (1.0 + np.exp(-eta))
        y = (rng.uniform(size=n) < mu).astype(np.float64)
    else:
        mu = np.exp(eta)
        y = rng.gamma(GAMMA_SHAPE, mu / GAMMA_SHAPE)
    frame["y"] = y
    return frame, mu


def unit_deviance(family: str, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Each row's deviance (written out here, independently of the library's families)."""
    if family == "gaussian":
        return (y - mu) ** 2
    if family == "poisson":
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return 2.0 * (ylogy - (y - mu))
    if family == "binomial":
        mu = np.clip(mu, 1e-12, 1 - 1e-12)
        return -2.0 * (y * np.log(mu) + (1.0 - y) * np.log1p(-mu))
    return 2.0 * (-np.log(y / mu) + (y - mu) / mu)


# ---- the fits -----------------------------------------------------------------------------------


@dataclass
class NetRun:
    deviance: np.ndarray
    status: str
    warnings: list[str]
    seconds: float
    iterations: int


def fit_network(family: str, train: pd.DataFrame, test: pd.DataFrame, settings: dict) -> NetRun:
    import neuralglm as ng

    exposure = "exposure" if family == "poisson" else None
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = ng.fit(FORMULA, train, family=family, link=LINKS[family], exposure=exposure, hidden=HIDDEN, **settings)
    seconds = time.perf_counter() - started
    mu = net.predict(test, type="response").to_numpy()
    status = net.info.status.name
    names = sorted({type(w.message).__name__ for w in caught})
    return NetRun(unit_deviance(family, test["y"].to_numpy(), mu), status, names, seconds, net.info.n_iter)


def fit_glm(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    import neuralglm as ng

    exposure = "exposure" if family == "poisson" else None
    glm = ng.glm(FORMULA, train, family=family, link=LINKS[family], exposure=exposure)
    return unit_deviance(family, test["y"].to_numpy(), glm.predict(test, type="response").to_numpy())


def fit_sklearn(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray | None:
    """scikit-learn's MLP with early stopping (gaussian and Bernoulli only), on standardized inputs."""
    if family not in ("gaussian", "binomial"):
        return None
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = ["x1", "x2", "x3", "x4"]
    y = train["y"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if family == "gaussian":
            model = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=HIDDEN, early_stopping=True, random_state=0))
            mu = model.fit(train[columns], y).predict(test[columns])
        else:
            model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=HIDDEN, early_stopping=True, random_state=0))
            mu = model.fit(train[columns], y.astype(int)).predict_proba(test[columns])[:, 1]
    return unit_deviance(family, test["y"].to_numpy(), mu)


def fit_torch(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray | None:
    """A plain PyTorch MLP (Adam 1e-3, batch 256, 10 % validation, patience 10), if torch imports."""
    try:
        import torch
    except ImportError:
        return None
    columns = ["x1", "x2", "x3", "x4"]
    torch.manual_seed(0)
    mean, scale = train[columns].mean(), train[columns].std()
    x = torch.tensor(((train[columns] - mean) / scale).to_numpy(), dtype=torch.float32)
    y = torch.tensor(train["y"].to_numpy(), dtype=torch.float32)
    log_exposure = torch.tensor(np.log(train["exposure"].to_numpy()) if family == "poisson" else np.zeros(len(train)), dtype=torch.float32)
    model = torch.nn.Sequential(torch.nn.Linear(4, HIDDEN[0]), torch.nn.ReLU(), torch.nn.Linear(HIDDEN[0], 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inverse = {"gaussian": lambda e: e, "binomial": torch.sigmoid}.get(family, torch.exp)

    def loss(rows):
        mu = inverse(model(x[rows]).squeeze(-1) + log_exposure[rows])
        return _torch_deviance(family, y[rows], mu)

    order = np.random.default_rng(0).permutation(len(train))
    n_val = len(train) // 10
    val, fit_rows = order[:n_val], order[n_val:]
    best, best_state, since = math.inf, None, 0
    for _ in range(200):
        for batch in np.array_split(np.random.default_rng().permutation(fit_rows), max(1, len(fit_rows) // 256)):
            optimizer.zero_grad()
            loss(batch).backward()
            optimizer.step()
        with torch.no_grad():
            score = float(loss(val))
        if score < best - 1e-4 * abs(best):
            best, best_state, since = score, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            since += 1
            if since >= 10:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    xt = torch.tensor(((test[columns] - mean) / scale).to_numpy(), dtype=torch.float32)
    offset = np.log(test["exposure"].to_numpy()) if family == "poisson" else np.zeros(len(test))
    with torch.no_grad():
        mu = inverse(model(xt).squeeze(-1) + torch.tensor(offset, dtype=torch.float32)).numpy().astype(np.float64)
    return unit_deviance(family, test["y"].to_numpy(), mu)


def _torch_deviance(family: str, y, mu):
    import torch

    if family == "gaussian":
        return ((y - mu) ** 2).mean()
    if family == "binomial":
        return torch.nn.functional.binary_cross_entropy(mu.clamp(1e-7, 1 - 1e-7), y) * 2.0
    if family == "poisson":
        return 2.0 * (mu - y * torch.log(mu)).mean()
    return 2.0 * (y / mu + torch.log(mu)).mean()


# ---- one cell, the table ------------------------------------------------------------------------


@dataclass
class Cell:
    family: str
    truth: str
    n: int
    glm: float
    net: float
    true: float
    z: float  # (net − GLM) / paired SE
    net_run: NetRun
    reference: dict[str, float]

    def closed(self, deviance: float) -> float:
        return (self.glm - deviance) / (self.glm - self.true)


def run_cell(family: str, truth: str, n: int, settings: dict, references: bool) -> Cell:
    rng = np.random.default_rng([SEED, FAMILIES.index(family), TRUTHS.index(truth), n])
    train, _ = simulate(family, truth, n, rng)
    test, mu_true = simulate(family, truth, N_TEST, rng)
    y = test["y"].to_numpy()
    glm = fit_glm(family, train, test)
    net = fit_network(family, train, test, settings)
    difference = net.deviance - glm
    z = float(difference.mean() / (difference.std(ddof=1) / math.sqrt(len(difference))))
    reference = {}
    if references:
        for name, fitter in (("sklearn", fit_sklearn), ("torch", fit_torch)):
            deviance = fitter(family, train, test)
            if deviance is not None:
                reference[name] = float(deviance.mean())
    true = float(unit_deviance(family, y, mu_true).mean())
    return Cell(family, truth, n, float(glm.mean()), float(net.deviance.mean()), true, z, net, reference)


def row(cell: Cell) -> str:
    run = cell.net_run
    if cell.truth == "linear":
        excess = 1000 * (cell.net - cell.glm) / cell.glm
        measure = f"z = {cell.z:+.1f} ({excess:+.1f} ‰)"
        refs = " ".join(f"{name} {1000 * (dev - cell.glm) / cell.glm:+.1f}‰" for name, dev in cell.reference.items())
    else:
        measure = f"{100 * cell.closed(cell.net):.0f} %"
        refs = " ".join(f"{name} {100 * cell.closed(dev):.0f} %" for name, dev in cell.reference.items())
    gap = "–" if cell.truth == "linear" else f"{cell.glm - cell.true:.4f}"
    status = f"{run.status} ({run.iterations})"
    warned = ", ".join(run.warnings) or "none"
    return (
        f"| {cell.family} | {cell.truth} | {cell.n:,} | {gap} | **{measure}** | {status} | {warned} | {run.seconds:.1f} | {refs or '–'} |"
    )


HEADER = (
    "| family | truth | rows | GLM − truth deviance | network: gap closed (linear: excess) | status (iterations) | warnings | "
    "seconds | reference (early-stopped MLP) |\n|---|---|---:|---:|---:|---|---|---:|---|"
)


def _settings(pairs: list[str]) -> dict:
    settings = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        try:
            settings[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            settings[name] = text
    return settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="add 100k-row cells")
    parser.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    parser.add_argument("--truths", nargs="+", default=TRUTHS, choices=TRUTHS)
    parser.add_argument("--sizes", nargs="+", type=int, help="training rows (overrides --full)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting of the network's ng.fit")
    parser.add_argument("--no-reference", action="store_true", help="skip scikit-learn and PyTorch")
    parser.add_argument("--default-l2", type=float, help="try another neuralglm.network.DEFAULT_L2 (l2='auto' = it × √φ₀)")
    args = parser.parse_args(argv)
    import neuralglm.network

    if args.default_l2 is not None:
        neuralglm.network.DEFAULT_L2 = args.default_l2
    sizes = args.sizes or (FULL_SIZES if args.full else SIZES)
    settings = _settings(args.set)
    l2_text = f"DEFAULT_L2={neuralglm.network.DEFAULT_L2:g}"
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; hidden={HIDDEN}; settings {settings or 'defaults'}, {l2_text}")
    print(f"test rows {N_TEST:,}; deviances are means per row\n")
    print(HEADER, flush=True)
    cells = []
    for n in sizes:
        for family in args.families:
            for truth in args.truths:
                cell = run_cell(family, truth, n, settings, references=not args.no_reference)
                cells.append(cell)
                print(row(cell), flush=True)
    nonlinear = [c for c in cells if c.truth != "linear"]
    if nonlinear:
        closed = np.array([c.closed(c.net) for c in nonlinear])
        print(f"\nnonlinear cells: gap closed median {100 * np.median(closed):.0f} %, min {100 * closed.min():.0f} %, ", end="")
        print(f"≥ 90 % in {np.sum(closed >= 0.9)} of {len(closed)}")
    linear = [c for c in cells if c.truth == "linear"]
    if linear:
        print(f"linear cells: z from {min(c.z for c in linear):+.1f} to {max(c.z for c in linear):+.1f}")
    warned = [c for c in cells if c.net_run.warnings]
    print(f"cells with a warning: {len(warned)} of {len(cells)}")


if __name__ == "__main__":
    main()
