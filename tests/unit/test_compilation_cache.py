"""The opt-in persistent compilation cache: where it lives, that fits fill it, that a new process reuses it.

The cache is a process-wide JAX setting, so everything that turns it on runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

import neuralglm as ng
from neuralglm.cli import main
from neuralglm.compilation_cache import CACHE_DIR_VARIABLE, NO_CACHE_VARIABLE, default_cache_dir, enable_for_command_line
from neuralglm.errors import SpecificationError

# Fits a small network with the cache in argv[1] (then, if given, one of another shape with the
# cache in argv[2]) and prints how many compilations asked the cache and how many it answered.
_FIT_IN_A_NEW_PROCESS = """
import json, sys, warnings
import jax, numpy as np, pandas as pd
import neuralglm as ng
counts = {"requests": 0, "hits": 0}
def count(event, **kwargs):
    if event == "/jax/compilation_cache/compile_requests_use_cache":
        counts["requests"] += 1
    elif event == "/jax/compilation_cache/cache_hits":
        counts["hits"] += 1
jax.monitoring.register_event_listener(count)
rng = np.random.default_rng(0)
df = pd.DataFrame({"x": rng.normal(size=300)})
df["y"] = np.sin(df.x) + 0.1 * rng.normal(size=300)
for folder, rows in zip(sys.argv[1:], (300, 200)):
    ng.enable_compilation_cache(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ng.fit("y ~ x", df.iloc[:rows], hidden=(3,), activation="tanh", solver="lbfgs", epochs=20, seed=0, verbose=False)
print(json.dumps(counts))
"""


def _fit_in_a_new_process(*folders: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _FIT_IN_A_NEW_PROCESS, *map(str, folders)], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _entries(folder: Path) -> set[str]:
    return {entry.name for entry in folder.iterdir()}


def _without_cache_variables() -> dict[str, str]:
    """The environment of a new process as a user's shell has it (the suite sets NEURALGLM_NO_CACHE, tests/conftest.py)."""
    return {key: value for key, value in os.environ.items() if key not in (CACHE_DIR_VARIABLE, NO_CACHE_VARIABLE)}


def _small_csv(folder: Path) -> Path:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.normal(size=200)})
    data["y"] = rng.poisson(np.exp(0.3 * data.x))
    data.to_csv(folder / "d.csv", index=False)
    return folder / "d.csv"


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "chosen"))
    assert default_cache_dir() == tmp_path / "chosen"
    monkeypatch.delenv(CACHE_DIR_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "neuralglm" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "neuralglm" / "jax"


def test_a_fit_fills_the_cache_and_a_new_process_finds_every_compilation_there(tmp_path):
    folder = tmp_path / "cache"
    first = _fit_in_a_new_process(folder)
    assert first["requests"] > 0 and first["hits"] == 0
    assert any("lbfgs_chunk" in name for name in _entries(folder))
    second = _fit_in_a_new_process(folder)
    assert second["hits"] == second["requests"] == first["requests"]


def test_a_second_folder_takes_over(tmp_path):
    """JAX opens its disk cache once per process; enabling another folder must move it there."""
    _fit_in_a_new_process(tmp_path / "a", tmp_path / "b")
    assert any("lbfgs_chunk" in name for name in _entries(tmp_path / "b"))  # the 200-row fit compiled anew


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SpecificationError, match=r"Cannot use .*a-file.* as the compilation cache folder.*pass a folder you can write to"):
        ng.enable_compilation_cache(blocker)
    with pytest.raises(SpecificationError, match="must be a folder path"):
        ng.enable_compilation_cache(123)
    # The command line reports the variable in one line, exit status 1 (before any JAX setting changes).
    monkeypatch.delenv(NO_CACHE_VARIABLE)
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(blocker))
    assert main(["predict", str(tmp_path / "missing.npz"), "new.csv", "--out", str(tmp_path / "p.csv")]) == 1
    assert f"(from ${CACHE_DIR_VARIABLE})" in capsys.readouterr().err


def test_the_command_line_uses_the_folder_named_by_the_environment(tmp_path):
    folder = tmp_path / "cli-cache"
    command = [sys.executable, "-m", "neuralglm", "fit", str(_small_csv(tmp_path)), "--formula", "y ~ x", "--family", "poisson"]
    environment = {**_without_cache_variables(), CACHE_DIR_VARIABLE: str(folder)}
    subprocess.run([*command, "--out", str(tmp_path / "m.npz")], check=True, capture_output=True, env=environment)
    assert folder.is_dir() and _entries(folder)


def test_the_command_line_caches_by_default_in_a_private_folder_of_the_users_cache(tmp_path):
    command = [sys.executable, "-m", "neuralglm", "fit", str(_small_csv(tmp_path)), "--formula", "y ~ x", "--family", "poisson"]
    environment = {**_without_cache_variables(), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run([*command, "--out", str(tmp_path / "m.npz")], check=True, capture_output=True, text=True, env=environment)
    assert "compilation cache" not in done.stderr
    folder = tmp_path / "xdg" / "neuralglm" / "jax"
    assert _entries(folder)
    # The folder and the parents the command created are private to the user: JAX loads code from them.
    for created in (tmp_path / "xdg", tmp_path / "xdg" / "neuralglm", folder):
        assert stat.S_IMODE(created.stat().st_mode) == 0o700, created


def test_the_cache_is_off_with_the_flag_or_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(NO_CACHE_VARIABLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert enable_for_command_line(no_cache=True) is None
    for value in ("1", "yes", "true"):
        monkeypatch.setenv(NO_CACHE_VARIABLE, value)
        assert enable_for_command_line() is None
    assert not (tmp_path / "xdg").exists()
    # --no-cache before or after the command; the fit runs in this process, so it must leave JAX's setting alone.
    monkeypatch.delenv(NO_CACHE_VARIABLE)
    data = _small_csv(tmp_path)
    for flags in (["--no-cache", "fit"], ["fit", "--no-cache"]):
        assert main([*flags, str(data), "--formula", "y ~ x", "--family", "poisson", "--out", str(tmp_path / "m.npz")]) == 0
    assert not (tmp_path / "xdg").exists()
    assert not jax.config.jax_compilation_cache_dir


def test_a_folder_others_can_write_to_is_not_used(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(NO_CACHE_VARIABLE)
    shared = tmp_path / "xdg" / "neuralglm" / "jax"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    # The default folder: a one-line note, and the command goes on without the cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert enable_for_command_line() is None
    assert "other users can write to it" in capsys.readouterr().err
    # A folder the user named: an error that says how to fix it.
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(shared))
    with pytest.raises(SpecificationError, match="other users can write to it") as refused:
        enable_for_command_line()
    assert f"(from ${CACHE_DIR_VARIABLE})" in str(refused.value)
    # Python's enable_compilation_cache refuses it as well (it is refused before JAX is configured).
    with pytest.raises(SpecificationError, match="other users can write to it"):
        ng.enable_compilation_cache(shared)
    assert not jax.config.jax_compilation_cache_dir


def test_no_home_folder_means_no_cache_not_a_failure(monkeypatch, capsys):
    def no_home():
        raise RuntimeError("Could not determine home directory")

    for variable in (NO_CACHE_VARIABLE, "XDG_CACHE_HOME", CACHE_DIR_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert enable_for_command_line() is None
    assert "running without the compilation cache: Could not determine home directory" in capsys.readouterr().err
