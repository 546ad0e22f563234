"""Bootstrap speed: 200 refits by ``ng.bootstrap`` against one fit, measured in the same run.

    python -m benchmarks.bootstrap                        # GLM and network, both network starts, 200 refits each
    python -m benchmarks.bootstrap --network-n-boot 24    # fewer network refits, ratio scaled to 200

Problem (fixed seed): n = 5,000 rows, four U(-1, 1) covariates, Poisson counts with an
exposure U(0.5, 2), log mean 0.3 + sin(2·x1) + 0.5·x2·x3. The GLM is
``y ~ x1 + x2 + x3 + x4`` (IRLS); the network the same formula with ``hidden=(16,)``,
tanh, ``l2=1``, solver L-BFGS (``ng.fit``'s defaults otherwise, float32).

Times are wall seconds. "first" is the first call in the process at that shape (JAX
compilation included); "repeat" is a second call with another seed (compiled code reused). The
ratio divides the bootstrap's time by the one fit's, first by first and repeat by repeat, for
200 refits: with fewer (``--network-n-boot``), the network's refit time is scaled by 200/n_boot
(a network's refits run in small groups one after the other, so their time is linear in their
number; the compilation, in the first call, is not scaled).
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

FORMULA = "y ~ x1 + x2 + x3 + x4"
NETWORK = {"hidden": (16,), "activation": "tanh", "l2": 1.0, "solver": "lbfgs"}


def problem(n_obs: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.uniform(-1.0, 1.0, size=(n_obs, 4)), columns=["x1", "x2", "x3", "x4"])
    df["exposure"] = rng.uniform(0.5, 2.0, n_obs)
    mean = df["exposure"] * np.exp(0.3 + np.sin(2.0 * df["x1"]) + 0.5 * df["x2"] * df["x3"])
    df["y"] = rng.poisson(mean).astype(float)
    return df


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, value


def run(n_boot: int, network_n_boot: int) -> list[dict]:
    df = problem()
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = [timed(ng.glm, FORMULA, df, family="poisson", exposure="exposure") for _ in range(2)]
        boots = [timed(ng.bootstrap, fits[0][1], n_boot, seed=seed) for seed in range(2)]
        rows.append(_row("GLM (IRLS)", fits, boots, f"{fits[0][1].info.n_iter} it", boots[1][1]))
        fits = [timed(ng.fit, FORMULA, df, family="poisson", exposure="exposure", seed=seed, **NETWORK) for seed in range(2)]
        for start in ("fitted", "init"):
            boots = [timed(ng.bootstrap, fits[0][1], network_n_boot, seed=seed, start=start) for seed in range(2)]
            label = f"network (16,) tanh, start={start!r}"
            rows.append(_row(label, fits, boots, f"{fits[0][1].info.n_iter} it ({fits[0][1].info.status.name})", boots[1][1]))
    for warning in caught:
        print("warning:", str(warning.message)[:160])
    return rows


def _row(label, fits, boots, fit_iterations, boot) -> dict:
    scale = 200 / boot.n_boot
    compile_seconds = max(0.0, boots[0][0] - boots[1][0])
    return {
        "model": label,
        "one fit, first (s)": round(fits[0][0], 2),
        "one fit, repeat (s)": round(fits[1][0], 2),
        "fit": fit_iterations,
        "refits": boot.n_boot,
        "refits, first (s)": round(boots[0][0], 2),
        "refits, repeat (s)": round(boots[1][0], 2),
        "ratio first (200)": round((compile_seconds + scale * boots[1][0]) / fits[0][0], 1),
        "ratio repeat (200)": round(scale * boots[1][0] / fits[1][0], 1),
        "converged": int(np.sum(boot.status == "converged")),
        "stalled": int(np.sum(boot.status == "stalled")),
        "limit": int(np.sum(boot.status == "iteration limit")),
        "failed": boot.n_failed,
        "refit it (mean, max)": f"{boot.n_iter.mean():.0f}, {boot.n_iter.max()}",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=200, help="GLM refits")
    parser.add_argument("--network-n-boot", type=int, default=200, help="network refits")
    args = parser.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    table = pd.DataFrame(run(args.n_boot, args.network_n_boot))
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.to_string(index=False))
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
