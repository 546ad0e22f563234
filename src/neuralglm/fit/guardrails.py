"""Checks before training that the data can support the model: more parameters than observations warns.

A network with as many parameters as observations can interpolate them: its residual degrees
of freedom (n − k) are zero or negative, the dispersion, AIC and BIC have nothing to be
estimated from, and nothing in the fit tells signal from noise. Issue 9 found 151 parameters
fitted to 5 rows without a word; :func:`check_sample_size` warns (:class:`~neuralglm.errors.DataWarning`)
with the counts and what to change.

The sample counted is the effective one, as the fit's statistics count it
(:func:`neuralglm.results.common.fit_statistics`): rows with positive weight, each counted
as many times as its frequency weight. Frequency weights repeat rows without adding distinct
points, so more parameters than distinct rows with positive weight also warns.
"""

from __future__ import annotations

import numpy as np

from neuralglm.data.structures import Design
from neuralglm.errors import DataWarning, warn


def effective_sample(design: Design) -> tuple[int, float]:
    """``(rows, n_obs)``: rows with positive weight, and those rows counted by their frequency weights.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> design = SimpleNamespace(total_weights=np.array([1.0, 0.0, 2.0]), freq_weights=np.array([1.0, 0.0, 2.0]))
    >>> effective_sample(design)
    (2, 3.0)
    """
    counted = np.asarray(design.total_weights) > 0
    rows = int(np.sum(counted))
    n_obs = float(np.sum(np.asarray(design.freq_weights)[counted])) if design.freq_weights is not None else float(rows)
    return rows, n_obs


def check_sample_size(design: Design, n_params: int, n_hidden: int, l2: float) -> None:
    """Warn (:class:`~neuralglm.errors.DataWarning`) when the ``n_params`` parameters are not fewer than the sample.

    It warns when ``df_resid = n_obs − n_params ≤ 0`` (``n_obs`` as :func:`effective_sample`
    counts it) or when the parameters outnumber the distinct rows with positive weight. The
    message names the counts and what to do: fewer hidden units (or columns), an ``l2``
    penalty, more data.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> design = SimpleNamespace(total_weights=np.ones(5), freq_weights=None)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_sample_size(design, 151, n_hidden=1, l2=0.0)
    >>> print(str(caught[0].message)[:68])
    The network has 151 parameters but only 5 observations (rows with po
    """
    rows, n_obs = effective_sample(design)
    df_resid = n_obs - n_params
    if df_resid > 0 and n_params <= rows:
        return
    sample = f"{_count(n_obs)} observations (rows with positive weight)"
    if design.freq_weights is not None:
        sample = f"{_count(n_obs)} observations ({rows:,} rows with positive weight, counted by their frequency weights)"
    if df_resid <= 0:
        problem = (
            f"so df_resid = n − k = {_count(df_resid)} ≤ 0: it can interpolate the data, the dispersion, AIC and BIC have "
            "nothing to be estimated from, and nothing in the fit tells signal from noise"
        )
    else:
        problem = (
            f"and only {rows:,} distinct rows: frequency weights repeat rows without adding points, so the network can "
            "still interpolate them"
        )
    smaller = "fewer hidden units (e.g. a narrower hidden=)" if n_hidden else "fewer columns in the formula"
    remedies = [smaller, *(["an l2 penalty (l2 > 0)"] if l2 == 0.0 else []), "more data"]
    warn(
        f"The network has {n_params:,} parameters but only {sample}, {problem}. Use {', '.join(remedies[:-1])} or {remedies[-1]}.",
        DataWarning,
    )


def _count(value: float) -> str:
    return f"{round(value):,}" if value == round(value) else f"{value:,.6g}"
