"""GLMs from Parquet read in batches: peak memory and time against the in-memory fit, measured in the same run.

    python -m benchmarks.streaming                      # n = 5e6 rows, p = 20 (intercept + 19 features), logistic
    python -m benchmarks.streaming --rows 1e6           # smaller, on a loaded machine

Problem (fixed seed): 19 standard normal features, η = 0.1 + Σ 0.05·xⱼ, y ~ Bernoulli(logit⁻¹ η),
written to a folder of Parquet files of 500,000 rows (row groups of 65,536). The formula is
``y ~ x1 + ... + x19``.

Each side runs in a fresh process. The streaming side first fits a 1,000-row file (imports and
JAX compilation), then reads its resident memory as the baseline, resets the peak
(``/proc/self/clear_refs``) and fits the whole folder: "peak above baseline" is the peak
resident memory during that fit minus the baseline, compared with the in-memory design's size
(n·p·8 bytes). The in-memory side times ``pd.read_parquet`` plus ``ng.glm`` on the frame, after
the same warm-up. Targets (issue 11): peak above baseline ≤ 25% of the design's size, time ≤ 2×
the in-memory time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FILE_ROWS = 500_000
ROW_GROUP = 1 << 16


def _formula(n_cols: int) -> str:
    return "y ~ " + " + ".join(f"x{j}" for j in range(1, n_cols))


def write_problem(folder: Path, n_rows: int, n_cols: int, seed: int = 0) -> None:
    """The problem as Parquet files, written file by file (never all rows in memory)."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for number, start in enumerate(range(0, n_rows, FILE_ROWS)):
        rows = min(FILE_ROWS, n_rows - start)
        x = rng.standard_normal((rows, n_cols - 1))
        eta = 0.1 + 0.05 * x.sum(axis=1)
        frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(1, n_cols)])
        frame["y"] = (rng.uniform(size=rows) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
        frame.to_parquet(folder / f"part-{number:04d}.parquet", row_group_size=ROW_GROUP)


def _rss_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _child(side: str, folder: Path, warm: Path, n_cols: int) -> dict:
    import pandas as pd

    import neuralglm as ng

    formula = _formula(n_cols)
    if side == "stream":
        ng.glm(formula, warm, family="binomial")
    else:
        ng.glm(formula, pd.read_parquet(warm), family="binomial")
    baseline = _rss_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) restarts from the current size
    started = time.perf_counter()
    if side == "stream":
        fit = ng.glm(formula, folder, family="binomial")
    else:
        fit = ng.glm(formula, pd.read_parquet(folder), family="binomial")
    seconds = time.perf_counter() - started
    peak = _rss_bytes("VmHWM")
    return {
        "seconds": seconds,
        "peak_above_baseline": peak - baseline,
        "baseline": baseline,
        "deviance": fit.deviance,
        "coef": fit.coef.tolist(),
        "n_iter": fit.info.n_iter,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=5e6)
    parser.add_argument("--cols", type=int, default=20, help="design columns, the intercept included")
    parser.add_argument("--folder", type=Path, default=None, help="where the Parquet files go (default: a temporary folder)")
    parser.add_argument("--child", choices=["stream", "memory"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n_rows, n_cols = int(args.rows), args.cols
    if args.child:
        print(json.dumps(_child(args.child, args.folder / "data", args.folder / "warm", n_cols)))
        return 0
    with tempfile.TemporaryDirectory(prefix="neuralglm-streaming-") as scratch:
        folder = args.folder or Path(scratch)
        started = time.perf_counter()
        write_problem(folder / "data", n_rows, n_cols)
        write_problem(folder / "warm", 1000, n_cols, seed=1)
        print(f"wrote {n_rows:,} rows × {n_cols} columns in {time.perf_counter() - started:.0f} s")
        results = {}
        for side in ("stream", "memory"):
            command = [
                sys.executable,
                "-m",
                "benchmarks.streaming",
                "--child",
                side,
                "--folder",
                str(folder),
                "--rows",
                str(n_rows),
                "--cols",
                str(n_cols),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[side] = json.loads(output.strip().splitlines()[-1])
    design = n_rows * n_cols * 8
    stream, memory = results["stream"], results["memory"]
    difference = float(np.max(np.abs(np.array(stream["coef"]) - np.array(memory["coef"]))))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"in-memory design: {design / 2**20:,.0f} MiB (n = {n_rows:,}, p = {n_cols})")
    for side, label in (("stream", "Parquet, batches"), ("memory", "read_parquet + glm")):
        r = results[side]
        print(
            f"{label:>20}: {r['seconds']:7.1f} s, peak above baseline {r['peak_above_baseline'] / 2**20:8,.0f} MiB "
            f"({r['peak_above_baseline'] / design:6.1%} of the design), {r['n_iter']} iterations"
        )
    print(f"time ratio (stream / in-memory): {stream['seconds'] / memory['seconds']:.2f} (target ≤ 2)")
    print(f"memory (stream peak above baseline / design): {stream['peak_above_baseline'] / design:.1%} (target ≤ 25%)")
    print(f"max |coef difference|: {difference:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
