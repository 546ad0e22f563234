"""One self-contained HTML report of one or several fitted models (``ng.report``, ``fit.report``, ``neuralglm report``).

The module is not named ``report``: importing it would shadow the function ``ng.report`` on
the package (as :mod:`neuralglm.bootstrapping` is not named ``bootstrap``).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path

from neuralglm._version import __version__
from neuralglm.data.frame import to_pandas
from neuralglm.errors import SpecificationError
from neuralglm.reporting._html import page
from neuralglm.reporting._sections import Options, comparison_section, model_sections, slug

MAX_TOP = 10


def _models(models) -> dict:
    if isinstance(models, list | tuple):
        raise SpecificationError(
            f"report takes one fit or a dict {{label: fit}}, not a {type(models).__name__}: write e.g. "
            "ng.report({'GLM': glm, 'network': net}, data, path)."
        )
    named = dict(models) if isinstance(models, Mapping) else {_default_name(models): models}
    if not named:
        raise SpecificationError("report needs at least one fitted model, as a fit or a dict {label: fit}.")
    for name, fit in named.items():
        if getattr(fit, "kind", None) not in ("glm", "network"):
            raise SpecificationError(
                f"report: {name!r} must be a FitResult or NetworkResult (ng.glm, ng.fit, ng.load). Got {type(fit).__name__}."
            )
    return {str(name): fit for name, fit in named.items()}


def _default_name(fit) -> str:
    return "GLM" if getattr(fit, "kind", None) == "glm" else "network"


def _check(value, name: str, low: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SpecificationError(
            f"The '{name}' parameter of report must be an integer ≥ {low}{' or None' if allow_none else ''}. Got {value!r} instead."
        )


def report(
    models, data, path, *, title: str | None = None, folds: int | None = None, seed: int = 0, top: int = 3, n_repeats: int = 5
) -> Path:
    """Write one self-contained HTML report of one or several fitted models, and return its path.

    The page holds, for each model: its summary, the coefficient table (GLM) or the
    architecture (network), fit statistics (in training, and on ``data``: deviance, %
    explained, balance, Gini), diagnostic plots, calibration by decile, permutation importance
    with partial dependence of the ``top`` inputs and their pairwise H statistics; and, for
    several models, a comparison (statistics on ``data``, lift, double lift against the first
    model, ordered Lorenz curves, calibration, and ``folds``-fold cross-validation when
    ``folds`` is given: each model is refitted by its recorded call). CSS is inline, figures
    are PNG data URIs, and the page loads nothing from anywhere: it can be mailed or archived
    as one file.

    Parameters
    ----------
    models : a fit, or a dict ``{label: fit}`` (the first is the reference of the comparison).
    data : DataFrame with the response and the columns the models were fitted with (the
        training rows for R's diagnostics with leverages; other rows get residual plots).
    path : where to write the ``.html`` file.
    title : the page's title (default: the first model's formula).
    folds : cross-validate the models on this many folds (needs models fitted in this session).
    seed : seed of the permutations, the row samples and the folds.
    top : how many of the most important inputs get partial dependence plots.
    n_repeats : permutations per input for the importance.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ C(district) + group + age", df, family="poisson", exposure="holders")
    >>> path = ng.report(fit, df, pathlib.Path(tempfile.mkdtemp()) / "claims.html")
    >>> text = path.read_text(encoding="utf-8")
    >>> "<h2>Coefficients</h2>" in text, 'src="http' in text
    (True, False)
    """
    named = _models(models)
    frame = to_pandas(data)
    _check(folds, "folds", 2, allow_none=True)
    _check(top, "top", 1)
    _check(n_repeats, "n_repeats", 2)
    _check(seed, "seed", 0)
    target = Path(path)
    if target.is_dir() or not target.parent.is_dir():
        raise SpecificationError(f"The 'path' parameter of report must be a file in an existing folder. Got {str(path)!r} instead.")
    options = Options(top=min(top, MAX_TOP), n_repeats=n_repeats, seed=seed, folds=folds)
    several = len(named) > 1
    sections = []
    for name, fit in named.items():
        sections += model_sections(name, fit, frame, options, prefix=f"{slug(name)}-" if several else "")
    if several:
        sections.append(comparison_section(named, frame, options))
    first = next(iter(named.values()))
    heading = title or f"{first.design.formula} · {first.family}(link={first.link})"
    subtitle = f"{', '.join(named)} · {len(frame):,} rows of data"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    target.write_text(page(heading, subtitle, sections, f"neuralglm {__version__} · {stamp}"), encoding="utf-8")
    return target


__all__ = ["report"]
