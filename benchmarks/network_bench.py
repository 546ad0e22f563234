"""Network speed benchmark: neuralglm against scikit-learn's MLPRegressor and a plain PyTorch loop.

    python -m benchmarks.network_bench              # both parts (a few minutes on 2 cores)
    python -m benchmarks.network_bench --part adam  # or --part lbfgs
    python -m benchmarks.network_bench --part auto  # the L-BFGS/Adam crossover behind solver="auto"
    python -m benchmarks.network_bench --part cache # part 1's first fit with a persistent compilation cache
    python -m benchmarks.network_bench --device gpu # neuralglm on the GPU (needs jax[cuda12]; the peers stay on the CPU)

Part 1 (minibatch): Gaussian MLP regression, n = 100,000, p = 20, hidden (64, 64) ReLU, Adam
(learning rate 1e-3), batch 256, float32, 30 epochs, no penalty, no early stopping. Reported:
total seconds of a first fit in a fresh process (JAX compilation included, with no persistent
compilation cache; neuralglm's time also includes the formula, design matrix and the float64
statistics of the result; imports are done before every tool's timer and neuralglm's is printed
apart), of a repeat fit with the same shapes and a new seed, and the final training loss (mean
half squared error over the last epoch, as scikit-learn's ``loss_``). The PyTorch loop runs only if ``torch`` is importable.

Part 2 (full batch): n = 20,000, p = 10, hidden (32,) tanh, L-BFGS. scikit-learn's
``MLPRegressor(solver="lbfgs")`` runs to its default stop (200 iterations); neuralglm's
L-BFGS then runs until its training loss is at most scikit-learn's final loss, and the time at
which it first got there is reported (resolution: one chunk of 50 iterations, so the figure is
an upper bound), with compilation reported apart.

Part 3 (``--part auto``, not in ``all``): L-BFGS and Adam with ``ng.fit``'s defaults on a grid of
rows × parameter counts; the seconds each needed to reach the larger of their two final
training deviances. ``neuralglm.network.LBFGS_MAX_ROWS`` and ``LBFGS_MAX_WORK`` are set from it.

Part 4 (``--part cache``, not in ``all``): part 1's neuralglm first fit in two fresh processes
that share a new JAX persistent compilation cache (``jax_compilation_cache_dir``, with the
minimum compile time and entry size set to 0 so that every compiled function is stored): the
first fills it, the second reads it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd

import neuralglm as ng
from benchmarks import device


def regression_data(n_obs: int, n_features: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_obs, n_features)).astype(np.float32)
    signal = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.5 * np.tanh(X[:, 3:].sum(axis=1) / 4)
    df = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(n_features)])
    df["y"] = (signal + 0.5 * rng.normal(size=n_obs)).astype(np.float32)
    return df


def formula(n_features: int) -> str:
    return "y ~ " + " + ".join(f"x{j + 1}" for j in range(n_features))


BLAS_THREADS: int | None = 1


def _blas_threads():
    """scikit-learn's MLP ran 1.7–2.4× faster with BLAS on one thread on these 2-core machines (DESIGN.md §10)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(BLAS_THREADS)


# ---- part 1: Adam -------------------------------------------------------------------------


def neuralglm_adam(df, n_features, seed):
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)  # a fixed 30 epochs, on purpose
        net = ng.fit(
            formula(n_features), df, family="gaussian", hidden=(64, 64), activation="relu", solver="adam",
            learning_rate=1e-3, batch_size=256, epochs=30, patience=31, seed=seed, verbose=False,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    return seconds, float(net.history.objective.iloc[-1]) / 2  # mean half squared error


def sklearn_adam(df, n_features, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    X = df.iloc[:, :n_features].to_numpy(np.float32)
    y = df.y.to_numpy(np.float32)
    model = MLPRegressor(
        hidden_layer_sizes=(64, 64), activation="relu", solver="adam", alpha=0.0, batch_size=256,
        learning_rate_init=1e-3, max_iter=30, n_iter_no_change=31, tol=0.0, random_state=seed,
    )  # fmt: skip
    started = time.perf_counter()
    with warnings.catch_warnings(), _blas_threads():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return time.perf_counter() - started, float(model.loss_)


def torch_adam(df, n_features, seed):
    import torch

    torch.manual_seed(seed)
    started = time.perf_counter()
    X = torch.from_numpy(df.iloc[:, :n_features].to_numpy(np.float32, copy=True))
    y = torch.from_numpy(df.y.to_numpy(np.float32, copy=True))
    model = torch.nn.Sequential(
        torch.nn.Linear(n_features, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_obs = X.shape[0]
    for _ in range(30):
        order = torch.randperm(n_obs)
        total = 0.0
        for start in range(0, n_obs, 256):
            rows = order[start : start + 256]
            optimizer.zero_grad()
            loss = 0.5 * torch.mean((model(X[rows])[:, 0] - y[rows]) ** 2)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
    return time.perf_counter() - started, total / n_obs


def part_adam() -> list[dict]:
    n_obs, n_features = 100_000, 20
    df = regression_data(n_obs, n_features, seed=0)
    # The other tools are imported before their timers start; so is neuralglm's fit (ng.fit is
    # imported lazily: jax, optax, scipy.stats). The import is reported apart.
    started = time.perf_counter()
    ng.fit  # noqa: B018
    print(
        f"neuralglm: resolving ng.fit (imports jax, optax, scipy.stats) took {time.perf_counter() - started:.2f} s (not in the fit times)"
    )
    tools = {"neuralglm": neuralglm_adam, "sklearn MLPRegressor": sklearn_adam}
    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        tools["PyTorch CPU loop"] = torch_adam
    except ImportError as error:
        print(f"PyTorch loop skipped: torch is not importable ({error}); `pip install torch` to include it.")
    rows = []
    for name, run in tools.items():
        first, loss = run(df, n_features, seed=0)
        repeat, repeat_loss = run(df, n_features, seed=1)
        rows.append(
            {
                "tool": name,
                "first fit (s)": first,
                "repeat fit (s)": repeat,
                "s/epoch (repeat)": repeat / 30,
                "final loss": loss,
                "final loss (repeat)": repeat_loss,
            }
        )
        print(rows[-1], flush=True)
    return rows


# ---- part 2: L-BFGS -----------------------------------------------------------------------


def part_lbfgs() -> list[dict]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    n_obs, n_features = 20_000, 10
    df = regression_data(n_obs, n_features, seed=1)
    X = df.iloc[:, :n_features].to_numpy(np.float64)
    y = df.y.to_numpy(np.float64)
    model = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs", alpha=0.0, max_iter=200, random_state=0)
    started = time.perf_counter()
    with warnings.catch_warnings(), _blas_threads():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    sk_seconds = time.perf_counter() - started
    target = float(model.loss_)

    def run(seed):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)
            net = ng.fit(
                formula(n_features),
                df,
                family="gaussian",
                hidden=(32,),
                activation="tanh",
                solver="lbfgs",
                epochs=2000,
                tol=1e-12,
                seed=seed,
                verbose=False,
            )
        return time.perf_counter() - started, net

    first_total, _ = run(0)  # compiles
    total, net = run(0)
    history = net.history
    reached = history[history.objective / 2 <= target]
    when = float(reached.seconds.iloc[0]) if len(reached) else float("nan")
    iterations = int(reached.iteration.iloc[0]) if len(reached) else -1
    rows = [
        {
            "tool": "sklearn MLPRegressor(lbfgs)",
            "seconds to target": sk_seconds,
            "iterations": int(model.n_iter_),
            "final loss": target,
            "compile (s)": 0.0,
        },
        {
            "tool": "neuralglm lbfgs",
            "seconds to target": when,
            "iterations": iterations,
            "final loss": float(reached.objective.iloc[0] / 2) if len(reached) else float("nan"),
            "compile (s)": first_total - total,
        },
    ]
    for row in rows:
        print(row, flush=True)
    return rows


# ---- part 4: first fit with JAX's persistent compilation cache -----------------------------

_CACHED_FIRST_FIT = """
import jax, time, warnings
jax.config.update("jax_compilation_cache_dir", {cache!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
jax.config.update("jax_default_device", jax.devices({device!r})[0])
from benchmarks.network_bench import neuralglm_adam, regression_data
import neuralglm as ng
df = regression_data(100_000, 20, seed=0)
ng.fit
print(neuralglm_adam(df, 20, seed=0)[0])
"""


def part_cache(device_name: str = "cpu") -> list[dict]:
    """Part 1's neuralglm first fit in two fresh processes sharing a new persistent compilation cache."""
    import subprocess
    import sys
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold cache (fills it)", "warm cache"):
            done = subprocess.run(
                [sys.executable, "-c", _CACHED_FIRST_FIT.format(cache=cache, device=device_name)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append({"first fit, fresh process": label, "seconds": float(done.stdout.split()[-1])})
            print(rows[-1], flush=True)
    return rows


# ---- part 3: solver="auto" crossover ------------------------------------------------------


AUTO_GRID_ROWS = (2_000, 10_000, 20_000, 50_000, 100_000)
AUTO_GRID_HIDDEN = ((8,), (32,), (64, 64))


def _time_to(history: pd.DataFrame, target: float) -> float:
    """Seconds until the training deviance first reached ``target``, compilation excluded.

    One record per epoch (Adam) or per chunk of 50 iterations (L-BFGS); the first record also
    holds the compilation, so its own duration is taken as the second record's.
    """
    seconds = history.seconds.to_numpy()
    first = seconds[1] - seconds[0] if len(seconds) > 1 else seconds[0]
    reached = np.flatnonzero(history.objective.to_numpy() <= target)
    return float(seconds[reached[0]] - seconds[0] + first) if len(reached) else float("nan")


def part_auto() -> list[dict]:
    """L-BFGS against Adam, each with ``ng.fit``'s defaults, on a grid of rows × parameters.

    Gaussian data as part 1 with p = 10; ReLU; float32. Target: the larger of the two final
    training deviances (a level both reached); reported: each solver's seconds to reach it.
    """
    rows = []
    for n_obs in AUTO_GRID_ROWS:
        df = regression_data(n_obs, 10, seed=2)
        for hidden in AUTO_GRID_HIDDEN:
            fits = {}
            for solver in ("lbfgs", "adam"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ng.errors.ConvergenceWarning)
                    fits[solver] = ng.fit(formula(10), df, hidden=hidden, activation="relu", solver=solver, seed=0, verbose=False)
            target = max(float(net.history.objective.iloc[-1]) for net in fits.values())
            n_params = fits["adam"].n_params
            row = {"rows": n_obs, "hidden": str(hidden), "parameters": n_params, "rows × parameters": n_obs * n_params}
            for solver, net in fits.items():
                row[f"{solver} s"] = _time_to(net.history, target)
                row[f"{solver} deviance"] = float(net.history.objective.iloc[-1])
                row[f"{solver} epochs"] = int(net.info.n_iter)
            row["faster"] = "lbfgs" if row["lbfgs s"] < row["adam s"] else "adam"
            rows.append(row)
            print(row, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("adam", "lbfgs", "auto", "cache", "all"), default="all", help="'all' runs adam and lbfgs")
    parser.add_argument("--sklearn-blas-threads", type=int, default=1, help="BLAS threads for scikit-learn (0: library default)")
    device.add_argument(parser)
    args = parser.parse_args(argv)
    global BLAS_THREADS
    BLAS_THREADS = args.sklearn_blas_threads or None
    where = device.select(args.device)
    print(
        f"# {platform.platform()} · {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.1f} · neuralglm {ng.__version__} · JAX device {where}"
    )
    if args.part in ("adam", "all"):
        table = pd.DataFrame(part_adam())
        sk = table.set_index("tool").loc["sklearn MLPRegressor"]
        table["first / sklearn"] = table["first fit (s)"] / sk["first fit (s)"]
        table["repeat / sklearn"] = table["repeat fit (s)"] / sk["repeat fit (s)"]
        print(table.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else table.to_string(index=False))
    if args.part in ("lbfgs", "all"):
        table = pd.DataFrame(part_lbfgs())
        print(table.to_markdown(index=False, floatfmt=".4g") if _has_tabulate() else table.to_string(index=False))
    if args.part == "cache":
        table = pd.DataFrame(part_cache(args.device))
        print(table.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else table.to_string(index=False))
    if args.part == "auto":
        table = pd.DataFrame(part_auto())
        print(table.to_markdown(index=False, floatfmt=".4g") if _has_tabulate() else table.to_string(index=False))
        from neuralglm.network import LBFGS_MAX_ROWS, LBFGS_MAX_WORK

        print(
            f"solver='auto' picks L-BFGS up to neuralglm.network.LBFGS_MAX_ROWS = {LBFGS_MAX_ROWS:,} rows "
            f"and LBFGS_MAX_WORK = {LBFGS_MAX_WORK:.3g} rows × parameters"
        )
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
