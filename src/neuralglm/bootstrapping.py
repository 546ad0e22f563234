"""``ng.bootstrap``: how much a fitted model's predictions (and a GLM's coefficients) move when the rows are resampled.

Case resampling is done as frequency weights: replicate ``b`` gives row ``i`` a count
``c_bi`` (Poisson(1) draws, or a multinomial draw of n rows, Efron's bootstrap), which
multiplies the prior weights. Every refit then shares the design, and all of them run as one
vectorized, compiled computation (:mod:`neuralglm.fit.batched`):

- a GLM by IRLS in float64 from the original estimate, to R's convergence criterion;
- a network by the same L-BFGS objective it was trained on (architecture, family, link,
  ``l2``, ``penalize_output``, dtype, tolerance and iteration limit), from the same initial
  weights as the original fit (``start="init"``: the refit is the fit the original call would
  make on the resampled rows) or from the fitted weights (``start="fitted"``: a warm start,
  conditional on the basin the original fit found).

Each refit's outcome is kept (``BootstrapResult.status``, ``n_iter``), and refits short of
convergence warn. Why warm starts are not the default, and why a network's 200 refits cost far
more than 20 fits on a flat objective, is measured in benchmarks/README.md ("Bootstrap").

Intervals are percentile intervals of the replicates (Efron & Tibshirani, 1993, ch. 13).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import jax
import numpy as np
import pandas as pd

from neuralglm.errors import ConvergenceWarning, SpecificationError, warn
from neuralglm.family.null_model import intercept_only
from neuralglm.fit import batched
from neuralglm.fit import gradient_steps as compiled
from neuralglm.model.params import Dense, cast_params, param_names
from neuralglm.model.predictor import linear_predictor_float64
from neuralglm.results.common import PREDICT_TYPES, ResultBase

RESAMPLING = ("poisson", "multinomial")
STARTS = ("init", "fitted")
# How each refit ended (BootstrapResult.status): only "converged" met the fit's criterion; "stalled" is an
# L-BFGS line search that could make no further progress (float32 refits usually end so, at the working
# precision, as ng.fit's own float32 fits do); "iteration limit" ran out of iterations; "failed" gave
# non-finite estimates (or a singular GLM design) and is left out of the intervals.
CONVERGED, STALLED, LIMIT, FAILED = "converged", "stalled", "iteration limit", "failed"
# A network fitted by Adam/SGD is refitted by L-BFGS to the optimum of its objective, with the
# defaults ng.fit gives L-BFGS.
LBFGS_TOL, LBFGS_MAX_ITER = 1e-5, 1000
IRLS_EPSILON, IRLS_MAX_ITER = 1e-10, 50


def _check(name: str, value, ok: bool, wanted: str) -> None:
    if not ok:
        raise SpecificationError(f"The {name!r} parameter of bootstrap must be {wanted}. Got {value!r} instead.")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_level(level, where: str) -> float:
    """``level`` as a float in (0, 1), else a :class:`SpecificationError` naming ``where``."""
    if not (isinstance(level, numbers.Real) and not isinstance(level, bool) and 0.0 < level < 1.0):
        raise SpecificationError(f"The 'level' parameter of {where} must be a float in the range (0.0, 1.0). Got {level!r} instead.")
    return float(level)


def resample_counts(freq: np.ndarray | None, n_obs: int, n_boot: int, rng: np.random.Generator, scheme: str) -> np.ndarray:
    """``(n_boot, n_obs)`` resampling counts: how many times each row is drawn in each replicate.

    A row with frequency weight ``f`` stands for ``f`` cases, so with integer frequencies it is
    drawn Poisson(f) times (a multinomial draw over the cases); other frequencies scale the
    counts of one case.

    Examples
    --------
    >>> counts = resample_counts(None, 5, 3, np.random.default_rng(0), "multinomial")
    >>> counts.shape, counts.sum(axis=1).astype(int).tolist()
    ((3, 5), [5, 5, 5])
    """
    f = np.ones(n_obs) if freq is None else np.asarray(freq, dtype=np.float64)
    integer = bool(np.all(f == np.round(f)))
    if scheme == "poisson":
        return rng.poisson(f, size=(n_boot, n_obs)).astype(np.float64) if integer else f * rng.poisson(1.0, size=(n_boot, n_obs))
    if integer:
        return rng.multinomial(int(f.sum()), f / f.sum(), size=n_boot).astype(np.float64)
    return f * rng.multinomial(n_obs, np.full(n_obs, 1.0 / n_obs), size=n_boot)


def bootstrap(
    fit: ResultBase, n_boot: int = 200, seed: int = 0, *, resample: str = "poisson", start: str = "init", max_iter: int | None = None
) -> BootstrapResult:
    """Refit ``fit`` on ``n_boot`` resamples of its training rows, all at once, for percentile intervals.

    Parameters
    ----------
    fit : a GLM (``ng.glm``, ``ng.glm_fit``) or a network (``ng.fit``) with its training data.
    n_boot : number of bootstrap replicates (≥ 2). 200 suffice for ``se_fit``; a 95% percentile
        interval reads its ends off the replicates' tails, so use 1,000 for it: with 200, 95%
        intervals of a Poisson GLM's mean covered 93.8% in simulation, with 1,000 94.6%
        (``tests/unit/test_bootstrap.py``).
    seed : seeds the resampling; the same seed gives the same replicates.
    resample : ``"poisson"`` (each row drawn Poisson(1) times: the counts are independent) or
        ``"multinomial"`` (n rows drawn with replacement, Efron's bootstrap). Frequency
        weights count as cases; prior weights and offsets/exposure stay with their rows.
    start : networks only. ``"init"`` (default): every refit starts from the original fit's
        initial weights and runs the same L-BFGS with the same iteration limit, so the bootstrap
        replicates the fitting procedure as the call ran it (optimum found, or where it
        stopped). ``"fitted"``: every refit starts from the fitted weights (a warm start, usual
        for bootstrapping an M-estimator); the replicates then measure the sampling variability
        around this local optimum, conditional on the fitted basin, not the variability across
        optima. A warm start is no shortcut on a flat objective: refits of the benchmark's
        (16,)-unit network on 5,000 rows needed 1,500-3,000 L-BFGS iterations from the fitted
        weights to converge in float64, more than the fit's own 1,000. In float32 the refits usually stall at the working precision, warm ones nearer
        their start: their SEs came out 0.1-0.9% below the GLM's without hidden layers, and a
        median 5% below the cold starts' for a (2,)-unit network (1.001 in float64), so use a
        float64 fit with ``start="fitted"``.
    max_iter : networks only: L-BFGS iterations per refit (default: the fit's ``epochs`` when it
        was trained by L-BFGS, else 1000); refits that reach it warn, and ``status`` says which.

    Returns
    -------
    BootstrapResult
        ``predict(new, type, level)`` (``fit, se_fit, lower, upper``), ``replicates``, each
        refit's ``status`` and ``n_iter`` and, for GLMs, ``conf_int(level)``.

    Raises
    ------
    ModelFileError
        for a model loaded without its training data.
    SpecificationError
        for an invalid argument.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df, family="poisson", exposure="holders")
    >>> boot = ng.bootstrap(fit, n_boot=100, seed=1)
    >>> boot.predict(df.head(2)).columns.tolist()
    ['fit', 'se_fit', 'lower', 'upper']
    >>> bool((boot.conf_int()["lower"] < fit.coef).all())
    True
    >>> boot.n_unconverged, sorted(set(boot.status.tolist()))
    (0, ['converged'])
    """
    _check("fit", fit, isinstance(fit, ResultBase), "a fitted model from ng.glm, ng.glm_fit or ng.fit")
    _check("n_boot", n_boot, _is_int(n_boot) and n_boot >= 2, "an int in the range [2, inf)")
    _check("seed", seed, _is_int(seed) and seed >= 0, "an int in the range [0, inf)")
    _check("resample", resample, resample in RESAMPLING, f"one of {', '.join(map(repr, RESAMPLING))}")
    _check("start", start, start in STARTS, f"one of {', '.join(map(repr, STARTS))}")
    fit.require_data("bootstrap()")
    design = fit.design
    counts = resample_counts(design.freq_weights, design.n_obs, int(n_boot), np.random.default_rng(seed), resample)
    weights = design.weights * counts
    if fit.kind == "glm":
        estimates, ok, status, n_iter = _glm_replicates(fit, weights)
        names = list(fit.coef.index)
    else:
        estimates, ok, status, n_iter = _network_replicates(fit, weights, start, max_iter)
        names = param_names(fit.architecture, fit.scaling.names, design.has_intercept)
    failed = int(np.sum(~ok))
    if failed:
        warn(
            f"{failed} of {n_boot} bootstrap refits failed (a factor level or the only informative rows absent from the "
            "resample, or no convergence) and are left out of the intervals; use more data or fewer parameters.",
            ConvergenceWarning,
        )
    return BootstrapResult(fit, int(n_boot), int(seed), resample, names, estimates, ok, status, n_iter, start if fit.kind != "glm" else "")


def _glm_replicates(fit, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    design = fit.design
    X = design.checked_X()
    n, p = X.shape
    small = n * p * p * 8 <= batched.PRODUCTS_MAX_BYTES
    products = batched.column_products(X) if small else None
    beta = fit.coef.to_numpy(dtype=np.float64)

    def run(group):
        with jax.enable_x64(True):
            coefs, deviance, ok, steps = batched.irls_replicates(
                beta,
                X,
                products,
                design.y,
                group,
                design.offset,
                IRLS_EPSILON,
                family=fit.family,
                link=fit.link,
                max_iter=IRLS_MAX_ITER,
            )
            return coefs, deviance, ok, steps

    coefs, deviance, ok, steps = batched.in_groups(weights, 8 * n * (1 if small else p + 1), batched.GLM_GROUP_BYTES, run)
    coefs, ok = np.asarray(coefs, dtype=np.float64), np.asarray(ok, dtype=bool)
    finite = np.all(np.isfinite(coefs), axis=1) & np.isfinite(np.asarray(deviance))
    # A finite refit that did not meet R's criterion in IRLS_MAX_ITER iterations is left out too, as a failed one.
    status = np.where(ok, CONVERGED, np.where(finite, LIMIT, FAILED))
    return coefs, ok, status, np.asarray(steps, dtype=np.int64)


def _network_replicates(
    fit, weights: np.ndarray, start: str, max_iter: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    design, arch, control = fit.design, fit.architecture, fit.control
    lbfgs = control.solver == "lbfgs"
    tol, limit = (control.tol, control.epochs) if lbfgs else (LBFGS_TOL, LBFGS_MAX_ITER)
    max_iter = limit if max_iter is None else max_iter
    if control.early_stopping:
        warn(
            "This network was early-stopped; bootstrap refits train to the optimum of the same penalized objective "
            "(L-BFGS), which can overfit where early stopping did not: add an l2 penalty, or bootstrap a fit without early stopping.",
            ConvergenceWarning,
        )
    dtype = np.dtype(fit.dtype)
    with jax.enable_x64(dtype == np.float64):
        if start == "fitted":
            params = cast_params(fit.params, dtype)
        elif arch.nested:  # its start (the GLM's IRLS estimates, embeddings) is ng.fit's, not init_network's
            raise SpecificationError(
                f"bootstrap of a network with architecture={arch.kind!r} or embeddings starts from the fit: pass start='fitted'."
            )
        else:
            bias = intercept_only(design.y, design.total_weights, design.offset, fit.family, fit.link) if design.has_intercept else 0.0
            params = compiled.init_network(
                jax.random.key(fit.seed),
                jax.device_put(np.asarray(bias, dtype)),
                arch=arch,
                n_in=fit.scaling.n_in,
                has_bias=design.has_intercept,
                dtype=dtype,
            )
        shared = [jax.device_put(np.asarray(v, dtype)) for v in (fit.scaling.transform(design.X), design.y, design.offset)]

        def run(group):
            out, gmax, steps, stalls = batched.lbfgs_replicates(
                params,
                shared[0],
                shared[1],
                jax.device_put(np.asarray(group, dtype)),
                shared[2],
                control.l2,
                tol,
                max_iter,
                arch=arch,
                family=fit.family,
                link=fit.link,
                memory_size=control.memory_size,
                penalize_output=control.penalize_output,
            )
            flat = np.concatenate([np.asarray(leaf, np.float64).reshape(len(group), -1) for leaf in _leaves(out)], axis=1)
            return flat, np.asarray(gmax), np.asarray(steps), np.asarray(stalls)

        per_refit = design.n_obs * max(arch.hidden, default=1) * dtype.itemsize
        flat, gmax, steps, stalls = batched.in_groups(weights, per_refit, batched.NETWORK_GROUP_BYTES, run)
    finite = np.all(np.isfinite(flat), axis=1) & np.isfinite(gmax)
    limit = finite & (gmax > tol) & (steps >= max_iter)
    stalled = finite & (gmax > tol) & ~limit & (stalls >= compiled.LBFGS_MAX_STALLS)
    status = np.where(~finite, FAILED, np.where(limit, LIMIT, np.where(stalled, STALLED, CONVERGED)))
    if np.any(limit):
        warn(
            f"{int(np.sum(limit))} of {len(flat)} bootstrap refits reached the iteration limit ({max_iter}) before "
            f"convergence (largest gradient component up to {float(np.max(gmax[limit])):.2e} > tol={tol:g}); they are "
            "kept (BootstrapResult.status says which). Bootstrap with a larger max_iter, or refit the model with more epochs.",
            ConvergenceWarning,
        )
    return flat, finite, status, np.asarray(steps, dtype=np.int64)


def _leaves(params) -> list:
    """The leaves of a parameter pytree in ``ravel_pytree`` order (weights, then biases, layer by layer)."""
    return [leaf for layer in params for leaf in (layer.weight, layer.bias) if leaf is not None]


def _unflatten(fit, vector: np.ndarray):
    """One flat parameter vector (``ravel_pytree`` order) back to the network's layers."""
    layers, at = [], 0
    for layer in fit.params:
        size = layer.weight.size
        weight = vector[at : at + size].reshape(layer.weight.shape)
        at += size
        bias = None
        if layer.bias is not None:
            bias = vector[at : at + layer.bias.size]
            at += layer.bias.size
        layers.append(Dense(weight, bias))
    return tuple(layers)


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Bootstrap replicates of a fitted model (:func:`bootstrap`).

    Attributes
    ----------
    fit : the original fit.
    n_boot, seed, resample : how the replicates were drawn.
    names : the names of the estimates (coefficients, or network parameters).
    estimates : ``(n_boot, k)`` replicate estimates (float64).
    ok : ``(n_boot,)`` whether each refit is used in the intervals: a network's when its estimates
        are finite, a GLM's when IRLS also converged.
    status : ``(n_boot,)`` how each refit ended: ``"converged"`` (the fit's criterion met),
        ``"stalled"`` (an L-BFGS line search could make no further progress; float32 refits
        usually end so, at the working precision), ``"iteration limit"``, ``"failed"``.
    n_iter : ``(n_boot,)`` iterations of each refit (IRLS or L-BFGS).
    start : a network's ``start`` (``""`` for a GLM).
    """

    fit: ResultBase
    n_boot: int
    seed: int
    resample: str
    names: list[str] = field(repr=False)
    estimates: np.ndarray = field(repr=False)
    ok: np.ndarray = field(repr=False)
    status: np.ndarray = field(repr=False)
    n_iter: np.ndarray = field(repr=False)
    start: str = ""

    @property
    def n_unconverged(self) -> int:
        """Refits that did not meet the fit's convergence criterion (stalled, at the iteration limit, or failed)."""
        return int(np.sum(self.status != CONVERGED))

    @property
    def n_failed(self) -> int:
        """Refits left out of the intervals (see ``ok``)."""
        return int(np.sum(~self.ok))

    @property
    def replicates(self) -> pd.DataFrame:
        """One row per successful refit: the coefficients of a GLM, the parameter vector of a network."""
        return pd.DataFrame(self.estimates[self.ok], columns=self.names)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals of a GLM's coefficients, columns ``lower``, ``upper``.

        A network's weights are not identified (hidden units can swap and change sign), so it
        has none: use :meth:`predict`.
        """
        level = check_level(level, "conf_int")
        if self.fit.kind != "glm":
            raise SpecificationError(
                "conf_int() needs identifiable parameters, and a network's weights are not (hidden units can swap and flip "
                "sign); use predict(new_data) for intervals of its predictions."
            )
        alpha = 1.0 - level
        low, high = np.quantile(self.estimates[self.ok], [alpha / 2, 1 - alpha / 2], axis=0)
        table = pd.DataFrame({"lower": low, "upper": high}, index=pd.Index(self.names))
        table.attrs["level"] = level
        return table

    def predict(self, new_data=None, type: str = "response", level: float = 0.95, *, offset=None, exposure=None) -> pd.DataFrame:
        """The original fit's prediction with the bootstrap standard error and percentile interval.

        Parameters
        ----------
        new_data : rows to predict (offset/exposure columns read as in training); ``None``: the training rows.
        type : ``"response"`` (the mean, e.g. expected counts given the rows' exposure) or ``"link"``.
        level : coverage of the interval.
        offset, exposure : override the offset/exposure of ``new_data``, as in ``fit.predict``.

        Returns
        -------
        pandas.DataFrame
            ``fit`` (the original fit's prediction), ``se_fit`` (standard deviation of the
            replicates), ``lower``, ``upper`` (their ``(1 − level)/2`` and ``(1 + level)/2`` quantiles).
        """
        if type not in PREDICT_TYPES:
            raise SpecificationError(f"type must be one of {', '.join(PREDICT_TYPES)}; got {type!r}.")
        level = check_level(level, "predict")
        fit = self.fit
        if new_data is None:
            X, offset_values, index = fit.design.X, fit.design.offset, pd.Index(fit.design.row_labels)
            original = fit.predict(None, type=type).to_numpy()
        else:
            X, offset_values = fit._new_design(new_data, offset, exposure)
            index = new_data.index if isinstance(new_data, pd.DataFrame) else None
            original = fit.predict(new_data, type=type, offset=offset, exposure=exposure).to_numpy()
        eta = self._replicate_eta(X, offset_values)
        values = eta if type == "link" else fit._mean(eta.ravel()).reshape(eta.shape)
        alpha = 1.0 - level
        low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2], axis=0)
        frame = pd.DataFrame({"fit": original, "se_fit": values.std(axis=0, ddof=1), "lower": low, "upper": high}, index=index)
        frame.attrs["level"] = level
        return frame

    def _replicate_eta(self, X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """``(successful refits, rows)`` linear predictors."""
        estimates = self.estimates[self.ok]
        if self.fit.kind == "glm":
            return estimates @ X.T + offset
        inputs = self.fit.scaling.transform(X)
        arch = self.fit.architecture
        return np.stack([linear_predictor_float64(_unflatten(self.fit, row), arch, inputs, offset) for row in estimates])

    def __repr__(self) -> str:
        start = f", start={self.start!r}" if self.start else ""
        return (
            f"<BootstrapResult {self.fit.kind} · {self.n_boot} {self.resample} replicates, seed={self.seed}{start}, "
            f"unconverged={self.n_unconverged}, failed={self.n_failed}>"
        )


__all__ = ["BootstrapResult", "bootstrap"]
