"""The design written in place (:mod:`neuralglm.data.design_matrix`) equals formulaic's own matrix, exactly.

Random frames (float, int64, int32, bool, text, categorical with unused levels, ordered
categorical coded with R's contr.poly, missing values) and random formulas (bare columns,
``C()``, ``factor()``, interactions, ``*``, ``- 1``, ``I()``, ``log``, ``poly``, ``offset()``) go
through :func:`make_design` twice: as it runs, and with the block path switched off so that
formulaic's materialised frame is used. The two designs must agree bit for bit: matrix,
column names and order, response, weights, offset, rows kept, and the formulaic ``ModelSpec``
that predict and model files use (compared field by field and through its model-file JSON).
Each example also checks that the block path did build the matrix (no silent fallback) and
that the caller's frame is unchanged.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuralglm.data import design_matrix, formula
from neuralglm.data.design import make_design, model_matrix_for
from neuralglm.errors import DataError, DataWarning
from neuralglm.family.family import Gaussian, Poisson
from neuralglm.results.formula_state import encode_model_spec

N = 40
LEVELS = ["b", "a", "d", "c", "e"]


def _frame(seed: int, missing: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=N),
            "z": rng.uniform(0.5, 3.0, N),
            "k": rng.integers(-3, 4, N),
            "m": rng.integers(0, 3, N).astype(np.int32),
            "flag": rng.uniform(size=N) < 0.4,
            "g": rng.choice(LEVELS[:3], N),
            "h": pd.Categorical(rng.choice(LEVELS[:4], N), categories=["d", "c", "b", "a", "zz"]),
            "age": pd.Categorical(rng.choice(["young", "mid", "old"], N), categories=["young", "mid", "old"], ordered=True),
            "e": rng.uniform(0.5, 2.0, N),
            "w": rng.uniform(0.5, 2.0, N),
        },
        index=[f"r{i}" for i in range(N)],
    )
    frame["y"] = rng.poisson(2.0, N).astype(float)
    if missing:
        rows = rng.choice(N, 4, replace=False)
        frame.loc[frame.index[rows[:2]], "x"] = np.nan
        frame.loc[frame.index[rows[2]], "g"] = None
        frame.loc[frame.index[rows[3]], "z"] = np.inf
    return frame


TERMS = [
    "x", "z", "k", "m", "flag", "g", "h", "age", "C(g)", "factor(k)", "C(m)", "C(flag)",
    "x:g", "x:z", "g:h", "k:flag", "x:age", "C(g):z:flag", "x*g", "g*h", "I(x^2)", "log(z)", "np.sqrt(z)",
    "poly(x, 2)", "I(k * 2)", "C(g, contr.treatment('c'))", "C(g, contr.sum)",
]  # fmt: skip


def _formula(terms: list[str], intercept: bool, offset: bool) -> str:
    rhs = " + ".join(terms) + ("" if intercept else " - 1")
    return f"y ~ {rhs}" + (" + offset(np.log(e))" if offset else "")


def _without_block_path(monkeypatch):
    def unsupported(*args, **kwargs):
        raise design_matrix.Unsupported("switched off in this test")

    monkeypatch.setattr(formula, "block_model_matrix", unsupported)


def _spec_fields(spec) -> dict:
    return {
        "formula": str(spec.formula),
        "structure": repr(spec.structure),
        "encoder_state": repr(spec.encoder_state),
        "transform_state": repr(spec.transform_state),
        "column_names": tuple(spec.column_names),
        "rest": (spec.materializer, spec.materializer_params, spec.ensure_full_rank, spec.na_action, spec.output, spec.cluster_by),
    }


def _designs(formula_text: str, frame: pd.DataFrame, missing: str, **extras):
    """The design from the block path and from formulaic's frame (each with its warnings), and whether the block path ran."""
    built = []
    original = design_matrix.block_model_matrix

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        built.append(True)
        return result

    outcomes = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(formula, "block_model_matrix", spy)
        outcomes.append(_outcome(formula_text, frame, missing, extras))
        _without_block_path(patch)
        outcomes.append(_outcome(formula_text, frame, missing, extras))
    return outcomes, bool(built)


def _outcome(formula_text, frame, missing, extras):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            design = make_design(formula_text, frame, Poisson(), missing=missing, **extras)
        except DataError as error:
            return None, str(error), [str(w.message) for w in caught]
    return design, None, [str(w.message) for w in caught]


def assert_same_design(fast, slow) -> None:
    np.testing.assert_array_equal(fast.X, slow.X, strict=True)
    assert fast.X.flags.c_contiguous and fast.X.dtype == np.float64
    assert fast.column_names == slow.column_names
    for name in ("y", "weights", "offset", "row_labels"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), strict=True)
    assert (fast.freq_weights is None) == (slow.freq_weights is None)
    assert fast.has_intercept == slow.has_intercept
    assert _spec_fields(fast.spec) == _spec_fields(slow.spec)
    try:
        stored = encode_model_spec(slow.spec, lambda value, path: repr(value), "spec")
    except Exception:  # contrasts model files do not store (sum contrasts): compared above
        return
    assert encode_model_spec(fast.spec, lambda value, path: repr(value), "spec") == stored


@given(
    terms=st.lists(st.sampled_from(TERMS), min_size=1, max_size=4, unique=True),
    intercept=st.booleans(),
    offset=st.booleans(),
    seed=st.integers(0, 2**16),
    missing=st.booleans(),
)
def test_block_path_equals_formulaic_exactly(terms, intercept, offset, seed, missing):
    frame = _frame(seed, missing)
    before = frame.copy(deep=True)
    formula_text = _formula(terms, intercept, offset)
    policy = "drop" if missing else "raise"
    (fast, slow), built = _designs(formula_text, frame, policy, weights="w")
    pd.testing.assert_frame_equal(frame, before)
    assert fast[1:] == slow[1:]  # the same error (or none) and the same warnings
    if slow[0] is None:
        return
    assert built, "the block path fell back to formulaic's matrix"
    assert_same_design(fast[0], slow[0])


@pytest.mark.parametrize(
    "formula_text",
    [
        "y ~ x + z + k + m + flag",
        "y ~ C(g) * x + h + age",
        "y ~ 0 + g:h + flag:x",
        "y ~ bs(z, df=4) + x",
        "y ~ center(x) + scale(z) + C(k)",
        "y ~ age:g + I(m ** 3)",
    ],
)
def test_examples_equal_formulaic_and_predict_the_same(formula_text, monkeypatch):
    frame = _frame(3, missing=False)
    fast = make_design(formula_text, frame, Gaussian())
    new = frame.iloc[5:25]  # within the training range (splines refuse to extrapolate)
    fast_new = model_matrix_for(fast, new)
    _without_block_path(monkeypatch)
    slow = make_design(formula_text, frame, Gaussian())
    assert_same_design(fast, slow)
    for a, b in zip(fast_new, model_matrix_for(slow, new), strict=True):
        np.testing.assert_array_equal(a, b, strict=True)


def test_a_frame_from_one_2d_array_is_copied_by_blocks_exactly():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5000, 30))
    frame = pd.DataFrame(values, columns=[f"x{j}" for j in range(30)])
    frame["y"] = rng.poisson(1.0, 5000).astype(float)
    frame["k"] = rng.integers(0, 5, 5000)
    terms = " + ".join([*(f"x{j}" for j in range(12)), "k", *(f"x{j}" for j in range(12, 30))])
    design = make_design(f"y ~ {terms}", frame, Poisson())
    expected = np.column_stack([np.ones(5000), values[:, :12], frame["k"], values[:, 12:]])
    np.testing.assert_array_equal(design.X, expected, strict=True)
    assert not np.shares_memory(design.X, values)


@pytest.mark.parametrize(
    ("column", "value", "missing"),
    [("x", np.nan, "raise"), ("x", np.inf, "drop"), ("x", 1e150, "raise"), ("z", 0.0, "drop"), ("k", 10**15, "raise")],
)
def test_bad_values_give_the_same_error_or_rows_as_formulaic(column, value, missing):
    frame = _frame(5, missing=False)
    frame.loc["r3", column] = value
    (fast, slow), _ = _designs("y ~ x + log(z) + I(k ** 8)", frame, missing)
    assert fast[1:] == slow[1:]
    if slow[0] is not None:
        assert_same_design(fast[0], slow[0])


def test_a_huge_value_after_a_clean_pass_is_still_reported():
    frame = _frame(6, missing=False)
    frame.loc["r1", "x"] = 1e101  # finite, but beyond the design's limit
    with pytest.raises(DataError, match=r"Column 'x' of the design matrix has 1 row \(r1\)"):
        make_design("y ~ x", frame, Poisson())


def test_dropped_rows_are_reported_once():
    frame = _frame(7, missing=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        design = make_design("y ~ x + g + z", frame, Poisson(), missing="drop")
    assert [issubclass(w.category, DataWarning) for w in caught] == [True]
    assert design.n_obs == N - 4
