"""Data frames that arrive in batches (Parquet row batches, Dask partitions) → blocks with the in-memory design.

Each batch goes through :func:`~neuralglm.data.design.make_design`, the function the in-memory
fit uses, so every check (missing values, the family's domain, weights, exposure) and
``missing="drop"`` behave the same, with the batch's row labels in the messages. A batch
seldom holds every level of every factor, so the design matrix of each batch is built with one
formulaic model spec found once, by :meth:`BatchPlan.with_template`: a first pass
(:meth:`BatchPlan.scan`) keeps, per factor, one row for each level it meets, and the design of
those few rows has every level, in the order the in-memory fit gives them (sorted, as R's
``factor()``). A batch that has every level already builds the same columns itself and is used
as it is; one that lacks a level is rebuilt with the template's spec
(:func:`~neuralglm.data.design.model_matrix_for`).

Formulas whose transforms learn from the data (``scale(x)``, ``center(x)``, ``poly(x, 2)``)
would learn from one batch only: they are refused.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from neuralglm.data.design import Design, make_design, model_matrix_for
from neuralglm.errors import DataError, DataWarning, SpecificationError, warn
from neuralglm.family.family import Family
from neuralglm.fit.accumulated_sums import Block

ARGUMENTS = ("offset", "exposure", "weights", "freq_weights")


@dataclass(frozen=True)
class ScanReport:
    """What the first pass learns from one batch: its rows, the rows kept, one row per factor level met, its warnings."""

    n_rows: int
    n_kept: int
    exemplars: pd.DataFrame | None
    warnings: tuple[tuple[type, str], ...] = ()


@dataclass(frozen=True)
class BatchPlan:
    """How a batch becomes a :class:`~neuralglm.fit.accumulated_sums.Block`: the formula, family, arguments and template design."""

    formula: str
    family: Family
    arguments: dict = field(default_factory=dict)
    template: Design | None = None

    @classmethod
    def create(cls, formula: str, family: Family, *, missing: str, source: str, **given) -> BatchPlan:
        """A plan without template; offsets and weights must be column names (arrays belong to rows in memory)."""
        for name in ARGUMENTS:
            value = given.get(name)
            if value is not None and not isinstance(value, str):
                raise SpecificationError(
                    f"The '{name}' parameter of glm must be the name of a column when the data are {source}; "
                    f"got a {type(value).__name__}. Add it to the data as a column and pass its name."
                )
        return cls(formula, family, {**{name: given.get(name) for name in ARGUMENTS}, "missing": missing})

    def _design(self, frame: pd.DataFrame) -> Design | None:
        """The batch's design as in memory; None when ``missing="drop"`` drops every row of the batch."""
        try:
            return make_design(self.formula, frame, self.family, **self.arguments)
        except DataError as error:
            # In memory this is an error only when every row of the data is dropped: for a
            # batch, it is a batch with nothing left (with_template refuses data with no rows).
            if self.arguments.get("missing") != "drop" or not str(error).startswith("Every row has a missing"):
                raise
            warn(f"Dropped all {len(frame):,} rows of a batch (rows {frame.index[0]} to {frame.index[-1]}): {error}", DataWarning)
            return None

    def scan(self, frame: pd.DataFrame) -> ScanReport:
        """Check one batch as the in-memory fit would, and keep one row for each factor level it has."""
        if len(frame) == 0:
            return ScanReport(0, 0, None)
        frame = _unique_labels(frame)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            design = self._design(frame)
        if design is None:
            return ScanReport(len(frame), 0, None, tuple((w.category, str(w.message)) for w in caught))
        _refuse_stateful_transforms(design)
        kept = frame.loc[design.row_labels]
        factors = _factor_columns(kept, design)
        positions = {0}
        for name in factors:
            positions.update(np.flatnonzero(~kept[name].duplicated().to_numpy()).tolist())
        exemplars = kept.iloc[sorted(positions)]
        return ScanReport(len(frame), len(kept), exemplars, tuple((w.category, str(w.message)) for w in caught))

    def with_template(self, reports: list[ScanReport]) -> BatchPlan:
        """The plan with the template design: the design of one row per level of every factor met in the first pass."""
        frames = [report.exemplars for report in reports if report.exemplars is not None and len(report.exemplars)]
        if not frames:
            raise DataError("The data have no rows (or none left after dropping those with missing values).")
        rows = pd.concat(frames, ignore_index=True)
        # Each batch's factor columns may be categoricals with that batch's levels: concatenated
        # they become text, whose levels are sorted as the in-memory fit sorts them.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = self._design(rows)
            assert first is not None  # rows kept by the first pass
            keep = {0}
            for name in _factor_columns(rows, first):
                keep.update(np.flatnonzero(~rows[name].duplicated().to_numpy()).tolist())
            template = self._design(rows.iloc[sorted(keep)].reset_index(drop=True))
            assert template is not None
        return BatchPlan(self.formula, self.family, self.arguments, template)

    def block(self, frame: pd.DataFrame) -> Block | None:
        """The batch's rows as a block of the template's design (None for an empty batch)."""
        if len(frame) == 0:
            return None
        template = self.template
        assert template is not None, "with_template() first"
        frame = _unique_labels(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported once, by the first pass
            design = self._design(frame)
            if design is None:
                return None
            if design.column_names == template.column_names:
                X = design.X
            else:  # a level of some factor is missing from this batch: the template's columns
                X = model_matrix_for(template, frame.loc[design.row_labels])[0]
        return Block(X, design.y, design.weights, design.freq_weights, design.offset)


def _refuse_stateful_transforms(design: Design) -> None:
    stateful = sorted(design.spec.transform_state) if design.spec is not None else []
    if stateful:
        raise SpecificationError(
            f"The formula's term(s) {', '.join(stateful)} learn their transform from the data (centring, scaling or "
            "polynomial bases), which a fit reading the data in batches cannot do from one batch: compute those columns "
            "before fitting (e.g. with the full data's mean and standard deviation), or fit in memory."
        )


def _unique_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``, renumbered 0… when its labels repeat (rows are found again by label)."""
    return frame if frame.index.is_unique else frame.reset_index(drop=True)


def _factor_columns(frame: pd.DataFrame, design: Design) -> list[str]:
    """Columns read as factors: text, categorical and boolean ones, and those a categorical term names (``C(k)``)."""
    names = [str(c) for c in frame.columns]
    factors = {c for c in names if not pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(frame[c].dtype)}
    if design.spec is not None:
        for expr, (kind, _) in design.spec.encoder_state.items():
            if getattr(kind, "value", kind) == "categorical":
                factors.update(c for c in names if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w.])", str(expr)))
    return sorted(factors)


def reissue_warnings(reports: list[ScanReport]) -> None:
    """The first pass's warnings, once per kind: the first message, and how many batches gave more like it."""
    by_kind: dict[type, list[str]] = {}
    for report in reports:
        for category, message in report.warnings:
            by_kind.setdefault(category, []).append(message)
    for category, messages in by_kind.items():
        more = len(messages) - 1
        suffix = f" (and {more} more such warning(s) from other batches of the data)" if more else ""
        warnings.warn(messages[0] + suffix, category, stacklevel=3)
