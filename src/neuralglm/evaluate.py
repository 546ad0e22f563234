"""Out-of-sample evaluation of fitted models: held-out deviance and the fraction explained."""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from neuralglm.data.design import make_design
from neuralglm.data.structures import Design
from neuralglm.family import derived
from neuralglm.family.null_model import intercept_only


def heldout_deviance(fit, data, *, offset=None, exposure=None, weights=None, freq_weights=None) -> float:
    """Deviance of ``fit``'s predictions on new ``data`` (response, weights and offsets read as in training).

    The response, prior weights and offset/exposure columns are taken from ``data`` through the
    fitted model's formula, so this is the deviance R would report for ``predict(fit, newdata)``.
    A model fitted with arrays for ``offset``, ``exposure``, ``weights`` or ``freq_weights``
    needs the arrays of the new rows, passed under the same names.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df.iloc[:48], family="poisson", exposure="holders")
    >>> heldout_deviance(fit, df.iloc[48:]) > 0
    True
    """
    arrays = {"offset": offset, "exposure": exposure, "weights": weights, "freq_weights": freq_weights}
    design = evaluation_design(fit, data, **arrays)
    return _deviance_of_predictions(fit, data, design, offset, exposure)


def _deviance_of_predictions(fit, data, design, offset=None, exposure=None) -> float:
    mu = fit.predict(data, type="response", offset=offset, exposure=exposure).to_numpy()
    with jax.enable_x64(True):
        return float(derived.deviance(fit.family, design.y, mu, design.total_weights))


def heldout_deviance_explained(fit, data, *, offset=None, exposure=None, weights=None, freq_weights=None) -> float:
    """``1 − D(model) / D(null)`` on new data, the null model being the training intercept-only mean.

    For a Gaussian identity fit this is the out-of-sample R² against the training mean. Arrays
    for ``offset``, ``exposure``, ``weights`` and ``freq_weights`` are taken as in
    :func:`heldout_deviance`.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df.iloc[:48], family="poisson", exposure="holders")
    >>> 0 < heldout_deviance_explained(fit, df.iloc[48:]) < 1
    True
    """
    scores = heldout_scores(fit, data, offset=offset, exposure=exposure, weights=weights, freq_weights=freq_weights)
    return 1.0 - scores.deviance / scores.null_deviance


class HeldOutScores(NamedTuple):
    """The deviances of one fit on new rows, and the design those rows were read into."""

    deviance: float
    null_deviance: float
    design: Design


def heldout_scores(fit, data, *, offset=None, exposure=None, weights=None, freq_weights=None) -> HeldOutScores:
    """Held-out deviance of ``fit`` and of its training intercept-only model on ``data``, in one reading of the rows.

    Cross-validation needs both, and the held-out total weight (``design.total_weights``).

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df.iloc[:48], family="poisson", exposure="holders")
    >>> scores = heldout_scores(fit, df.iloc[48:])
    >>> scores.deviance < scores.null_deviance
    True
    """
    design = evaluation_design(fit, data, offset=offset, exposure=exposure, weights=weights, freq_weights=freq_weights)
    train = fit.design
    with jax.enable_x64(True):
        # The intercept-only model refitted on the training rows, then evaluated on the new rows.
        if np.any(train.offset) or np.any(design.offset):
            base = intercept_only(train.y, train.total_weights, train.offset, fit.family, fit.link)
            null_mu = np.asarray(fit.link.inverse(base + design.offset), dtype=np.float64)
        else:
            null_mu = np.full_like(design.y, np.sum(train.total_weights * train.y) / np.sum(train.total_weights))
        null = float(derived.deviance(fit.family, design.y, null_mu, design.total_weights))
    return HeldOutScores(_deviance_of_predictions(fit, data, design, offset, exposure), null, design)


def evaluation_design(fit, data, *, offset=None, exposure=None, weights=None, freq_weights=None, missing="raise") -> Design:
    """The :class:`~neuralglm.data.design.Design` of new ``data`` read the way ``fit`` read its training data.

    Response, offset/exposure and weight columns are taken by the names used when fitting; an
    array given for one of them (the new rows' values, for a model fitted with arrays) is used
    in its place. ``missing="drop"`` leaves out the rows with missing values in the columns used
    (their labels are ``row_labels``).
    """
    source = fit.design.offset_source
    return make_design(
        fit.formula,
        data,
        fit.family,
        offset=source.offset_column if offset is None else offset,
        exposure=source.exposure_column if exposure is None else exposure,
        weights=source.weights_column if weights is None else weights,
        freq_weights=source.freq_weights_column if freq_weights is None else freq_weights,
        missing=missing,
    )
