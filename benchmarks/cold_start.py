"""Cold-start benchmark: what a statistician waits for in a new process (issue 11, section 4).

    python -m benchmarks.cold_start                # summary, first GLM, CLI fit: 5 fresh processes each
    python -m benchmarks.cold_start --demo         # also `neuralglm demo --quick` and the full demo (1 run each)
    python -m benchmarks.cold_start --runs 3 --only summary,glm

Every measurement is the wall time of a fresh Python process, start to exit, as the user's
shell sees it (interpreter start-up, imports, compilation, work, printing); the table gives the
median and the fastest of ``--runs`` runs, next to the target of the issue. The load average
before and after each row is printed, because on a shared machine it moves every number.

Rows:

- ``--help``: the floor (the interpreter, argparse and neuralglm's option table).
- ``summary``: ``neuralglm summary model.npz`` of a saved Poisson GLM and of a small network.
- ``first GLM``: ``import neuralglm as ng; ng.glm(formula, df, family="poisson")`` on 64 rows;
  the process also reports, from inside, the import time, the first fit and a second fit on 80
  rows (a new shape: what a second small model of a session pays).
- ``CLI fit``: ``neuralglm fit data.csv ...`` of that GLM with the compilation cache empty (a new
  folder per run), warm (a folder filled by an earlier run) and switched off.
- ``demo`` (with ``--demo``): ``neuralglm demo --quick`` and ``neuralglm demo``, first run with
  an empty cache, then once more with the cache that run filled.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (row name, target in seconds or None)
TARGETS = {
    "summary": 0.5,
    "first GLM": 1.5,
    "CLI fit": 2.0,
    "demo": 12.0,
}

_MAKE_FILES = """
import sys
import numpy as np, pandas as pd
import neuralglm as ng
folder = sys.argv[1]
rng = np.random.default_rng(0)
df = pd.DataFrame({"x1": rng.normal(size=64), "x2": rng.normal(size=64), "g": rng.choice(list("abc"), size=64)})
df["y"] = rng.poisson(np.exp(0.3 + 0.4 * df.x1 - 0.2 * df.x2))
df.to_csv(folder + "/small.csv", index=False)
ng.glm("y ~ x1 + x2 + C(g)", df, family="poisson").save(folder + "/glm.npz")
ng.fit("y ~ x1 + x2 + C(g)", df, family="poisson", hidden=(4,), seed=0, verbose=False).save(folder + "/network.npz")
"""

_FIRST_GLM = """
import time
started = time.perf_counter()
import numpy as np, pandas as pd
import neuralglm as ng
imported = time.perf_counter()
rng = np.random.default_rng(0)
df = pd.DataFrame({"x1": rng.normal(size=80), "x2": rng.normal(size=80), "g": rng.choice(list("abc"), size=80)})
df["y"] = rng.poisson(np.exp(0.3 + 0.4 * df.x1 - 0.2 * df.x2))
fit = ng.glm("y ~ x1 + x2 + C(g)", df.iloc[:64], family="poisson")
first = time.perf_counter()
second = ng.glm("y ~ x1 + x2 + C(g)", df, family="poisson")
done = time.perf_counter()
print("TIMES", {"import": imported - started, "first fit": first - imported, "second fit (80 rows)": done - first})
"""


def _run(command: list[str], environment: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def _load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, list[float], float | None, str, str]] = []

    def measure(self, name: str, target: float | None, runs: int, command, environment, prepare=None) -> list[str]:
        """Run ``command`` ``runs`` times (``prepare()`` before each, untimed); keep the wall times and outputs."""
        before, times, outputs = _load(), [], []
        for _ in range(runs):
            if prepare is not None:
                prepare()
            seconds, output = _run(command, environment)
            times.append(seconds)
            outputs.append(output)
        self.rows.append((name, times, target, before, _load()))
        print(f"{name:<42} median {statistics.median(times):6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
        return outputs

    def markdown(self) -> str:
        lines = [
            "| measurement (fresh process) | median s | fastest s | runs | target s | met | load avg before → after (1/5/15 min) |",
            "|---|---:|---:|---:|---:|:-:|---|",
        ]
        for name, times, target, before, after in self.rows:
            median = statistics.median(times)
            met = "" if target is None else ("yes" if median <= target else "no")
            shown = "" if target is None else f"{target:g}"
            lines.append(f"| {name} | {median:.2f} | {min(times):.2f} | {len(times)} | {shown} | {met} | {before} → {after} |")
        return "\n".join(lines)


def _fresh_cache(root: Path, environment: dict[str, str]):
    """A ``prepare`` that points the command line at a new, empty cache folder."""
    counter = iter(range(10**6))

    def prepare() -> None:
        environment["NEURALGLM_CACHE_DIR"] = str(root / f"empty-{next(counter)}")

    return prepare


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per measurement (default 5)")
    parser.add_argument("--demo", action="store_true", help="also time `neuralglm demo --quick` and the full demo")
    parser.add_argument("--only", default="help,summary,glm,cli", help="comma-separated: help, summary, glm, cli (default all)")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(","))
    python = sys.executable
    cli = [python, "-m", "neuralglm"]
    print(f"Python {sys.version.split()[0]} · {os.cpu_count()} CPUs · load average {_load()} at start\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="neuralglm-cold-") as folder:
        root = Path(folder)
        base = {key: value for key, value in os.environ.items() if not key.startswith("NEURALGLM_")}
        base["XDG_CACHE_HOME"] = str(root / "xdg")  # never the user's own cache
        _run([python, "-c", _MAKE_FILES, folder], {**base, "NEURALGLM_NO_CACHE": "1"})
        table = Table()
        if "help" in chosen:
            table.measure("`neuralglm --help`", None, args.runs, [*cli, "--help"], base)
        if "summary" in chosen:
            table.measure("`neuralglm summary` (GLM)", TARGETS["summary"], args.runs, [*cli, "summary", f"{folder}/glm.npz"], base)
            table.measure("`neuralglm summary` (network)", TARGETS["summary"], args.runs, [*cli, "summary", f"{folder}/network.npz"], base)
        if "glm" in chosen:
            outputs = table.measure(
                "first GLM (import + ng.glm, 64 rows)", TARGETS["first GLM"], args.runs, [python, "-c", _FIRST_GLM], base
            )
            for output in outputs:
                print("   inside:", next(line for line in output.splitlines() if line.startswith("TIMES"))[6:])
        if "cli" in chosen:
            fit = [*cli, "fit", f"{folder}/small.csv", "--formula", "y ~ x1 + x2 + C(g)", "--family", "poisson", "--out", f"{folder}/m.npz"]
            environment = dict(base)
            table.measure("CLI fit, empty cache", TARGETS["CLI fit"], args.runs, fit, environment, _fresh_cache(root, environment))
            warm = {**base, "NEURALGLM_CACHE_DIR": str(root / "warm")}
            _run(fit, warm)
            table.measure("CLI fit, warm cache", TARGETS["CLI fit"], args.runs, fit, warm)
            table.measure(
                "CLI fit, cache off (NEURALGLM_NO_CACHE=1)", TARGETS["CLI fit"], args.runs, fit, {**base, "NEURALGLM_NO_CACHE": "1"}
            )
        if args.demo:
            for name, extra in (("demo --quick", ["--quick"]), ("demo", [])):
                command = [*cli, "demo", "--out", f"{folder}/demo", *extra]
                cache = {**base, "NEURALGLM_CACHE_DIR": str(root / f"demo-cache{len(extra)}")}
                table.measure(f"`neuralglm {name}`, empty cache", TARGETS["demo"], 1, command, cache)
                table.measure(f"`neuralglm {name}`, warm cache", TARGETS["demo"], 1, command, cache)
    print()
    print(table.markdown())


if __name__ == "__main__":
    main()
