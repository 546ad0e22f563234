"""ng.datasets.simulate_motor: freMTPL2freq's shape, the returned truth, reproducibility and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import neuralglm as ng
from neuralglm.datasets import motor
from neuralglm.errors import SpecificationError


@pytest.fixture(scope="module")
def df():
    return ng.datasets.simulate_motor(100_000, seed=11)


def test_claim_frequency_is_about_ten_percent_per_policy_year(df):
    frequency = df["ClaimNb"].sum() / df["Exposure"].sum()
    # Poisson: the SE of the total is about √(total claims) ≈ 75 claims on ≈ 5.5k, i.e. 1.4 % relative.
    assert abs(frequency - 0.100) < 0.005
    # And the truth is what the counts were drawn from: the exposure-weighted mean of the truth.
    expected = np.sum(df["Exposure"] * df["true_frequency"]) / df["Exposure"].sum()
    assert abs(frequency - expected) < 4 * np.sqrt(df["ClaimNb"].sum()) / df["Exposure"].sum()


def test_columns_kinds_and_ranges_are_freMTPL2s(df):
    assert list(df.columns) == [
        "IDpol", "ClaimNb", "Exposure", "Area", "VehPower", "VehAge", "DrivAge", "BonusMalus",
        "VehBrand", "VehGas", "Density", "Region", "true_frequency",
    ]  # fmt: skip
    assert df["Exposure"].between(1 / 365, 1.0).all() and df["Exposure"].min() > 0
    assert 0.25 < (df["Exposure"] == 1.0).mean() < 0.35 and (df["Exposure"] < 0.25).mean() > 0.2
    assert df["DrivAge"].between(18, 90).all() and df["DrivAge"].min() == 18
    assert df["BonusMalus"].between(50, 230).all() and (df["BonusMalus"] == 50).mean() > 0.4
    assert df["VehPower"].between(4, 15).all() and df["VehAge"].between(0, 30).all()
    assert df["Region"].nunique() == 22 and df["VehBrand"].nunique() == 11
    assert set(df["Area"]) == set("ABCDEF") and set(df["VehGas"]) == {"Diesel", "Regular"}
    # Density is log-normal(6, 2) clipped to [1, 27000]: robust location and scale of its logarithm.
    log_density = np.log(df["Density"])
    quartiles = np.quantile(log_density, [0.25, 0.5, 0.75])
    assert abs(quartiles[1] - 6.0) < 0.05 and abs((quartiles[2] - quartiles[0]) / (2 * stats.norm.ppf(0.75)) - 2.0) < 0.05


def test_the_truth_has_a_young_driver_excess_a_u_shape_and_an_interaction():
    frame = ng.datasets.simulate_motor(10, seed=0).iloc[[0] * 5].reset_index(drop=True)
    frame["DrivAge"] = [18, 30, 50, 70, 90]
    frame["VehPower"] = 6
    base = motor.true_log_frequency(frame)
    assert base[0] > base[1] + 0.5 and base[1] > base[2] and base[3] > base[2] and base[4] > base[3]
    # Age × power: a powerful car adds more for an 18-year-old than for a 50-year-old.
    powerful = motor.true_log_frequency(frame.assign(VehPower=12))
    assert (powerful - base)[0] > (powerful - base)[2] + 0.2


def test_counts_are_poisson_around_the_truth(df):
    mean = df["Exposure"] * df["true_frequency"]
    # Pearson χ² / n of the truth is 1 within its sampling error for Poisson counts.
    chi2 = np.mean((df["ClaimNb"] - mean) ** 2 / mean)
    assert abs(chi2 - 1.0) < 0.05


def test_same_seed_same_table_and_truth_independent_of_the_seed():
    a, b = ng.datasets.simulate_motor(500, seed=3), ng.datasets.simulate_motor(500, seed=3)
    assert a.equals(b)
    c = ng.datasets.simulate_motor(500, seed=4)
    assert not a["ClaimNb"].equals(c["ClaimNb"])
    np.testing.assert_allclose(np.log(c["true_frequency"]), motor.true_log_frequency(c), rtol=0, atol=1e-12)


def test_a_poisson_glm_fits_it_with_exposure():
    small = ng.datasets.simulate_motor(3_000, seed=5)
    fit = ng.glm("ClaimNb ~ DrivAge + BonusMalus + VehGas + C(Area)", small, family="poisson", exposure="Exposure")
    assert fit.coef["BonusMalus"] > 0


@pytest.mark.parametrize(("n", "seed"), [(0, 0), (-5, 0), (2.5, 0), (True, 0), (10, -1), (10, "a")])
def test_bad_arguments_are_refused_by_name(n, seed):
    name = "'n'" if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1) else "'seed'"
    with pytest.raises(SpecificationError, match=name):
        ng.datasets.simulate_motor(n, seed)
