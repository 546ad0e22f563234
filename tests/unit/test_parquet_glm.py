"""GLMs fitted to Parquet data read in row batches equal the in-memory fit (issue 11 §2).

The data are generated, written over several files with small row groups (so that batches
miss factor levels), and fitted both ways; the streamed fit must give the in-memory fit's
coefficients, standard errors and statistics to 1e-10 relative.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.errors import DataError, DataWarning, DomainError, RankDeficientError, SpecificationError
from neuralglm.results.streamed import StreamedFitResult

pa = pytest.importorskip("pyarrow", reason="Parquet data need pyarrow")
ds = pytest.importorskip("pyarrow.dataset", reason="Parquet data need pyarrow")

RTOL = 1e-10
N_ROWS = 2400
CUTS = (0, 500, 1100, 1800, N_ROWS)  # four files of unequal size


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=N_ROWS),
            "region": rng.choice(["north", "south", "east", "west"], N_ROWS),
            "band": rng.integers(1, 4, N_ROWS),
            "expo": rng.uniform(0.5, 2.0, N_ROWS),
            "trials": rng.integers(1, 6, N_ROWS).astype(float),
            "w": rng.uniform(0.5, 2.0, N_ROWS),
            "reps": rng.integers(1, 4, N_ROWS).astype(float),
            "base": rng.normal(scale=0.3, size=N_ROWS),
        }
    )
    # The first file has only two regions: its batches lack levels the others have.
    df.loc[: CUTS[1] - 1, "region"] = rng.choice(["south", "west"], CUTS[1])
    eta = 0.2 + 0.3 * df["x"] + 0.2 * (df["region"] == "north") - 0.1 * df["band"]
    df["claims"] = rng.poisson(df["expo"] * np.exp(eta)).astype(float)
    df["successes"] = rng.binomial(df["trials"].astype(int), 1 / (1 + np.exp(-eta))).astype(float)
    df["rate"] = df["successes"] / df["trials"]
    df["amount"] = 1.0 + 0.5 * df["x"] + df["base"] + rng.normal(size=N_ROWS)
    return df


def _write(df: pd.DataFrame, folder, row_group_size: int = 250):
    folder.mkdir()
    for i, (start, stop) in enumerate(itertools.pairwise(CUTS)):
        df.iloc[start:stop].to_parquet(folder / f"part-{i}.parquet", row_group_size=row_group_size)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    df = _frame()
    return df, _write(df, tmp_path_factory.mktemp("parquet") / "claims")


def _assert_same_fit(streamed, in_memory) -> None:
    assert isinstance(streamed, StreamedFitResult)
    assert list(streamed.coef.index) == list(in_memory.coef.index)
    np.testing.assert_allclose(streamed.coef, in_memory.coef, rtol=RTOL)
    np.testing.assert_allclose(streamed.std_errors, in_memory.std_errors, rtol=RTOL)
    for name in ("deviance", "null_deviance", "loglik", "aic", "bic", "pearson_chi2", "dispersion", "n_obs", "df_resid"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(in_memory, name), rtol=RTOL, err_msg=name)
    assert streamed.info.converged and streamed.info.status == in_memory.info.status
    assert streamed.info.n_iter == in_memory.info.n_iter


def test_poisson_with_exposure_and_factors_equals_in_memory(data):
    df, folder = data
    formula = "claims ~ x + region + C(band)"
    streamed = ng.glm(formula, folder, family="poisson", exposure="expo")
    in_memory = ng.glm(formula, df, family="poisson", exposure="expo")
    _assert_same_fit(streamed, in_memory)
    assert "region[T.north]" in streamed.coef.index  # a level the first file does not have
    assert "Offset: log(expo)" in str(streamed.summary())
    # The same result's methods: intervals, predictions on new data, model files.
    pd.testing.assert_frame_equal(streamed.conf_int(), in_memory.conf_int(), rtol=RTOL)
    np.testing.assert_allclose(streamed.predict(df.head(50)), in_memory.predict(df.head(50)), rtol=RTOL)


def test_binomial_with_weights_and_frequency_weights_equals_in_memory(data, tmp_path):
    df, folder = data
    formula = "rate ~ x + region"
    streamed = ng.glm(formula, folder, family="binomial", weights="trials", freq_weights="reps")
    in_memory = ng.glm(formula, df, family="binomial", weights="trials", freq_weights="reps")
    _assert_same_fit(streamed, in_memory)
    # cbind(successes, failures) reads the same model.
    df2 = df.assign(failures=df["trials"] - df["successes"])
    folder2 = _write(df2, tmp_path / "cbind", row_group_size=400)
    cbind = ng.glm("cbind(successes, failures) ~ x + region", ds.dataset(str(folder2), format="parquet"), family="binomial")
    _assert_same_fit(cbind, ng.glm("cbind(successes, failures) ~ x + region", df2, family="binomial"))


def test_gaussian_with_offset_column_and_estimated_dispersion(data):
    """Closed form; the null deviance with an offset needs the intercept-only fit's passes; a pyarrow Dataset as data."""
    df, folder = data
    dataset = ds.dataset(str(folder), format="parquet")
    streamed = ng.glm("amount ~ x + C(band)", dataset, offset="base", weights="w")
    in_memory = ng.glm("amount ~ x + C(band)", df, offset="base", weights="w")
    _assert_same_fit(streamed, in_memory)
    assert streamed.dispersion_method == "pearson"


def test_gamma_log_with_offset_needs_null_model_iterations(data):
    df, folder = data
    df_gamma = df.assign(cost=np.exp(0.1 * df["x"] + df["base"]) * (1.0 + df["expo"]))
    folder_gamma = folder.parent / "gamma"
    if not folder_gamma.exists():
        _write(df_gamma, folder_gamma)
    streamed = ng.glm("cost ~ x + region", folder_gamma, family="gamma", link="log", offset="base")
    _assert_same_fit(streamed, ng.glm("cost ~ x + region", df_gamma, family="gamma", link="log", offset="base"))


def test_missing_values_dropped_as_in_memory_and_reported_with_row_numbers(tmp_path):
    df = _frame(1)
    df.loc[[3, 900, 2000], "x"] = np.nan
    df.loc[1500, "expo"] = np.inf
    folder = _write(df, tmp_path / "missing")
    # The first batch with a problem stops the fit, naming its rows by number in the whole data.
    with pytest.raises(DataError, match=r"'x' has 1 row \(3\) missing or infinite"):
        ng.glm("claims ~ x + region", folder, family="poisson", exposure="expo")
    # Without row 3, the row that was 900 is row 899 of the files (rows are numbered 0, 1, … in file order).
    with pytest.raises(DataError, match=r"'x' has 1 row \(899\) missing"):
        ng.glm("claims ~ x + region", _write(df.drop(index=3).reset_index(drop=True), tmp_path / "later"), family="poisson")
    with pytest.warns(DataWarning, match="Dropped"):
        streamed = ng.glm("claims ~ x + region", folder, family="poisson", exposure="expo", missing="drop")
    with pytest.warns(DataWarning, match="Dropped"):
        in_memory = ng.glm("claims ~ x + region", df, family="poisson", exposure="expo", missing="drop")
    _assert_same_fit(streamed, in_memory)
    assert streamed.n_obs == N_ROWS - 4


def test_a_batch_with_every_row_dropped_is_an_empty_batch(tmp_path):
    df = _frame(3)
    df.loc[CUTS[1] : CUTS[2] - 1, "x"] = np.nan  # the whole second file
    folder = _write(df, tmp_path / "dropped")
    with pytest.warns(DataWarning, match="Dropped"):
        streamed = ng.glm("claims ~ x + region", folder, family="poisson", exposure="expo", missing="drop")
    with pytest.warns(DataWarning, match="Dropped"):
        in_memory = ng.glm("claims ~ x + region", df, family="poisson", exposure="expo", missing="drop")
    _assert_same_fit(streamed, in_memory)


def test_domain_error_names_the_global_row(tmp_path):
    df = _frame(2)
    df.loc[1234, "claims"] = -1.0
    folder = _write(df, tmp_path / "domain")
    with pytest.raises(DomainError, match="1234"):
        ng.glm("claims ~ x", folder, family="poisson")


def test_predictions_written_to_parquet_and_what_needs_the_rows(data, tmp_path):
    df, folder = data
    fit = ng.glm("claims ~ x + region", folder, family="poisson", exposure="expo")
    in_memory = ng.glm("claims ~ x + region", df, family="poisson", exposure="expo")
    out = tmp_path / "predictions.parquet"
    assert fit.predict(folder, path=out, keep=["region"]) is None
    written = pd.read_parquet(out)
    assert list(written.columns) == ["region", "response"] and len(written) == N_ROWS
    np.testing.assert_allclose(written["response"], in_memory.fitted_mu, rtol=RTOL)
    assert (written["region"].to_numpy() == df["region"].to_numpy()).all()
    for needs_rows in (lambda: fit.fitted_mu, lambda: fit.residuals(), lambda: fit.predict(), lambda: fit.conf_int(method="profile")):
        with pytest.raises(DataError, match="training rows in memory"):
            needs_rows()
    buffer = tmp_path / "model.npz"
    fit.save(buffer)
    np.testing.assert_allclose(ng.load(buffer).predict(df.head(20)), in_memory.predict(df.head(20)), rtol=RTOL)


def test_refusals_are_clear(data, tmp_path):
    df, folder = data
    with pytest.raises(SpecificationError, match="'exposure' parameter of glm must be the name of a column"):
        ng.glm("claims ~ x", folder, family="poisson", exposure=df["expo"].to_numpy())
    with pytest.raises(SpecificationError, match="learn their transform from the data"):
        ng.glm("claims ~ scale(x)", folder, family="poisson")
    with pytest.raises(SpecificationError, match="cov_type='expected'"):
        ng.glm("claims ~ x", folder, family="poisson", cov_type="sandwich")
    with pytest.raises(DataError, match="do not exist"):
        ng.glm("claims ~ x", tmp_path / "nothing.parquet", family="poisson")
    aliased = df.assign(x2=2.0 * df["x"])
    with pytest.raises(RankDeficientError, match="'x2'"):
        ng.glm("claims ~ x + x2", _write(aliased, tmp_path / "aliased"), family="poisson")


def test_partitioned_dataset_with_the_factor_in_folder_names(data, tmp_path):
    """Hive partitioning: 'region' is in the folder names, not the files (the scanner path of the reader)."""
    df, _ = data
    import pyarrow.parquet as pq

    pq.write_to_dataset(pa.Table.from_pandas(df, preserve_index=False), str(tmp_path / "hive"), partition_cols=["region"])
    dataset = ds.dataset(str(tmp_path / "hive"), format="parquet", partitioning="hive")
    streamed = ng.glm("claims ~ x + region", dataset, family="poisson", exposure="expo")
    # The rows come partition by partition; the fit is the same up to the order of additions.
    ordered = pd.concat([df[df["region"] == r] for r in sorted(df["region"].unique())])
    _assert_same_fit(streamed, ng.glm("claims ~ x + region", ordered, family="poisson", exposure="expo"))
