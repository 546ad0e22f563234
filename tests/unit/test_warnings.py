"""Every warning of the library points at the user's line, however deep in the library it is raised.

Each case calls the public API from this file and checks that the warning's ``filename`` is
this file and its ``lineno`` the line of the call: a fixed ``stacklevel`` pointed at library
code (``network.py``, ``api.py``) as soon as a call frame was added between the user and the
warning; :func:`neuralglm.errors.warn` walks to the first frame outside the package instead.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.errors import ConvergenceWarning, DataWarning, SeparationWarning, warn
from neuralglm.family.null_model import intercept_only
from neuralglm.family.registry import get_family, get_link


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame({"x1": rng.standard_normal(n), "x2": rng.standard_normal(n), "e": rng.uniform(0.5, 2.0, n)})
    frame["y"] = rng.poisson(frame["e"] * np.exp(0.3 + 0.5 * frame["x1"] - 0.4 * frame["x2"])).astype(float)
    return frame


def caught_here(record, category: type[Warning], line: int) -> None:
    """The warnings of ``category`` in ``record`` all point at this file, at ``line``."""
    found = [w for w in record if issubclass(w.category, category)]
    assert found, f"no {category.__name__}"
    assert [(w.filename, w.lineno) for w in found] == [(__file__, line)] * len(found), [str(w.message) for w in found]


def next_line() -> int:
    """The number of the line after the caller's."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


def test_irls_iteration_limit(df):
    with pytest.warns(ConvergenceWarning, match="IRLS did not converge") as record:
        line = next_line()
        ng.glm("y ~ x1 + x2", df, family="poisson", max_iter=1)
    caught_here(record, ConvergenceWarning, line)


def test_irls_iteration_limit_from_arrays(df):
    X = np.column_stack([np.ones(len(df)), df[["x1", "x2"]].to_numpy()])
    with pytest.warns(ConvergenceWarning, match="IRLS did not converge") as record:
        line = next_line()
        ng.glm_fit(X, df["y"].to_numpy(), family="poisson", max_iter=1)
    caught_here(record, ConvergenceWarning, line)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_network_iteration_limit(df, solver):
    with pytest.warns(ConvergenceWarning, match="iteration limit") as record:
        line = next_line()
        ng.fit("y ~ x1 + x2", df, family="poisson", hidden=(2,), solver=solver, epochs=1, seed=0)
    caught_here(record, ConvergenceWarning, line)


def test_estimator_iteration_limit(df):
    estimator = ng.NeuralGLMRegressor(family="poisson", hidden=(2,), solver="lbfgs", epochs=1)
    with pytest.warns(ConvergenceWarning, match="iteration limit") as record:
        line = next_line()
        estimator.fit(df[["x1", "x2"]], df["y"])
    caught_here(record, ConvergenceWarning, line)


def test_separation():
    data = pd.DataFrame({"x": np.linspace(-1.0, 1.0, 40)})
    data["y"] = (data["x"] > 0).astype(float)
    with pytest.warns(SeparationWarning) as record:
        line = next_line()
        ng.glm("y ~ x", data, family="binomial")
    caught_here(record, SeparationWarning, line)


def test_non_integer_counts(df):
    data = df.assign(y=df["y"] + 0.5)
    with pytest.warns(DataWarning, match="expects whole counts") as record:
        line = next_line()
        ng.glm("y ~ x1 + x2", data, family="poisson")
    caught_here(record, DataWarning, line)


def test_dropped_rows(df):
    data = df.copy()
    data.loc[[3, 8], "x1"] = np.nan
    with pytest.warns(DataWarning, match="Dropped 2 of") as record:
        line = next_line()
        ng.glm("y ~ x1 + x2", data, family="poisson", missing="drop")
    caught_here(record, DataWarning, line)


def test_dropped_rows_where_a_term_is_infinite(df):
    data = df.assign(x1=df["x1"].abs())
    data.loc[5, "x1"] = 0.0
    with pytest.warns(DataWarning, match="formula's terms are missing or infinite") as record:
        line = next_line()
        ng.glm("y ~ np.log(x1) + x2", data, family="poisson", missing="drop")
    caught_here(record, DataWarning, line)


def test_text_of_mostly_numbers(df):
    data = df.assign(x1=df["x1"].round(3).astype(str))
    data.loc[4, "x1"] = "abc"
    with pytest.warns(DataWarning, match="mostly numbers") as record:
        line = next_line()
        ng.glm("y ~ x1 + x2", data, family="poisson")
    caught_here(record, DataWarning, line)


def test_null_model_not_converged(df):
    family = get_family("poisson")
    with pytest.warns(ConvergenceWarning, match="null deviance") as record:
        line = next_line()
        intercept_only(df["y"].to_numpy(), np.ones(len(df)), np.log(df["e"].to_numpy()), family, get_link(None, family), max_iter=1)
    caught_here(record, ConvergenceWarning, line)


def test_the_helper_skips_every_library_frame_and_no_other():
    lines = []

    def user_helper():  # a frame of the user's own code between the call and the library
        lines.append(next_line())
        warn("A note.", DataWarning)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        user_helper()
    # warn is called from this module: its caller is the first frame outside the library.
    assert [(w.filename, w.lineno) for w in record] == [(__file__, lines[0])]
