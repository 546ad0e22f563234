"""Methods that a fitted GLM and a fitted network share: they read only fields both have."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from neuralglm.data.design import Design
from neuralglm.errors import SpecificationError
from neuralglm.family import derived
from neuralglm.family.family import Family
from neuralglm.family.link import Link


class SharedResultMethods:
    """Mixed into :class:`~neuralglm.FitResult` and :class:`~neuralglm.NetworkResult`."""

    family: Family
    link: Link
    design: Design
    fitted_mu: np.ndarray

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals of the fit: ``"deviance"``, ``"pearson"``, ``"response"`` or ``"working"`` (R's types).

        Examples
        --------
        >>> import neuralglm as ng
        >>> fit = ng.glm("claims ~ group + age", ng.datasets.load_insurance(), family="poisson", exposure="holders")
        >>> round(float((fit.residuals("deviance") ** 2).sum() - fit.deviance), 8)
        0.0
        """
        if type not in derived.RESIDUAL_KINDS:
            raise SpecificationError(f"Unknown residual type {type!r}; choose one of {', '.join(derived.RESIDUAL_KINDS)}.")
        with jax.enable_x64(True):
            values = derived.residuals(self.family, self.link, self.design.y, self.fitted_mu, self.design.weights, kind=type)
        return pd.Series(np.asarray(values, dtype=np.float64), index=self.design.row_labels, name=type)

    def save(self, path, *, include_data: bool = True) -> None:
        """Save to one ``.npz`` file (arrays + JSON spec, no pickle); read it back with :func:`neuralglm.load`.

        See :func:`neuralglm.results.serialize.save` for ``include_data`` and what can be saved.
        """
        from neuralglm.results.serialize import save

        save(self, path, include_data=include_data)
