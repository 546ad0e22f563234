"""Out-of-sample evaluation of fitted models: held-out deviance and the fraction explained."""

from __future__ import annotations

import jax
import numpy as np

from neuralglm.data.design import make_design
from neuralglm.family import derived
from neuralglm.family.null_model import intercept_only


def heldout_deviance(fit, data) -> float:
    """Deviance of ``fit``'s predictions on new ``data`` (response, weights and offsets read as in training).

    The response, prior weights and offset/exposure columns are taken from ``data`` through the
    fitted model's formula, so this is the deviance R would report for ``predict(fit, newdata)``.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df.iloc[:48], family="poisson", exposure="holders")
    >>> heldout_deviance(fit, df.iloc[48:]) > 0
    True
    """
    return _deviance_of_predictions(fit, data, evaluation_design(fit, data))


def _deviance_of_predictions(fit, data, design) -> float:
    mu = fit.predict(data, type="response").to_numpy()
    with jax.enable_x64(True):
        return float(derived.deviance(fit.family, design.y, mu, design.total_weights))


def heldout_deviance_explained(fit, data) -> float:
    """``1 − D(model) / D(null)`` on new data, the null model being the training intercept-only mean.

    For a Gaussian identity fit this is the out-of-sample R² against the training mean.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ group + age", df.iloc[:48], family="poisson", exposure="holders")
    >>> 0 < heldout_deviance_explained(fit, df.iloc[48:]) < 1
    True
    """
    design = evaluation_design(fit, data)
    train = fit.design
    with jax.enable_x64(True):
        # The intercept-only model refitted on the training rows, then evaluated on the new rows.
        if np.any(train.offset) or np.any(design.offset):
            base = intercept_only(train.y, train.total_weights, train.offset, fit.family, fit.link)
            null_mu = np.asarray(fit.link.inverse(base + design.offset), dtype=np.float64)
        else:
            null_mu = np.full_like(design.y, np.sum(train.total_weights * train.y) / np.sum(train.total_weights))
        null = float(derived.deviance(fit.family, design.y, null_mu, design.total_weights))
    return 1.0 - _deviance_of_predictions(fit, data, design) / null


def evaluation_design(fit, data):
    """The :class:`~neuralglm.data.design.Design` of new ``data`` read the way ``fit`` read its training data.

    Response, offset/exposure and weight columns are taken by the names used when fitting.
    """
    source = fit.design.offset_source
    return make_design(
        fit.formula,
        data,
        fit.family,
        offset=source.offset_column,
        exposure=source.exposure_column,
        weights=source.weights_column,
        freq_weights=source.freq_weights_column,
    )
