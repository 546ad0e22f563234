"""GLMs fitted to data that are not in memory (Parquet read in batches, Dask frames), and their result.

:func:`fit_streamed` runs the first pass (checks and factor levels, :mod:`neuralglm.data.batches`),
accumulated IRLS (:mod:`neuralglm.fit.accumulated_irls`) and the statistics passes, and
assembles a :class:`StreamedFitResult`: a :class:`~neuralglm.FitResult` with the same numbers
and methods as the in-memory fit, except those that need the training rows (fitted values,
residuals, influence, profile intervals), which say so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from neuralglm.data.batches import BatchPlan, reissue_warnings
from neuralglm.errors import DataError, SpecificationError
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.accumulated_irls import accumulated_statistics, fit_accumulated, null_deviance
from neuralglm.fit.irls import IRLSControl
from neuralglm.results.common import FitStatistics, Fitted, resolve_dispersion
from neuralglm.results.result import FitResult, assemble_fit_result


def streamed_source(data):
    """A source of batches for ``data`` read in passes (Parquet, Dask), or None for data held in memory."""
    if isinstance(data, pd.DataFrame | dict):
        return None
    from neuralglm.data.dask_source import DaskSource, is_dask_frame
    from neuralglm.data.parquet_source import ParquetSource, is_parquet_source

    if is_dask_frame(data):
        return DaskSource(data)
    if is_parquet_source(data):
        return ParquetSource(data)
    return None


@dataclass(frozen=True, eq=False)
class StreamedFitResult(FitResult):
    """A GLM fitted to data read in passes (Parquet, Dask): a :class:`~neuralglm.FitResult` without the training rows.

    ``predict(new_data)`` works on in-memory data as for any fit; on a Parquet source it writes
    the predictions to the Parquet file ``path``, batch by batch. What needs the training rows
    in memory (``fitted_mu``, ``residuals()``, ``predict()`` without data, influence,
    ``conf_int(method="profile")``) raises a :class:`DataError` saying so.
    """

    data_description: str = "read in batches"

    def _fitted(self, what: str) -> Fitted:
        raise DataError(
            f"{what} needs the training rows in memory, and this model was fitted to data {self.data_description} "
            "(only sums over the rows were kept): predict on the data instead (fit.predict(data), or fit.predict(parquet, path=out) "
            "to write Parquet), or fit a sample in memory for diagnostics."
        )

    def predict(self, new_data=None, type: str = "response", *, path=None, keep=(), **options):
        """As :meth:`FitResult.predict`; with ``path``, ``new_data`` is Parquet data and the predictions are written there.

        ``keep``: columns of ``new_data`` copied next to the predictions (e.g. an identifier).
        """
        if path is None:
            return super().predict(new_data, type, **options)
        from neuralglm.data.parquet_source import write_predictions

        if options:
            raise SpecificationError(f"predict(path=...) writes point predictions only; got {', '.join(sorted(options))} too.")
        write_predictions(self, new_data, path, type=type, keep=keep)
        return None


def fit_streamed(source, formula: str, family: Family, link: Link, arguments: dict, settings: dict) -> StreamedFitResult:
    """Fit ``formula`` to the batches of ``source`` (see the module docstring); ``arguments`` are glm's data arguments."""
    if family.estimates_parameter:
        raise SpecificationError(
            f"The {family} family estimates its parameter by refitting, which data {source.description} do not support yet: "
            "fix the parameter (e.g. family='negative_binomial(0.5)') or fit in memory."
        )
    if settings["cov_type"] != "expected":
        raise SpecificationError(
            f"cov_type={settings['cov_type']!r} needs the rows in memory; data {source.description} support cov_type='expected'."
        )
    plan = BatchPlan.create(formula, family, source=source.description, **arguments)
    source.use_columns(formula, arguments)
    try:
        template, fit, sums, info, null = _passes(source, plan, family, link, settings)
    finally:
        source.close()
    rank = template.n_coef
    statistics = _statistics(sums, null, family, rank, settings["dispersion"])
    vcov = fit.factor.inverse() * statistics.dispersion
    empty = np.zeros(0)
    design = dataclasses.replace(
        template,
        y=empty,
        X=np.zeros((0, rank)),
        weights=empty,
        freq_weights=None if template.freq_weights is None else empty,
        offset=empty,
        row_labels=empty,
    )
    return assemble_fit_result(
        StreamedFitResult, design, family, link, fit.coef, vcov, statistics, info, "expected", None, [], data_description=source.description
    )


def _passes(source, plan: BatchPlan, family: Family, link: Link, settings: dict):
    """The first pass, accumulated IRLS, the statistics pass and the null model's passes."""
    reports = source.scan(plan)
    plan = plan.with_template(reports)
    reissue_warnings(reports)
    template = plan.template
    assert template is not None

    def run_pass(request):
        return source.run_pass(plan, family, link, request)

    control = IRLSControl(epsilon=settings["epsilon"], max_iter=settings["max_iter"])
    fit = fit_accumulated(run_pass, family, link, column_names=template.column_names, control=control, progress=settings["progress"])
    sums, info = accumulated_statistics(run_pass, fit, family)
    null = null_deviance(run_pass, fit.totals, family, link, template.has_intercept)
    return template, fit, sums, info, null


def _statistics(sums: dict, null: float, family: Family, rank: int, dispersion) -> FitStatistics:
    """The statistics of :func:`neuralglm.results.common.fit_statistics` from accumulated sums."""
    n_obs = sums["n_obs"]
    df_resid = n_obs - rank
    chi2 = sums["pearson_chi2"]
    phi, method = resolve_dispersion(family, chi2, df_resid, dispersion)
    ll = sums["loglik"]
    k = derived.n_loglik_params(family, rank)
    aic, bic = float(derived.aic(ll, k)), float(derived.bic(ll, k, n_obs))
    return FitStatistics(n_obs, df_resid, sums["deviance"], null, chi2, phi, method, ll, aic, bic)
