"""Do ``ng.fit``'s defaults give a network that generalizes? A grid of simulated truths.

    python -m benchmarks.defaults                    # 4 families × 4 truths × 2k, 20k rows (a few minutes)
    python -m benchmarks.defaults --full             # adds 100k rows
    python -m benchmarks.defaults --families poisson --truths smooth --sizes 2000
    python -m benchmarks.defaults --set l2=0 --set epochs=1000   # the network with other settings
    python -m benchmarks.defaults --references sklearn plain gam gbm cann oracle   # what other methods reach

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

The z over the test rows says whether the network is worse *for this training set*; with 100k
test rows almost any model with more freedom than the GLM is (see the ``oracle`` reference). The noise a statistician meets is the training set's: for linear truths the GLM is refitted
on :data:`NOISE_DRAWS` other training sets (same test rows), and the network's excess is also
given in standard deviations of the GLM's mean test deviance over them (*SD*).

References, fitted in the same cells on the same rows (``--references`` picks them):

- ``sklearn``: scikit-learn's ``MLPRegressor`` (gaussian) / ``MLPClassifier`` (Bernoulli), same
  hidden layer, ``early_stopping=True``, other defaults, standardized inputs;
- ``torch``: a plain PyTorch MLP with early stopping, when torch imports (not a dependency);
- ``plain``: the same recipe in neuralglm, for every family: ReLU, no weight decay, Adam 1e-3,
  batch 256, 10 % validation, patience 10, best weights restored;
- ``gam``: an additive GLM, a cubic B-spline of 6 df for each input (``ng.glm``);
- ``gbm``: scikit-learn's ``HistGradientBoosting*`` with the family's loss and early stopping;
- ``cann``: the default network on top of the GLM, the GLM's linear predictor as its offset
  (a CANN whose GLM part is fixed);
- ``oracle`` (threshold and linear truths): the GLM plus the true step 1(x3 > 0.5) (form and
  place known), and plus a step 1(x3 > c) at the cut c that fits the training rows best
  (three passes of 16 cuts, each between the previous best one's neighbours) (form known, place estimated): what knowing the truth's form is worth, and
  on a linear truth what one or two needless parameters cost.
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
INPUTS = ["x1", "x2", "x3", "x4"]
FORMULA = "y ~ x1 + x2 + x3 + x4"
GAMMA_SHAPE = 2.0
SEED = 20261203
NOISE_DRAWS = 20  # training sets drawn to measure the GLM's own noise on linear truths
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


def fit_glm(family: str, train: pd.DataFrame, test: pd.DataFrame, formula: str = FORMULA) -> np.ndarray:
    import neuralglm as ng

    exposure = "exposure" if family == "poisson" else None
    glm = ng.glm(formula, train, family=family, link=LINKS[family], exposure=exposure)
    return unit_deviance(family, test["y"].to_numpy(), glm.predict(test, type="response").to_numpy())


def fit_sklearn(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray | None:
    """scikit-learn's MLP with early stopping (gaussian and Bernoulli only), on standardized inputs."""
    if family not in ("gaussian", "binomial"):
        return None
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    columns = INPUTS
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


def fit_plain(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """fit_torch's recipe in neuralglm (every family): ReLU, no weight decay, Adam, early stopping."""
    settings = {"activation": "relu", "l2": 0.0, "solver": "adam", "early_stopping": True}
    return fit_network(family, train, test, settings).deviance


def fit_gam(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """An additive GLM: a cubic B-spline of 6 df per input, its boundary knots the inputs' range."""
    bounds = f"df=6, lower_bound={-ROOT3:.6f}, upper_bound={ROOT3:.6f}"
    return fit_glm(family, train, test, "y ~ " + " + ".join(f"bs({x}, {bounds})" for x in INPUTS))


def fit_gbm(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """scikit-learn's histogram gradient boosting with the family's loss, early stopping on 10 % of the rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    y, options = train["y"].to_numpy(), {"early_stopping": True, "random_state": 0}
    if family == "binomial":
        model = HistGradientBoostingClassifier(**options).fit(train[INPUTS], y.astype(int))
        return unit_deviance(family, test["y"].to_numpy(), model.predict_proba(test[INPUTS])[:, 1])
    if family == "poisson":  # the rate y / exposure, weighted by exposure: the Poisson likelihood of the counts
        exposure = train["exposure"].to_numpy()
        model = HistGradientBoostingRegressor(loss="poisson", **options).fit(train[INPUTS], y / exposure, sample_weight=exposure)
        return unit_deviance(family, test["y"].to_numpy(), model.predict(test[INPUTS]) * test["exposure"].to_numpy())
    model = HistGradientBoostingRegressor(loss="squared_error" if family == "gaussian" else "gamma", **options)
    return unit_deviance(family, test["y"].to_numpy(), model.fit(train[INPUTS], y).predict(test[INPUTS]))


def fit_cann(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """The default network with the GLM's linear predictor (exposure included) as its offset."""
    import neuralglm as ng

    exposure = "exposure" if family == "poisson" else None
    glm = ng.glm(FORMULA, train, family=family, link=LINKS[family], exposure=exposure)
    train, test = (frame.assign(glm_eta=glm.predict(frame, type="link").to_numpy()) for frame in (train, test))
    net = ng.fit(FORMULA, train, family=family, link=LINKS[family], offset="glm_eta", hidden=HIDDEN)
    return unit_deviance(family, test["y"].to_numpy(), net.predict(test, type="response").to_numpy())


def fit_oracles(family: str, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, np.ndarray]:
    """Threshold truths: the GLM plus the true step, and plus the step at the best-fitting cut of x3."""
    import neuralglm as ng

    exposure = "exposure" if family == "poisson" else None

    def with_step(cut: float):
        frames = [frame.assign(step=(frame["x3"] > cut).astype(np.float64)) for frame in (train, test)]
        glm = ng.glm(FORMULA + " + step", frames[0], family=family, link=LINKS[family], exposure=exposure)
        return glm.deviance, unit_deviance(family, test["y"].to_numpy(), glm.predict(frames[1], type="response").to_numpy())

    # The cut that fits the training rows best: 16 cuts over the central 94 % of x3, then 16 between the
    # best one's neighbours, twice more (a final spacing of ~0.004; 24 fixed quantiles were too coarse).
    low, high = np.quantile(train["x3"], [0.03, 0.97])
    for _ in range(3):
        cuts = np.linspace(low, high, 16)
        fits = [with_step(cut) for cut in cuts]
        best = int(np.argmin([fit[0] for fit in fits]))
        low, high = cuts[max(best - 1, 0)], cuts[min(best + 1, len(cuts) - 1)]
    profiled = fits[best]
    return {"true step": with_step(0.5)[1], "step at fitted cut": profiled[1]}


def fit_torch(family: str, train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray | None:
    """A plain PyTorch MLP (Adam 1e-3, batch 256, 10 % validation, patience 10), if torch imports."""
    try:
        import torch
    except ImportError:
        return None
    columns = INPUTS
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
    noise: float = math.nan  # linear truths: SD of the GLM's test deviance over NOISE_DRAWS training sets

    def closed(self, deviance: float) -> float:
        return (self.glm - deviance) / (self.glm - self.true)


REFERENCES = {"sklearn": fit_sklearn, "torch": fit_torch, "plain": fit_plain, "gam": fit_gam, "gbm": fit_gbm, "cann": fit_cann}


def run_cell(family: str, truth: str, n: int, settings: dict, references: tuple[str, ...]) -> Cell:
    rng = np.random.default_rng([SEED, FAMILIES.index(family), TRUTHS.index(truth), n])
    train, _ = simulate(family, truth, n, rng)
    test, mu_true = simulate(family, truth, N_TEST, rng)
    y = test["y"].to_numpy()
    glm = fit_glm(family, train, test)
    net = fit_network(family, train, test, settings)
    difference = net.deviance - glm
    z = float(difference.mean() / (difference.std(ddof=1) / math.sqrt(len(difference))))
    reference = {}
    for name in references:
        if name == "oracle":
            if truth in ("threshold", "linear"):
                reference.update({key: float(d.mean()) for key, d in fit_oracles(family, train, test).items()})
            continue
        deviance = REFERENCES[name](family, train, test)
        if deviance is not None:
            reference[name] = float(deviance.mean())
    true = float(unit_deviance(family, y, mu_true).mean())
    noise = glm_noise(family, truth, n, test) if truth == "linear" else math.nan
    return Cell(family, truth, n, float(glm.mean()), float(net.deviance.mean()), true, z, net, reference, noise)


def glm_noise(family: str, truth: str, n: int, test: pd.DataFrame) -> float:
    """The SD of the GLM's mean test deviance over NOISE_DRAWS other training sets: how much two equally good fits differ."""
    rng = np.random.default_rng([SEED, FAMILIES.index(family), TRUTHS.index(truth), n, 1])
    return float(np.std([fit_glm(family, simulate(family, truth, n, rng)[0], test).mean() for _ in range(NOISE_DRAWS)], ddof=1))


def _measure(cell: Cell, deviance: float) -> str:
    """Gap closed; on a linear truth the excess over the GLM in ‰ and in SDs of the GLM's own noise over training sets."""
    if cell.truth != "linear":
        return f"{100 * cell.closed(deviance):.0f} %"
    return f"{1000 * (deviance - cell.glm) / cell.glm:+.1f} ‰ = {(deviance - cell.glm) / cell.noise:+.1f} SD"


def row(cell: Cell) -> str:
    run = cell.net_run
    measure = _measure(cell, cell.net)
    if cell.truth == "linear":
        measure = f"z = {cell.z:+.1f} ({measure})"
    refs = " · ".join(f"{name} {_measure(cell, dev)}" for name, dev in cell.reference.items())
    status = f"{run.status} ({run.iterations})"
    warned = ", ".join(run.warnings) or "none"
    return (
        f"| {cell.family} | {cell.truth} | {cell.n:,} | {cell.glm - cell.true:.4f} | **{measure}** | {status} | {warned} | "
        f"{run.seconds:.1f} | {refs or '–'} |"
    )


HEADER = (
    "| family | truth | rows | GLM − truth deviance | network: gap closed (linear: z over the test rows, excess over the GLM in ‰ = "
    "in SDs of the GLM's deviance over training sets) | status (iterations) | warnings | seconds | references |\n|---|---|---:|---:|---:|---|---|---:|---|"
)


def summary(cells: list[Cell]) -> None:
    """Per method, size and truth: the range of gap closed (nonlinear) or of the excess over the GLM in SDs (linear)."""
    methods = ["network", *dict.fromkeys(name for cell in cells for name in cell.reference)]
    columns = [(n, t) for n in dict.fromkeys(c.n for c in cells) for t in TRUTHS if any(c.truth == t and c.n == n for c in cells)]
    print("\n| method | " + " | ".join(f"{n:,}: {t}" for n, t in columns) + " |\n|---|" + "---:|" * len(columns))
    for method in methods:
        ranges = []
        for n, truth in columns:
            chosen = [c for c in cells if c.n == n and c.truth == truth and (method == "network" or method in c.reference)]
            values = [(c.net if method == "network" else c.reference[method]) for c in chosen]
            if truth == "linear":
                shares = [(v - c.glm) / c.noise for c, v in zip(chosen, values, strict=True)]
                ranges.append(f"{min(shares):+.1f} … {max(shares):+.1f} SD" if shares else "–")
            else:
                closed = [100 * c.closed(v) for c, v in zip(chosen, values, strict=True)]
                ranges.append(f"{min(closed):.0f} … {max(closed):.0f} %" if closed else "–")
        print(f"| {method} | " + " | ".join(ranges) + " |")


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
    parser.add_argument(
        "--references", nargs="*", default=["sklearn", "torch"], choices=[*REFERENCES, "oracle"], help="(none: no reference)"
    )
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
                cell = run_cell(family, truth, n, settings, tuple(args.references))
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
    summary(cells)


if __name__ == "__main__":
    main()
