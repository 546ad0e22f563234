"""``ng.localglmnet_selection``: Richman & Wüthrich's variable-selection test for LocalGLMnet, in one call.

A pure-noise covariate (standard normal, independent of everything) is added to the formula and
a LocalGLMnet is fitted. The noise has no effect, so the spread of its coefficients β_noise(x)
around 0 is the band of "no effect": I = ±z·σ̂(β_noise), z the normal quantile of ``level``
(Richman & Wüthrich 2023, "LocalGLMnet: interpretable deep learning for tabular data",
Scand. Actuar. J., §4.2). A covariate whose βⱼ(x) mostly stays inside I has no detectable effect.
All inputs are standardized (numeric columns to unit variance), so the coefficients are comparable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from neuralglm.data.frame import to_pandas
from neuralglm.errors import SpecificationError
from neuralglm.network import fit as network_fit

NOISE = "noise_covariate"


def localglmnet_selection(formula: str, data, *, level: float = 0.95, noise_seed: int = 0, **fit_arguments) -> pd.DataFrame:
    """Fit a LocalGLMnet with an added pure-noise covariate and test every input against its band.

    Parameters
    ----------
    formula, data : as :func:`neuralglm.fit` (the noise column is added to a copy of ``data``).
    level : coverage of the band of "no effect" (0 < level < 1).
    noise_seed : seed of the noise covariate.
    **fit_arguments : passed to :func:`neuralglm.fit` (``family``, ``exposure``, ``hidden``, …);
        ``architecture`` is ``"localglmnet"``.

    Returns
    -------
    pandas.DataFrame
        one row per network input (the noise last): ``input``, ``mean_coef`` and ``sd_coef``
        (of βⱼ(x) over the rows), ``lower``/``upper`` (the band), ``outside`` (share of rows with
        βⱼ(x) outside the band) and ``keep`` (``outside`` above twice what a pure-noise input
        shows, 2·(1 − level)). The fit is in ``.attrs["fit"]``.

    Examples
    --------
    >>> import neuralglm as ng
    >>> df = ng.datasets.simulate_motor(600, seed=0)
    >>> table = ng.localglmnet_selection("ClaimNb ~ BonusMalus + DrivAge", df, family="poisson",
    ...                                  exposure="Exposure", hidden=(3,), epochs=20, seed=1)  # doctest: +SKIP
    >>> list(table["input"])  # doctest: +SKIP
    ['BonusMalus', 'DrivAge', 'noise_covariate']
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise SpecificationError(
            f"The 'level' parameter of localglmnet_selection must be a float in the range (0, 1). Got {level!r} instead."
        )
    if fit_arguments.pop("architecture", "localglmnet") != "localglmnet":
        raise SpecificationError("localglmnet_selection fits architecture='localglmnet'; drop the 'architecture' argument.")
    frame = to_pandas(data)
    if NOISE in frame.columns:
        raise SpecificationError(f"The data already hold a column {NOISE!r}, the name of the added noise; rename it.")
    noisy = frame.assign(**{NOISE: np.random.default_rng(noise_seed).standard_normal(len(frame))})
    fitted = network_fit(f"{formula} + {NOISE}", noisy, architecture="localglmnet", **fit_arguments)
    beta = fitted.local_coef()
    half_width = stats.norm.ppf(0.5 + level / 2.0) * float(beta[NOISE].std(ddof=1))
    outside = (beta.abs() > half_width).mean()
    table = pd.DataFrame(
        {
            "input": list(beta.columns),
            "mean_coef": beta.mean().to_numpy(),
            "sd_coef": beta.std(ddof=1).to_numpy(),
            "lower": -half_width,
            "upper": half_width,
            "outside": outside.to_numpy(),
        }
    )
    table["keep"] = table["outside"] > 2.0 * (1.0 - level)
    order = [name for name in beta.columns if name != NOISE] + [NOISE]
    table = table.set_index("input").loc[order].reset_index()
    table.attrs["fit"] = fitted
    return table
