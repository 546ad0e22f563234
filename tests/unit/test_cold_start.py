"""Cold start: `neuralglm summary` prints the summary stored in the model file without importing JAX.

The reference for every stored summary is the summary of the model loaded from that file
(``str(ng.load(path).summary())``, rebuilt from the arrays by the full code path): the command
line must print exactly that text, whichever way it gets it.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from helpers import model_file_entries, resealed_model_file
from neuralglm.cli import main
from neuralglm.errors import ModelFileError
from neuralglm.results.model_file import SUMMARY_KEY, stored_summary

DATA = pathlib.Path(__file__).parent.parent / "data"
_HEAVY = ("jax", "jaxlib", "pandas", "scipy", "formulaic", "matplotlib", "optax")

# Runs `neuralglm summary PATH` through the command line's entry point and reports its exit
# status, its output and which heavy packages were imported on the way.
_SUMMARY_IN_A_NEW_PROCESS = """
import contextlib, io, json, sys
from neuralglm.cli import main
printed = io.StringIO()
with contextlib.redirect_stdout(printed):
    code = main(["summary", sys.argv[1]])
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[2].split(",")))
print(json.dumps({"code": code, "out": printed.getvalue(), "heavy": heavy}))
"""


def _small_data(seed: int = 0, n_obs: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"x": rng.normal(size=n_obs), "g": rng.choice(["a", "b", "c"], size=n_obs)})
    data["count"] = rng.poisson(np.exp(0.5 + 0.4 * data.x))
    data["overdispersed"] = rng.poisson(np.exp(1.0 + 0.4 * data.x) * rng.gamma(2.0, 0.5, size=n_obs))  # theta = 2
    data["y"] = 1.0 + 0.5 * data.x + rng.normal(size=n_obs)
    return data


def _models() -> dict:
    data = _small_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny network may stop at working precision: not what is tested here
        network = ng.fit("count ~ x + C(g)", data, family="poisson", hidden=(3,), seed=0, verbose=False)
    return {
        # the linear model's footer has R², F and its p-value; the negative binomial's its theta line
        "gaussian": ng.glm("y ~ x + C(g)", data),
        "poisson": ng.glm("count ~ x + C(g)", data, family="poisson"),
        "negative binomial": ng.glm("overdispersed ~ x", data, family="negative_binomial"),
        "quasipoisson": ng.glm("overdispersed ~ x", data, family="quasipoisson"),
        "network": network,
    }


@pytest.fixture(scope="module")
def models():
    return _models()


@pytest.mark.parametrize("name", ["gaussian", "poisson", "negative binomial", "quasipoisson", "network"])
@pytest.mark.parametrize("include_data", [False, True])
def test_the_stored_summary_is_the_loaded_models_summary(models, name, include_data, tmp_path, capsys):
    path = tmp_path / "model.npz"
    models[name].save(path, include_data=include_data)
    expected = str(ng.load(path).summary())
    assert stored_summary(path) == expected
    assert ("saved with training data" in expected) is include_data
    assert main(["summary", str(path)]) == 0
    assert capsys.readouterr().out == expected + "\n"


def test_summary_in_a_new_process_imports_neither_jax_nor_pandas(models, tmp_path):
    path = tmp_path / "model.npz"
    models["poisson"].save(path)
    done = subprocess.run(
        [sys.executable, "-c", _SUMMARY_IN_A_NEW_PROCESS, str(path), ",".join(_HEAVY)], check=True, capture_output=True, text=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0 and report["heavy"] == []
    assert report["out"] == str(ng.load(path).summary()) + "\n"


def test_files_without_a_stored_summary_are_loaded_and_asked(models, tmp_path, capsys):
    # A format-1 file predates stored summaries; a file from another neuralglm version may lay
    # its summary out differently: both are rebuilt by loading the model.
    old = DATA / "glm_v1.npz"
    assert stored_summary(old) is None
    assert main(["summary", str(old)]) == 0
    assert capsys.readouterr().out == str(ng.load(old).summary()) + "\n"
    buffer = __import__("io").BytesIO()
    models["poisson"].save(buffer)
    spec, arrays = model_file_entries(buffer.getvalue())
    spec["neuralglm_version"], spec[SUMMARY_KEY] = "0.0.1", "a summary laid out by another version"
    other = tmp_path / "other-version.npz"
    other.write_bytes(resealed_model_file(spec, arrays).getvalue())
    assert stored_summary(other) is None
    assert main(["summary", str(other)]) == 0
    out = capsys.readouterr().out
    assert "another version" not in out and out == str(ng.load(other).summary()) + "\n"


def test_an_edited_summary_is_refused_by_the_checksum(models, tmp_path, capsys):
    buffer = __import__("io").BytesIO()
    models["poisson"].save(buffer)
    spec, arrays = model_file_entries(buffer.getvalue())
    spec[SUMMARY_KEY] = spec[SUMMARY_KEY].replace("Observations", "Observationz")
    # The entries written back as they are, with the old spec checksum: an edit without resealing.
    edited = tmp_path / "edited.npz"
    np.savez(edited, **{"spec.json": np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8)}, **arrays)  # type: ignore[arg-type]
    with pytest.raises(ModelFileError, match="checksum"):
        stored_summary(edited)
    assert main(["summary", str(edited)]) == 1
    assert "checksum" in capsys.readouterr().err


def test_a_missing_model_file_is_one_line(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "none.npz")]) == 1
    assert "No such model file" in capsys.readouterr().err
