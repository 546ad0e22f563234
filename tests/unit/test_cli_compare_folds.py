"""``neuralglm compare --folds K``: the table is ``ng.cross_validate`` of the two models the command fits."""

from __future__ import annotations

import neuralglm as ng
from neuralglm.cli import main

CLAIMS = "claims ~ C(district) + group + age"
NETWORK_FLAGS = ["--hidden", "2", "--activation", "tanh", "--l2", "0.1", "--solver", "lbfgs", "--epochs", "5000"]


def test_compare_with_folds_prints_the_cross_validated_table(tmp_path, capsys):
    data = ng.datasets.load_insurance()
    path = tmp_path / "claims.csv"
    data.to_csv(path, index=False)
    args = ["compare", str(path), "--formula", CLAIMS, "--family", "poisson", "--exposure", "holders", *NETWORK_FLAGS]
    assert main([*args, "--folds", "4", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "64 rows, 4-fold cross-validation (seed 1)" in out
    for column in ("parameters", "AIC", "CV deviance per obs", "CV SE", "CV % deviance explained", "CV difference", "CV SE difference"):
        assert column in out
    glm_row = next(line for line in out.splitlines() if line.startswith("GLM")).split()
    # The GLM's scores do not depend on the other model: the same folds give them directly.
    glm = ng.glm(CLAIMS, ng.datasets.load_insurance(), family="poisson", exposure="holders")
    expected = ng.cross_validate({"GLM": glm}, data, folds=4, seed=1).loc["GLM"]
    assert glm_row[1] == "10"
    assert glm_row[4:7] == [f"{expected['deviance per obs']:,.4g}", f"{expected['SE']:,.4g}", f"{expected['% deviance explained']:,.4g}"]
    assert next(line for line in out.splitlines() if line.startswith("network (2,)"))


def test_folds_flag_usage_errors(capsys):
    assert main(["compare", "x.csv", "--formula", "y ~ x", "--folds", "1"]) == 2
    assert "--folds must be an integer ≥ 2; got '1'" in capsys.readouterr().err
    assert main(["compare", "x.csv", "--formula", "y ~ x", "--folds", "5", "--test-fraction", "0.2"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
