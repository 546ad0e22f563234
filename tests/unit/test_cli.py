"""The command line end to end on temporary CSV files: exit codes, outputs, files written."""

from __future__ import annotations

import os
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
    assert (
        main([*args, "--hidden", "2", "--activation", "tanh", "--l2", "0.1", "--epochs", "3000", "--include-data", "--out", str(model)])
        == 0
    )
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
    # Parameter counts are integers: the GLM has 1 + 3 (district) + 3 (group) + 3 (age) = 10 coefficients.
    glm_row = next(line for line in out.splitlines() if line.startswith("GLM"))
    assert glm_row.split()[1] == "10"
    assert ".000" not in next(line for line in out.splitlines() if line.startswith("network")).split()[2]


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
    capsys.readouterr()
    # Values the parameter table refuses are usage errors, told in the table's sentence.
    for flag, value, message in [
        ("--l2", "-1", "The 'l2' parameter of fit must be a float in the range [0.0, inf). Got -1.0 instead."),
        ("--seed", str(2**32), "The 'seed' parameter of fit must be an int in the range [0, 4294967295]."),
        ("--hidden", "4,0", "The 'hidden' parameter of fit must be an int in [1, 1048576]"),
        ("--dispersion", "mle", "The 'dispersion' parameter of fit must be None, a str among {'pearson'} or a float"),
        ("--solver", "newton", "invalid choice: 'newton'"),
    ]:
        assert main(["fit", "x.csv", "--formula", "y ~ x", flag, value, "--out", "m.npz"]) == 2
        assert message in capsys.readouterr().err
    assert main(["compare", "x.csv", "--formula", "y ~ x", "--test-fraction", "1.5"]) == 2
    assert "--test-fraction must be a number in (0, 1)" in capsys.readouterr().err


def test_flags_from_the_table_reach_ng_fit(claims_csv, tmp_path, monkeypatch):
    seen = {}

    def spy(formula, data, **kwargs):
        seen.update(kwargs)
        raise ng.errors.DataError("stop here")

    monkeypatch.setattr(ng, "fit", spy)
    flags = ["--hidden", "3", "--no-penalize-output", "--momentum", "0.5", "--patience", "4", "--tol", "1e-3", "--epochs", "none"]
    flags += ["--dispersion", "pearson", "--cov-type", "sandwich", "--dtype", "float64", "--activation", "tanh", "--verbose"]
    assert main(["fit", str(claims_csv), "--formula", "claims ~ age", *flags, "--out", str(tmp_path / "m.npz")]) == 1
    expected = {"hidden": (3,), "penalize_output": False, "momentum": 0.5, "patience": 4, "tol": 1e-3, "epochs": None}
    expected |= {"dispersion": "pearson", "cov_type": "sandwich", "dtype": "float64", "activation": "tanh", "verbose": True}
    assert {name: seen[name] for name in expected} == expected
    assert seen["learning_rate"] == 1e-3 and seen["l2"] == "auto"  # untouched flags keep the table's defaults


def test_debug_is_accepted_before_and_after_the_command(capsys):
    assert main(["summary", "missing-model.npz"]) == 1
    for argv in (
        ["--debug", "summary", "missing-model.npz"],
        ["summary", "--debug", "missing-model.npz"],
        ["summary", "missing-model.npz", "--debug"],
    ):
        with pytest.raises(ng.errors.ModelFileError, match="No such model file"):
            main(argv)


def test_model_files_hold_the_data_only_when_asked(claims_csv, tmp_path, capsys):
    args = ["fit", str(claims_csv), "--formula", "claims ~ C(district) + group + age", "--family", "poisson", "--exposure", "holders"]
    lean, full = tmp_path / "lean.npz", tmp_path / "full.npz"
    assert main([*args, "--out", str(lean)]) == 0
    assert "without the training data" in capsys.readouterr().out
    assert main([*args, "--include-data", "--out", str(full)]) == 0
    assert lean.stat().st_size < full.stat().st_size
    data = ng.datasets.load_insurance()
    np.testing.assert_allclose(ng.load(lean).predict(data), ng.load(full).predict(data), rtol=1e-12)
    assert len(ng.load(full).residuals()) == len(data)
    with pytest.raises(ng.errors.ModelFileError, match="training data"):
        ng.load(lean).residuals()
    plots = tmp_path / "plots"
    assert main(["plot", str(lean), str(claims_csv), "--out", str(plots)]) == 0
    out = capsys.readouterr().out
    # DATA are the training rows: every plot is drawn, the diagnostics from the rows given again.
    assert "diagnostics.png" in out and "calibration.png" in out and "Skipped" not in out
    new_rows = tmp_path / "other.csv"
    data.assign(claims=data["claims"] + 1).to_csv(new_rows, index=False)
    assert main(["plot", str(lean), str(new_rows), "--out", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "calibration.png" in out and "Skipped diagnostics" in out and "training rows only" in out


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


BAD_FILES = {
    "empty CSV": ("empty.csv", b"", "is empty"),
    "ragged CSV": ("ragged.csv", b"y,x\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
    "binary CSV": ("binary.csv", bytes(range(256)) * 4, "as a CSV file"),
    "corrupt Parquet": ("broken.parquet", b"PAR1" + bytes(range(200)), "as a Parquet file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_unreadable_data_files_are_one_line_errors(case, tmp_path, capsys):
    name, content, message = BAD_FILES[case]
    path = _write(tmp_path / name, content)
    assert main(["fit", str(path), "--formula", "y ~ x", "--out", str(tmp_path / "m.npz")]) == 1
    _assert_one_line_error(capsys.readouterr().err, message)
    assert main(["predict", "missing-model.npz", str(path), "--out", str(tmp_path / "p.csv")]) == 1  # model checked first
    capsys.readouterr()


def test_unwritable_out_paths_are_refused_before_fitting(claims_csv, tmp_path, capsys, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before checking --out")

    monkeypatch.setattr(ng, "fit", no_fit)
    args = ["fit", str(claims_csv), "--formula", "claims ~ age", "--family", "poisson"]
    assert main([*args, "--out", str(tmp_path / "no-such-folder" / "m.npz")]) == 1
    _assert_one_line_error(capsys.readouterr().err, "does not exist")
    assert main([*args, "--out", str(tmp_path)]) == 1
    _assert_one_line_error(capsys.readouterr().err, "it is a folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_out_folder_is_refused(claims_csv, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["fit", str(claims_csv), "--formula", "claims ~ age", "--out", str(locked / "m.npz")]) == 1
    finally:
        locked.chmod(0o700)
    _assert_one_line_error(capsys.readouterr().err, "permission denied")


def test_a_folder_the_system_refuses_to_write_into_is_refused(claims_csv, tmp_path, capsys, monkeypatch):
    # As root (CI containers) no folder is read-only: ask the same question the check asks, answered "no".
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert main(["fit", str(claims_csv), "--formula", "claims ~ age", "--out", str(tmp_path / "m.npz")]) == 1
    _assert_one_line_error(capsys.readouterr().err, "permission denied")


def test_a_formula_syntax_error_is_one_line_with_the_position(claims_csv, tmp_path, capsys):
    assert main(["fit", str(claims_csv), "--formula", "claims ~ age +", "--out", str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err
    _assert_one_line_error(err, "Cannot parse the formula 'claims ~ age +' at position 14 ('+')")


def _assert_one_line_error(err: str, message: str) -> None:
    assert err.startswith("neuralglm: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert "\x1b" not in err and "Traceback" not in err


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
    for heading in ("1. Linear truth", "2. Nonlinear truth", "3. Binary truth", "4. Hidden layers", "5. Real data", "7. Nesting the GLM"):
        assert heading in out
    assert {p.name for p in tmp_path.iterdir()} >= {"nonlinear_fit.png", "decision_surfaces.png", "motor_lorenz.png"}
    assert "CANN (GLM + network)" in out and "balance" in out


def test_public_api_lists_every_lazy_export():
    optional = {"NeuralGLMRegressor", "NeuralGLMClassifier"}  # scikit-learn is an optional dependency
    assert sorted(set(ng.__all__) - {"__version__"}) == sorted(set(ng._EXPORTS) - optional)
    for name in ng.__all__:
        assert getattr(ng, name) is not None


def test_fit_is_the_function_even_after_the_solver_subpackage_loads():
    import neuralglm.fit.irls  # noqa: F401  (loads the subpackage that shares the name)

    assert callable(ng.fit) and ng.fit.__module__ == "neuralglm.network"


def test_flag_help_offers_only_what_a_command_line_can_pass(capsys):
    # The table's docs mention Family/Link objects and callables for Python callers; the flags do not.
    assert main(["fit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--family FAMILY" in text and "'tweedie(power)'" in text and "--learning-rate" in text
    for python_only in ("Family object", "or object", "callable"):
        assert python_only not in text
