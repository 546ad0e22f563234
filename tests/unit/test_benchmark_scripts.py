"""The benchmark scripts' options that the suite can check quickly: ``--device`` and the formula path of ``benchmarks.run``."""

from __future__ import annotations

import jax
import pytest
from benchmarks import device
from benchmarks import run as glm_bench


def _has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.skipif(_has_gpu(), reason="a GPU is visible here")
def test_device_gpu_without_a_gpu_stops_with_what_to_install():
    with pytest.raises(SystemExit, match=r"JAX sees no GPU here .*pip install \"neuralglm\[cuda\]\" \(that is jax\[cuda12\]\)"):
        device.select("gpu")


def test_device_cpu_is_jax_cpu():
    assert device.select("cpu").startswith("cpu")


def test_the_formula_path_is_timed_against_the_matrix_and_the_frame_peers(capsys):
    tools = "--tools neuralglm".split()
    assert glm_bench.main(["--formula-only", "--sizes", "3000x6", "--families", "binomial", "--repeats", "1", *tools]) == 0
    out = capsys.readouterr().out
    for tool in ("neuralglm-formula", "sklearn-lbfgs-frame", "sklearn-newton-cholesky-frame"):
        assert f"| binomial n=3e3 p=6 | {tool}" in out or f"| binomial n=3e3 p=6 | **{tool}**" in out
    assert "| binomial n=3e3 p=6 | neuralglm-formula | " in out and "formula cost / glm_fit" in out
    # The formula and the matrix give the same fit: the coefficient difference is exactly zero.
    row = next(line for line in out.splitlines() if "| neuralglm-formula |" in line)
    assert row.split("|")[6].strip() == "0.0e+00"
