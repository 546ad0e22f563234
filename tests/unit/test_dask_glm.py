"""GLMs fitted to a Dask DataFrame on a two-process local cluster equal the in-memory fit (issue 11 §3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.results.streamed import StreamedFitResult

dd = pytest.importorskip("dask.dataframe", reason="Dask frames need the 'dask' extra: pip install neuralglm[dask]")
distributed = pytest.importorskip("distributed", reason="the Dask tests need dask.distributed: pip install neuralglm[dask]")

RTOL = 1e-10


def _warm_up() -> None:
    df = _frame(50, seed=1)
    ng.glm("claims ~ x", df, family="poisson", exposure="expo")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    # Part of starting the cluster: each worker process imports the library and JAX, and compiles
    # the row kernels once (a long-lived cluster pays this once, not per fit).
    client.run(_warm_up)
    yield client
    client.close()
    cluster.close()


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "band": rng.integers(1, 4, n),
            "expo": rng.uniform(0.5, 2.0, n),
        }
    )
    df.loc[: n // 5, "region"] = "south"  # the first partition lacks levels
    df["claims"] = rng.poisson(df["expo"] * np.exp(0.2 + 0.3 * df["x"] - 0.1 * df["band"] + 0.2 * (df["region"] == "west")))
    return df


def test_poisson_with_exposure_and_factors_on_a_local_cluster_equals_in_memory(client):
    df = _frame()
    ddf = dd.from_pandas(df, npartitions=4)
    formula = "claims ~ x + region + C(band)"
    streamed = ng.glm(formula, ddf, family="poisson", exposure="expo")
    in_memory = ng.glm(formula, df, family="poisson", exposure="expo")
    assert isinstance(streamed, StreamedFitResult)
    assert list(streamed.coef.index) == list(in_memory.coef.index)
    np.testing.assert_allclose(streamed.coef, in_memory.coef, rtol=RTOL)
    np.testing.assert_allclose(streamed.std_errors, in_memory.std_errors, rtol=RTOL)
    for name in ("deviance", "null_deviance", "loglik", "aic", "bic", "pearson_chi2", "n_obs"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(in_memory, name), rtol=RTOL, err_msg=name)
    assert streamed.info.n_iter == in_memory.info.n_iter
    assert streamed.design.X.shape == (0, len(streamed.coef))  # no rows were brought to the client
    np.testing.assert_allclose(streamed.predict(df.head(30)), in_memory.predict(df.head(30)), rtol=RTOL)
