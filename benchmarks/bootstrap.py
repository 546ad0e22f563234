"""Bootstrap speed: 200 refits by ``ng.bootstrap`` against one fit, measured in the same run.

    python -m benchmarks.bootstrap                        # GLM and network, both network starts, 200 refits each
    python -m benchmarks.bootstrap --network-n-boot 24    # fewer network refits, ratio scaled to 200
    python -m benchmarks.bootstrap --trace float64        # how far warm-started refits are from their optimum, by iteration

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


def trace(dtype: str, n_replicates: int = 2, checkpoints=(0, 25, 100, 200, 500, 1000, 1500, 2000, 3000)) -> pd.DataFrame:
    """L-BFGS from the fitted weights (``start="fitted"``), one refit at a time, to 3,000 iterations.

    For the full data (replicate 0: all counts 1) and ``n_replicates`` Poisson(1) resamples, at
    each checkpoint: the objective ``F`` (half deviance + l2 penalty, on the scale of the sum of
    weights) above its value at 3,000 iterations, the largest gradient component of the mean
    objective (``ng.fit``'s criterion, tol 1e-5), and the root mean square over the rows of the
    linear predictor's distance to its value at 3,000 iterations (the last checkpoint is taken as
    the optimum; in float64 every refit was converged there, gradient ≤ 1.5e-6), and its root
    mean square distance to the fitted function (how far the refit has moved).
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from neuralglm.fit import gradient_steps as compiled
    from neuralglm.model.objective import objective
    from neuralglm.model.params import cast_params
    from neuralglm.model.predictor import linear_predictor

    df = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ng.fit(FORMULA, df, family="poisson", exposure="exposure", seed=0, **NETWORK)
    dt = np.dtype(dtype)
    rows = []
    with jax.enable_x64(dt == np.float64):
        X, y, offset = (jnp.asarray(v, dt) for v in (fit.scaling.transform(fit.design.X), fit.design.y, fit.design.offset))
        control, arch = fit.control, fit.architecture
        statics = {"arch": arch, "family": fit.family, "link": fit.link, "memory_size": control.memory_size}
        eta = jax.jit(lambda p: linear_predictor(p, arch, X, offset))

        @jax.jit
        def value_gmax(p, w):
            args = (arch, fit.family, fit.link, X, y, w, offset, control.l2, jnp.sum(w), control.penalize_output)
            value, grad = jax.value_and_grad(objective)(p, *args)
            return value * jnp.sum(w), jnp.max(jnp.abs(ravel_pytree(grad)[0]))

        draws = [np.ones(fit.design.n_obs)] + [np.random.default_rng(r).poisson(1.0, fit.design.n_obs) for r in range(n_replicates)]
        for replicate, counts in enumerate(draws):
            w = jnp.asarray(counts * fit.design.weights, dt)
            params = cast_params(fit.params, dt)
            state = compiled.init_lbfgs_state(params, memory_size=control.memory_size)
            done, points = 0, []
            for stop in checkpoints:
                # tol 0: run the iterations (a float32 line search that stalls is restarted by the next call).
                while done < stop:
                    params, state, _, _, _, steps, _ = compiled.lbfgs_chunk(
                        params, state, X, y, w, offset, jnp.asarray(control.l2, dt), jnp.sum(w), jnp.asarray(stop - done),
                        jnp.asarray(0.0, dt), penalize_output=control.penalize_output, **statics,
                    )  # fmt: skip
                    done += max(1, int(steps))
                value, gmax = value_gmax(params, w)
                points.append((stop, float(value), float(gmax), np.asarray(eta(params), np.float64)))
            final, start = points[-1], points[0]
            for stop, value, gmax, e in points:
                rows.append(
                    {
                        "replicate": replicate,
                        "iterations": stop,
                        "F - F(3000)": round(value - final[1], 4),
                        "max |grad|": f"{gmax:.1e}",
                        "rms eta distance": round(float(np.sqrt(np.mean((e - final[3]) ** 2))), 4),
                        "rms eta moved": round(float(np.sqrt(np.mean((e - start[3]) ** 2))), 4),
                    }
                )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=200, help="GLM refits")
    parser.add_argument("--network-n-boot", type=int, default=200, help="network refits")
    parser.add_argument("--trace", choices=("float32", "float64"), help="trace warm-started refits instead (see trace())")
    args = parser.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if args.trace:
        print(trace(args.trace).to_string(index=False))
        return 0
    table = pd.DataFrame(run(args.n_boot, args.network_n_boot))
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.to_string(index=False))
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
