"""The opt-in persistent compilation cache: where it lives, that fits fill it, that a new process reuses it.

The cache is a process-wide JAX setting, so everything that turns it on runs in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from neuralglm.compilation_cache import CACHE_DIR_VARIABLE, default_cache_dir

_FIT_IN_A_NEW_PROCESS = """
import sys, warnings
import numpy as np, pandas as pd
import neuralglm as ng
ng.enable_compilation_cache(sys.argv[1])
rng = np.random.default_rng(0)
df = pd.DataFrame({"x": rng.normal(size=300)})
df["y"] = np.sin(df.x) + 0.1 * rng.normal(size=300)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ng.fit("y ~ x", df, hidden=(3,), activation="tanh", solver="lbfgs", epochs=20, seed=0, verbose=False)
"""


def _entries(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "chosen"))
    assert default_cache_dir() == tmp_path / "chosen"
    monkeypatch.delenv(CACHE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "neuralglm" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "neuralglm" / "jax"


def test_a_fit_fills_the_cache_and_a_new_process_reuses_every_entry(tmp_path):
    folder = tmp_path / "cache"
    subprocess.run([sys.executable, "-c", _FIT_IN_A_NEW_PROCESS, str(folder)], check=True, capture_output=True)
    first = _entries(folder)
    assert any("lbfgs_chunk" in name for name in first), sorted(first)
    subprocess.run([sys.executable, "-c", _FIT_IN_A_NEW_PROCESS, str(folder)], check=True, capture_output=True)
    # The same computations in a new process find their compiled code: nothing new is written.
    assert _entries(folder) == first


def test_the_command_line_uses_the_folder_named_by_the_environment(tmp_path):
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.normal(size=200)})
    data["y"] = rng.poisson(np.exp(0.3 * data.x))
    data.to_csv(tmp_path / "d.csv", index=False)
    folder = tmp_path / "cli-cache"
    command = [sys.executable, "-m", "neuralglm", "fit", str(tmp_path / "d.csv"), "--formula", "y ~ x", "--family", "poisson"]
    environment = {**os.environ, CACHE_DIR_VARIABLE: str(folder)}
    subprocess.run([*command, "--out", str(tmp_path / "m.npz")], check=True, capture_output=True, env=environment)
    assert folder.is_dir() and _entries(folder)
