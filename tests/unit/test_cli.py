"""The command line end to end on temporary CSV files: exit codes, outputs, files written."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.cli import main


@pytest.fixture(scope="module")
def claims_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "claims.csv"
    ng.datasets.load_insurance().to_csv(path, index=False)
    return path


def test_fit_summary_predict_round_trip(claims_csv, tmp_path, capsys):
    model = tmp_path / "model.npz"
    code = main(
        [
            "fit",
            str(claims_csv),
            "--formula",
            "claims ~ C(district) + group + age",
            "--family",
            "poisson",
            "--exposure",
            "holders",
            "--out",
            str(model),
        ]
    )
    assert code == 0 and model.exists()
    fitted = capsys.readouterr().out
    assert "poisson(link=log)" in fitted and f"Saved to {model}" in fitted

    assert main(["summary", str(model)]) == 0
    assert "Offset: log(holders)" in capsys.readouterr().out

    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(claims_csv), "--out", str(predictions)]) == 0
    written = pd.read_csv(predictions)
    data = ng.datasets.load_insurance()
    direct = ng.glm("claims ~ C(district) + group + age", data, family="poisson", exposure="holders").predict(data)
    np.testing.assert_allclose(written["predicted_response"], direct, rtol=1e-12)


def test_fit_network_and_plot(claims_csv, tmp_path, capsys):
    model = tmp_path / "net.npz"
    args = ["fit", str(claims_csv), "--formula", "claims ~ C(district) + group + age", "--family", "poisson", "--exposure", "holders"]
    assert main([*args, "--hidden", "2", "--activation", "tanh", "--l2", "0.1", "--epochs", "3000", "--out", str(model)]) == 0
    assert "Neural" in capsys.readouterr().out or model.exists()
    plots = tmp_path / "plots"
    assert main(["plot", str(model), str(claims_csv), "--out", str(plots)]) == 0
    assert {p.name for p in plots.iterdir()} >= {"diagnostics.png", "observed_vs_fitted.png", "calibration.png", "training.png"}


def test_compare_prints_one_table(claims_csv, capsys):
    code = main(
        [
            "compare",
            str(claims_csv),
            "--formula",
            "claims ~ C(district) + group + age",
            "--family",
            "poisson",
            "--exposure",
            "holders",
            "--hidden",
            "2",
            "--activation",
            "tanh",
            "--l2",
            "0.1",
            "--epochs",
            "3000",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    for column in ("held-out deviance", "AIC", "held-out % deviance explained"):
        assert column in out
    assert "GLM" in out and "network (2,)" in out


def test_data_error_is_one_line_with_exit_1(claims_csv, tmp_path, capsys):
    code = main(["fit", str(claims_csv), "--formula", "claims ~ agee", "--family", "poisson", "--out", str(tmp_path / "m.npz")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("neuralglm: error: Unknown column 'agee'") and "did you mean 'age'" in err
    assert err.count("\n") == 1


def test_usage_error_exits_2(capsys):
    assert main(["fit"]) == 2
    assert main(["no-such-command"]) == 2
    assert main(["fit", "x.csv", "--formula", "y ~ x", "--hidden", "a,b", "--out", "m.npz"]) == 2


def test_missing_file_is_a_data_error(capsys):
    assert main(["predict", "missing-model.npz", "missing.csv", "--out", "p.csv"]) == 1


def test_help_is_fast_and_does_not_import_jax():
    """`neuralglm --help` must answer at once: no JAX, pandas or matplotlib import."""
    probe = "import sys; from neuralglm.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('jax', 'pandas', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


def test_demo_quick_runs_and_writes_plots(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for heading in ("1. Linear truth", "2. Nonlinear truth", "3. Binary truth", "4. Hidden layers", "5. Real data"):
        assert heading in out
    assert {p.name for p in tmp_path.iterdir()} >= {"nonlinear_fit.png", "decision_surfaces.png"}


def test_public_api_lists_every_lazy_export():
    optional = {"NeuralGLMRegressor", "NeuralGLMClassifier"}  # scikit-learn is an optional dependency
    assert sorted(set(ng.__all__) - {"__version__"}) == sorted(set(ng._EXPORTS) - optional)
    for name in ng.__all__:
        assert getattr(ng, name) is not None


def test_fit_is_the_function_even_after_the_solver_subpackage_loads():
    import neuralglm.fit.irls  # noqa: F401  (loads the subpackage that shares the name)

    assert callable(ng.fit) and ng.fit.__module__ == "neuralglm.network"
