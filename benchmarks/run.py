"""GLM speed benchmark: neuralglm's IRLS against statsmodels, scikit-learn and glum, in one run.

    python -m benchmarks.run                    # full grid: n = 1e5, 1e6 × p = 20, 100
    python -m benchmarks.run --sizes small      # n = 1e5 only (about a minute)
    python -m benchmarks.run --blas-threads 1   # BLAS on one thread, every tool alike
    python -m benchmarks.run --formula          # also the formula path: ng.glm(formula, df), peers on the frame
    python -m benchmarks.run --formula-only --sizes 2e5x100   # only the formula path (a quick check)
    python -m benchmarks.run --device gpu       # JAX on the GPU (needs jax[cuda12])

Every tool fits the same unpenalized model (intercept + p − 1 features) to the same data and
is asked for the same convergence, tolerance 1e-8 in its own criterion. The table reports
the best wall time of ``--repeats`` fits, the ratio to neuralglm's time (> 1: neuralglm is
faster), and how far each tool's coefficients are from neuralglm's: as a share of the largest
coefficient, and in standard errors (from neuralglm's covariance).

neuralglm is timed through its public ``glm_fit(X, y, family=...)``, which also validates
the data and computes the covariance matrix, null deviance, log-likelihood and AIC. Its first
call at each new shape includes JAX compilation; that time is reported apart (first call
minus the best later call), and the repeats measure the run time.

The formula path (``--formula``): ``ng.glm("y ~ x1 + … + x99", df)`` on a pandas DataFrame
holding the same numbers (one float64 block, as a user's frame), against ``glm_fit`` on the
matrix (the formula's cost) and the peers fitted on the same DataFrame (``*-frame`` tools:
their time includes their own conversion of the frame).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks import device
from benchmarks.problems import DESIGNS, FAMILIES, SIZES, Problem, feature_names, formula, frame, make_problem

TOL = 1e-8
TOOLS = ("neuralglm", "statsmodels", "sklearn-newton-cholesky", "sklearn-lbfgs", "glum")
# Not run by default: L-BFGS asked for a tolerance that brings it near the others' optimum
# (1e-8 leaves it 3e-7 to 1e-6 standard errors away at n = 1e6, p = 100).
EXTRA_TOOLS = ("sklearn-lbfgs-tol1e-12",)
# The formula path and the peers fitted on the same pandas DataFrame (--formula, --formula-only).
FORMULA_TOOLS = ("neuralglm-formula", "sklearn-lbfgs-frame", "sklearn-newton-cholesky-frame", "glum-frame")
ALL_TOOLS = TOOLS + EXTRA_TOOLS + FORMULA_TOOLS


@dataclass
class Timing:
    tool: str
    seconds: float
    coef: np.ndarray
    first_call: float | None = None
    note: str = ""


def _with_intercept(intercept: float, coef: np.ndarray) -> np.ndarray:
    return np.concatenate([[intercept], np.ravel(coef)])


def _fitters(problem: Problem, stash: dict[str, np.ndarray], table=None) -> dict[str, Callable[[], tuple[np.ndarray, str]]]:
    """One zero-argument fit per tool, returning (coefficients in our column order, note).

    neuralglm's fit also leaves its standard errors in ``stash``.
    """
    X, y, family = problem.X, problem.y, problem.family
    # The peers add their own intercept; give them the features without the column of ones,
    # made contiguous once here so no tool pays for the copy.
    features = np.ascontiguousarray(X[:, 1:])

    def ours():
        import neuralglm as ng

        fit = ng.glm_fit(X, y, family=family)
        assert fit.vcov is not None
        stash["std_errors"] = fit.std_errors.to_numpy()
        return fit.coef.to_numpy(), f"{fit.info.n_iter} it"

    def statsmodels_glm():
        import statsmodels.api as sm

        sm_family = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
        result = sm.GLM(y, X, family=sm_family).fit(tol=TOL, tol_criterion="deviance", maxiter=100)
        return np.asarray(result.params), f"{result.fit_history['iteration']} it"

    def sklearn(solver: str, tol: float = TOL):
        from sklearn.linear_model import LogisticRegression, PoissonRegressor

        def fit():
            if family == "poisson":
                model = PoissonRegressor(alpha=0.0, solver=solver, tol=tol, max_iter=10_000)
            else:
                model = LogisticRegression(C=np.inf, solver=solver, tol=tol, max_iter=10_000)
            model.fit(features, y)
            n_iter = int(np.max(model.n_iter_))
            return _with_intercept(float(np.ravel(model.intercept_)[0]), model.coef_), f"{n_iter} it"

        return fit

    def glum_glm():
        from glum import GeneralizedLinearRegressor

        model = GeneralizedLinearRegressor(family=family, alpha=0.0, gradient_tol=TOL, max_iter=1000)
        model.fit(features, y)
        return _with_intercept(float(model.intercept_), model.coef_), f"{model.n_iter_} it"

    return {
        "neuralglm": ours,
        "statsmodels": statsmodels_glm,
        "sklearn-newton-cholesky": sklearn("newton-cholesky"),
        "sklearn-lbfgs": sklearn("lbfgs"),
        "sklearn-lbfgs-tol1e-12": sklearn("lbfgs", 1e-12),
        "glum": glum_glm,
        **({} if table is None else _frame_fitters(problem, table)),
    }


def _frame_fitters(problem: Problem, table) -> dict[str, Callable[[], tuple[np.ndarray, str]]]:
    """The formula path, and the peers fitted on the same DataFrame ``table`` (made before any timer starts)."""
    family, names = problem.family, feature_names(problem)

    def data():
        return table

    def ours():
        import neuralglm as ng

        fit = ng.glm(formula(problem), data(), family=family)
        assert fit.vcov is not None
        return fit.coef.to_numpy(), f"{fit.info.n_iter} it"

    def sklearn(solver: str):
        from sklearn.linear_model import LogisticRegression, PoissonRegressor

        def fit():
            if family == "poisson":
                model = PoissonRegressor(alpha=0.0, solver=solver, tol=TOL, max_iter=10_000)
            else:
                model = LogisticRegression(C=np.inf, solver=solver, tol=TOL, max_iter=10_000)
            model.fit(data()[names], data()["y"])
            return _with_intercept(float(np.ravel(model.intercept_)[0]), model.coef_), f"{int(np.max(model.n_iter_))} it"

        return fit

    def glum_glm():
        from glum import GeneralizedLinearRegressor

        model = GeneralizedLinearRegressor(family=family, alpha=0.0, gradient_tol=TOL, max_iter=1000)
        model.fit(data()[names], data()["y"])
        return _with_intercept(float(model.intercept_), model.coef_), f"{model.n_iter_} it"

    return {
        "neuralglm-formula": ours,
        "sklearn-lbfgs-frame": sklearn("lbfgs"),
        "sklearn-newton-cholesky-frame": sklearn("newton-cholesky"),
        "glum-frame": glum_glm,
    }


def _time(fit: Callable[[], tuple[np.ndarray, str]], repeats: int, budget: float) -> tuple[list[float], np.ndarray, str]:
    times: list[float] = []
    coef, note = np.array([]), ""
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coef, note = fit()
        times.append(time.perf_counter() - started)
        if sum(times) > budget:
            break
    return times, coef, note


def run_problem(problem: Problem, tools: list[str], repeats: int, budget: float, slow_max_n: int) -> tuple[list[Timing], np.ndarray]:
    """Time every tool on one problem; also returns neuralglm's standard errors (ones if not run)."""
    stash = {"std_errors": np.ones(problem.n_coef)}
    # The DataFrame of the formula path (800 MB at n = 1e6, p = 100) only when a tool reads it.
    fitters = _fitters(problem, stash, frame(problem) if set(tools) & set(FORMULA_TOOLS) else None)
    results = []
    for tool in tools:
        if tool == "statsmodels" and problem.n_obs > slow_max_n:
            print(f"  {tool:<24} skipped (n > --slow-max-n {slow_max_n:.0e})", flush=True)
            continue
        if tool.startswith("glum") and importlib.util.find_spec("glum") is None:
            print(f"  {tool:<24} skipped (glum is not installed: pip install glum)", flush=True)
            continue
        if tool in ("neuralglm", "neuralglm-formula"):
            # First call at this shape: JAX compiles; the further calls are the run time.
            times, coef, note = _time(fitters[tool], repeats + 1, budget)
            timing = Timing(tool, min(times[1:]) if len(times) > 1 else times[0], coef, first_call=times[0], note=note)
        else:
            times, coef, note = _time(fitters[tool], repeats, budget)
            timing = Timing(tool, min(times), coef, note=note)
        print(f"  {tool:<24} {timing.seconds:8.3f} s  ({', '.join(f'{t:.3f}' for t in times)})  {note}", flush=True)
        results.append(timing)
    return results, stash["std_errors"]


def format_table(rows: list[tuple[str, list[Timing], np.ndarray]]) -> str:
    header = (
        "| problem | tool | time (s) | ratio to neuralglm | compile (s) | max rel. coef diff | max coef diff / SE | iterations |\n"
        "|---|---|---:|---:|---:|---:|---:|---|"
    )
    lines = [header]
    for label, timings, std_errors in rows:
        ours = next((t for t in timings if t.tool == "neuralglm"), None)
        peers = [t for t in timings if not t.tool.startswith("neuralglm")]
        fastest = min(peers, key=lambda t: t.seconds) if peers else None
        for timing in timings:
            ratio = "—" if ours is None else f"{timing.seconds / ours.seconds:.2f}"
            compile_time = "" if timing.first_call is None else f"{max(timing.first_call - timing.seconds, 0.0):.2f}"
            if ours is None or timing.tool == "neuralglm":
                rel, in_se = "—", "—"
            else:
                difference = np.abs(timing.coef - ours.coef)
                rel = f"{difference.max() / np.abs(ours.coef).max():.1e}"
                in_se = f"{(difference / std_errors).max():.1e}"
            name = f"**{timing.tool}**" if timing is fastest else timing.tool
            lines.append(f"| {label} | {name} | {timing.seconds:.3f} | {ratio} | {compile_time} | {rel} | {in_se} | {timing.note} |")
    return "\n".join(lines)


def format_formula_table(rows: list[tuple[str, list[Timing], np.ndarray]]) -> str:
    """The formula path's targets per problem: its cost over ``glm_fit`` on the matrix, and its time over each peer's on the frame."""
    peers = ("sklearn-lbfgs-frame", "sklearn-newton-cholesky-frame", "glum-frame")
    header = (
        "| problem | glm_fit (s) | ng.glm formula (s) | formula cost / glm_fit | "
        + " | ".join(f"ng.glm / {peer}" for peer in peers)
        + " |\n|---|---:|---:|---:|"
        + "---:|" * len(peers)
    )
    lines = [header]
    for label, timings, _ in rows:
        seconds = {t.tool: t.seconds for t in timings}
        ours = seconds.get("neuralglm-formula")
        if ours is None:
            continue
        matrix = seconds.get("neuralglm")
        cost = "—" if matrix is None else f"{(ours - matrix) / matrix:.0%}"
        ratios = [f"{ours / seconds[peer]:.2f}" if peer in seconds else "—" for peer in peers]
        lines.append(f"| {label} | {'—' if matrix is None else f'{matrix:.3f}'} | {ours:.3f} | {cost} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def machine_description(blas_threads: int | None) -> str:
    import jax
    import scipy
    import sklearn
    import statsmodels

    try:
        import glum

        glum_version = glum.__version__
    except ImportError:
        glum_version = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, jax {jax.__version__}, statsmodels {statsmodels.__version__}, "
        f"scikit-learn {sklearn.__version__}, glum {glum_version}; "
        f"BLAS threads: {'default' if blas_threads is None else blas_threads}"
    )


def _sizes(text: str, parser: argparse.ArgumentParser) -> list[tuple[int, int]]:
    if text in SIZES:
        return SIZES[text]
    try:
        return [(int(float(n)), int(p)) for n, p in (item.lower().split("x") for item in text.split(","))]
    except ValueError:
        parser.error(f"--sizes must be one of {', '.join(SIZES)} or a list like 1e6x100,1e5x20; got {text!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="full", help="'small', 'full' (default), or sizes like 1e6x100,1e5x20")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated: poisson,binomial")
    parser.add_argument("--designs", default="iid", help=f"comma-separated subset of {','.join(DESIGNS)} (default iid)")
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated subset of {','.join(TOOLS + EXTRA_TOOLS)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per tool; the best counts (default 3)")
    parser.add_argument("--budget", type=float, default=30.0, help="stop repeating a tool after this many seconds (default 30)")
    parser.add_argument("--slow-max-n", type=float, default=1e5, help="skip statsmodels above this n_obs (default 1e5)")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads for every tool (threadpoolctl)")
    parser.add_argument("--formula", action="store_true", help=f"also time the formula path: {', '.join(FORMULA_TOOLS)}")
    parser.add_argument(
        "--formula-only", action="store_true", help="only the formula path, glm_fit on the matrix and the peers on the frame"
    )
    device.add_argument(parser)
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    if args.formula_only:
        tools = ["neuralglm", *FORMULA_TOOLS]
    elif args.formula:
        tools += [t for t in FORMULA_TOOLS if t not in tools]
    unknown = sorted(set(tools) - set(ALL_TOOLS))
    if unknown:
        parser.error(f"unknown tools {unknown}; choose from {', '.join(ALL_TOOLS)}")
    print(f"JAX device: {device.select(args.device)}", flush=True)

    limits = None
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(args.blas_threads, user_api="blas")
    print(machine_description(args.blas_threads), flush=True)
    print(f"command: python -m benchmarks.run {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip(), flush=True)
    rows = []
    problems = [
        (family, n_obs, n_coef, design)
        for design in args.designs.split(",")
        for n_obs, n_coef in _sizes(args.sizes, parser)
        for family in args.families.split(",")
    ]
    for family, n_obs, n_coef, design in problems:
        load = os.getloadavg()[0]
        problem = make_problem(family, n_obs, n_coef, design)
        print(f"{problem.label}  (load average {load:.1f} before)", flush=True)
        timings, std_errors = run_problem(problem, tools, args.repeats, args.budget, int(args.slow_max_n))
        rows.append((problem.label, timings, std_errors))
        del problem  # 800 MB at n = 1e6, p = 100
        gc.collect()
    print()
    print(format_table(rows))
    if any(t.tool == "neuralglm-formula" for _, timings, _ in rows for t in timings):
        print()
        print(format_formula_table(rows))
    if limits is not None:
        limits.restore_original_limits()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
