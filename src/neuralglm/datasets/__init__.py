"""Small public datasets shipped with neuralglm (sources and licences in SOURCES.md)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from neuralglm.datasets.motor import simulate_motor

__all__ = ["load_insurance", "simulate_motor"]


def load_insurance() -> pd.DataFrame:
    """Car insurance claims of Baxter, Coutts & Ross (1980): 64 rows, a classic Poisson GLM.

    Columns: ``district`` (1–4), ``group`` (engine size), ``age`` (age band), ``holders``
    (policyholders: the exposure) and ``claims`` (count). ``group`` and ``age`` are ordered
    categoricals with the first band as the reference level.

    Examples
    --------
    >>> df = load_insurance()
    >>> df.shape
    (64, 5)
    >>> int(df["claims"].sum())
    3151
    """
    with resources.files(__package__).joinpath("insurance.csv").open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle)
    frame["group"] = pd.Categorical(frame["group"], categories=["<1l", "1-1.5l", "1.5-2l", ">2l"], ordered=True)
    frame["age"] = pd.Categorical(frame["age"], categories=["<25", "25-29", "30-35", ">35"], ordered=True)
    return frame
