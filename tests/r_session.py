"""Live R for parity tests: run a script with Rscript and read back named numbers.

Tests compare with R itself, never with numbers typed from memory. R (Debian's
``r-base-core`` with ``r-cran-mass`` and ``r-cran-nnet``) is installed by ``.ci/run`` when the
machine allows it; where it is absent a test calls :func:`require_r` and is skipped with the
reason.

- :func:`r_dataset` reads one of R's own datasets (``"warpbreaks"``, ``("quine", "MASS")``)
  into pandas, factors as pandas categoricals with R's levels and order (ordered factors stay
  ordered).
- :func:`run_r` runs R code on pandas frames passed by name; the code calls
  ``out("name", value)`` for each result, and the results come back as a dict of float arrays
  (names, where R had them, in ``result["name"].names``). Numbers travel as ``%.17g`` text, so
  nothing is lost.

Example (in a test)::

    require_r("MASS")
    quine = r_dataset("quine", "MASS")
    r = run_r("m <- MASS::glm.nb(Days ~ Eth, data = d); out('theta', m$theta)", d=quine)
    theta = r["theta"][0]
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_PRELUDE = r"""
.out_file <- commandArgs(trailingOnly = TRUE)[1]
.out_con <- file(.out_file, open = "w")
out <- function(name, value) {
  value <- unlist(value)
  nm <- names(value)
  if (is.null(nm)) nm <- rep("", length(value))
  nm <- gsub("[\t\n]", " ", nm)
  vals <- ifelse(is.na(value), "NA", sprintf("%.17g", as.numeric(value)))
  writeLines(paste(name, paste(nm, collapse = "\t"), sep = "\t"), .out_con)
  writeLines(paste(name, paste(vals, collapse = "\t"), sep = "\t"), .out_con)
}
"""


class RVector(np.ndarray):
    """A float array with R's element names (``.names``, a list of str; empty strings if none)."""

    names: list[str]


@functools.cache
def _r_status() -> str | None:
    """None when Rscript runs, else why not (the skip reason)."""
    if shutil.which("Rscript") is None:
        return "R is not installed (apt-get install -y r-base-core r-cran-mass r-cran-nnet; .ci/run does it when root)"
    try:
        subprocess.run(["Rscript", "-e", "invisible(1)"], check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:  # pragma: no cover - depends on the machine
        return f"Rscript does not run: {exc}"
    return None


@functools.cache
def _has_package(package: str) -> bool:
    code = f"quit(status = if (requireNamespace('{package}', quietly = TRUE)) 0 else 1)"
    return subprocess.run(["Rscript", "-e", code], capture_output=True, timeout=60).returncode == 0


def require_r(*packages: str) -> None:
    """Skip the calling test, with the reason, unless Rscript and the given R packages are available."""
    reason = _r_status()
    if reason is not None:
        pytest.skip(reason)
    for package in packages:
        if not _has_package(package):
            pytest.skip(f"the R package {package} is not installed (Debian: r-cran-{package.lower()})")


def run_r(code: str, timeout: float = 120, **frames: pd.DataFrame) -> dict[str, RVector]:
    """Run ``code`` in Rscript with each frame bound to its keyword's name; return what it ``out()``s.

    Categorical columns arrive in R as factors with the same levels (ordered stays ordered).
    """
    require_r()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loads = [_frame_to_r(name, frame, folder) for name, frame in frames.items()]
        script = folder / "script.R"
        script.write_text(_PRELUDE + "\n".join(loads) + "\n" + code + "\nclose(.out_con)\n")
        result_file = folder / "out.tsv"
        proc = subprocess.run(["Rscript", "--vanilla", str(script), str(result_file)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"R failed:\n{proc.stderr[-3000:]}")
        return _read_results(result_file.read_text())


def _frame_to_r(name: str, frame: pd.DataFrame, folder: Path) -> str:
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    lines = [f"{name} <- read.csv({str(path)!r}, check.names = FALSE, stringsAsFactors = FALSE)"]
    for column in frame.columns:
        series = frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            levels = ", ".join(repr(str(level)) for level in series.cat.categories)
            ordered = "TRUE" if series.cat.ordered else "FALSE"
            lines.append(f"{name}[[{column!r}]] <- factor({name}[[{column!r}]], levels = c({levels}), ordered = {ordered})")
    return "\n".join(lines)


def _read_results(text: str) -> dict[str, RVector]:
    lines = text.splitlines()
    results: dict[str, RVector] = {}
    for names_line, values_line in zip(lines[::2], lines[1::2], strict=True):
        name, *names = names_line.split("\t")
        _, *values = values_line.split("\t")
        array = np.array([np.nan if v == "NA" else float(v) for v in values], dtype=float).view(RVector)
        array.names = names if any(names) else []
        results[name] = array
    return results


def unordered(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with ordered factors made plain ones (treatment coding), for tests whose subject is not contr.poly."""
    ordered = [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered]
    return frame.assign(**{name: frame[name].cat.as_unordered() for name in ordered})


def r_dataset(name: str, package: str = "datasets") -> pd.DataFrame:
    """One of R's datasets as a pandas frame; factors become categoricals with R's levels and order."""
    require_r(package) if package != "datasets" else require_r()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        code = f"""
d <- get(data({name}, package = {package!r}, envir = environment()))
d <- as.data.frame(d)
write.csv(d, {str(folder / "data.csv")!r}, row.names = FALSE)
con <- file({str(folder / "factors.tsv")!r}, open = "w")
for (col in names(d)) if (is.factor(d[[col]])) writeLines(paste(c(col, is.ordered(d[[col]]), levels(d[[col]])), collapse = "\t"), con)
close(con)
"""
        script = folder / "script.R"
        script.write_text(code)
        proc = subprocess.run(["Rscript", "--vanilla", str(script)], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"R failed:\n{proc.stderr[-3000:]}")
        frame = pd.read_csv(folder / "data.csv")
        for line in (folder / "factors.tsv").read_text().splitlines():
            column, ordered, *levels = line.split("\t")
            frame[column] = pd.Categorical(frame[column].astype(str), categories=levels, ordered=ordered == "TRUE")
        return frame
