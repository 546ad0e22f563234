"""Command-line interface: ``neuralglm demo | fit | summary | predict | compare | plot | report | example``.

Exit status: 0 on success, 1 for a data or model error (one line; ``--debug`` for the
traceback), 2 for usage errors. JAX, pandas and matplotlib are imported only inside the
commands that need them, so ``neuralglm --help`` answers at once.

Each command is a new process: the commands that compute keep JAX's compiled code in a
private folder of the user's cache (``$XDG_CACHE_HOME/neuralglm/jax``, or
``$NEURALGLM_CACHE_DIR``) and reuse it in later commands; ``--no-cache`` or
``NEURALGLM_NO_CACHE=1`` turns that off (:mod:`neuralglm.compilation_cache`). ``summary``
prints the summary stored in the model file and imports neither JAX nor pandas.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuralglm.constraints import Boolean, NoneValue
from neuralglm.errors import SpecificationError, plain_text
from neuralglm.options import PARAMETERS


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")


def _value_parser(name: str) -> Callable[[str], Any]:
    """Turn a flag's text into the value of parameter ``name``, validated by the table (a usage error otherwise)."""
    parameter = PARAMETERS[name]

    def parse(text: str):
        for constraint in parameter.constraints:
            try:
                value = constraint.parse(text)
            except ValueError:
                continue
            try:
                return parameter.check(value, "fit")
            except SpecificationError as error:
                raise argparse.ArgumentTypeError(str(error)) from None
        raise argparse.ArgumentTypeError(f"The '{name}' parameter of fit must be {parameter.requirement(text)}. Got {text!r} instead.")

    parse.__name__ = name  # argparse names the type in its messages
    return parse


# How a value that is not a plain number or name is written on the command line.
_WRITTEN_AS = {
    "hidden": "comma-separated widths, e.g. 32,16; 0 for none",
    "activation": "one name, or comma-separated names, one per hidden layer",
    "epochs": "a number or none",
    "tol": "a number or none",
    "dispersion": "none, pearson or a number",
}


# What the table's docs offer to Python callers only (objects, callables): a command line passes text.
_PYTHON_ONLY = {
    "family": ", or a Family object",
    "link": " or object",
    "activation": ", any JAX-differentiable callable,",
    "learning_rate": ", or a callable epoch -> step size",
}


def _hyper_parameter_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per entry of :data:`neuralglm.options.PARAMETERS`: type, choices, default and help from the table."""
    for name, parameter in PARAMETERS.items():
        flag = "--" + name.replace("_", "-")
        kinds = {type(c) for c in parameter.constraints}
        written = f"; on the command line: {_WRITTEN_AS[name]}" if name in _WRITTEN_AS else ""
        sentence = _first_sentence(parameter.doc).replace(_PYTHON_ONLY.get(name, "\0"), "")
        text = f"{sentence} (default: {parameter.default!r}{written})".replace("%", "%%")
        if Boolean in kinds and kinds <= {Boolean, NoneValue}:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=parameter.default, help=text)
        elif len(parameter.constraints) == 1 and parameter.constraints[0].choices:
            parser.add_argument(flag, choices=parameter.constraints[0].choices, default=parameter.default, help=text)
        else:
            parser.add_argument(flag, type=_value_parser(name), default=parameter.default, metavar=name.upper(), help=text)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="CSV or Parquet file")
    parser.add_argument("--formula", required=True, help='R-style formula, e.g. "claims ~ age + C(region)"')
    offsets = parser.add_mutually_exclusive_group()
    offsets.add_argument("--exposure", default=None, help="column with the exposure (offset = log(exposure))")
    offsets.add_argument("--offset", default=None, help="column with the offset (linear-predictor scale)")
    parser.add_argument("--weights", default=None, help="column with prior weights")
    _hyper_parameter_flags(parser)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"--test-fraction must be a number in (0, 1); got {text!r}")
    return value


def _fold_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"--folds must be an integer ≥ 2; got {text!r}")
    return value


def _subparser_class(common: argparse.ArgumentParser) -> type[argparse.ArgumentParser]:
    class Subparser(argparse.ArgumentParser):
        def __init__(self, **kwargs):
            super().__init__(parents=[common], **kwargs)

    return Subparser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuralglm", description="Neural networks as generalized linear models with learned features.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    # --debug is also accepted after the command; SUPPRESS keeps a subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks on errors")
    no_cache = "do not keep compiled code in the user's cache folder (also: NEURALGLM_NO_CACHE=1)"
    parser.add_argument("--no-cache", action="store_true", help=no_cache)
    common.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS, help=no_cache)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_subparser_class(common))

    demo = commands.add_parser("demo", help="show the idea on simulated and shipped data (about a minute)")
    demo.add_argument("--out", default="neuralglm-demo", help="folder for the PNG plots (default ./neuralglm-demo/)")
    demo.add_argument("--quick", action="store_true", help="smaller data, fewer iterations")
    demo.add_argument("--seed", type=int, default=0)

    fit = commands.add_parser("fit", help="fit a GLM or a neural GLM to a data file and save it")
    _model_arguments(fit)
    fit.add_argument("--out", required=True, help="model file to write (.npz)")
    fit.add_argument(
        "--include-data",
        action="store_true",
        help="also store the training data in the model file (for residuals and diagnostic plots; the file then holds the data)",
    )

    summary = commands.add_parser("summary", help="print the summary of a saved model")
    summary.add_argument("model", help="model file written by `neuralglm fit`")

    predict = commands.add_parser("predict", help="predict new data with a saved model")
    predict.add_argument("model")
    predict.add_argument("data", help="CSV or Parquet file")
    predict.add_argument("--out", required=True, help="CSV file for the predictions")
    predict.add_argument("--type", choices=("response", "link"), default="response")

    compare = commands.add_parser("compare", help="GLM vs network on a held-out split or by K-fold cross-validation, in one table")
    _model_arguments(compare)
    held_out = compare.add_mutually_exclusive_group()
    held_out.add_argument("--test-fraction", type=_fraction, default=0.25, help="share of rows held out, in (0, 1) (default 0.25)")
    held_out.add_argument(
        "--folds",
        type=_fold_count,
        default=None,
        metavar="K",
        help="cross-validate on K folds instead (the same folds, from --seed, for both models): mean held-out deviance "
        "per observation with its standard error, and the network's paired difference to the GLM",
    )

    plot = commands.add_parser("plot", help="write diagnostic plots of a saved model for a data file")
    plot.add_argument("model")
    plot.add_argument("data", help="CSV or Parquet file (the training data, or new data with the response)")
    plot.add_argument("--out", required=True, help="folder for the PNG files")

    _report_arguments(commands)
    commands.add_parser("example", help="fit the classic Poisson claims GLM on the shipped insurance data")
    return parser


def _report_arguments(commands) -> None:
    report = commands.add_parser(
        "report", help="write one self-contained HTML report of saved models on a data file (several models: a comparison too)"
    )
    report.add_argument(
        "paths", nargs="+", metavar="MODEL [MODEL ...] DATA", help="model files written by `neuralglm fit`, then the data file"
    )
    report.add_argument("--out", required=True, help="HTML file to write")
    report.add_argument("--title", default=None, help="title of the page (default: the first model's formula)")
    report.add_argument(
        "--top", type=int, default=3, help="inputs, by permutation importance, that get partial dependence plots (default 3)"
    )
    report.add_argument("--seed", type=int, default=0, help="seed of the permutations and row samples (default 0)")


def _read(path: str):
    """The data file as a DataFrame; anything pandas or pyarrow cannot read is a one-line :class:`DataError`."""
    import pandas as pd

    from neuralglm.errors import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError(f"No such data file: {path}")
    suffix = file.suffix.lower()
    parquet = suffix in (".parquet", ".pq")
    if not parquet and suffix not in (".csv", ".txt", ".gz"):
        raise DataError(f"DATA must be a .csv or .parquet file; got {path}")
    kind = "a Parquet file" if parquet else "a CSV file"
    try:
        return pd.read_parquet(file) if parquet else pd.read_csv(file)
    except ImportError:
        raise DataError("Reading Parquet needs pyarrow: pip install pyarrow (or save the data as CSV).") from None
    except pd.errors.EmptyDataError:
        raise DataError(
            f"The data file {path} is empty: it needs a header row with the column names, then one row per observation."
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"Cannot read {path} as {kind}: it is not UTF-8 text (a binary file?).") from None
    except (pd.errors.ParserError, ValueError, OSError) as error:  # pyarrow's ArrowInvalid is a ValueError
        reason = _one_line(str(error)).rstrip(".")
        raise DataError(f"Cannot read {path} as {kind}: {reason}.") from None


def _check_writable(path: str, what: str) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():
        problem = f"the folder {str(folder)!r} does not exist"
    elif not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        problem = "permission denied"
    else:
        return
    raise SpecificationError(f"Cannot write the {what} {path!r}: {problem}. Give another --out path.")


def _one_line(message: str) -> str:
    """One line without terminal colour codes (the library's own messages are one line already;
    this guards against text from other libraries)."""
    return " ".join(line.strip() for line in plain_text(message).splitlines() if line.strip())


def _load(path: str):
    import neuralglm as ng
    from neuralglm.errors import ModelFileError

    if not Path(path).exists():
        raise ModelFileError(f"No such model file: {path} (write one with `neuralglm fit ... --out {path}`).")
    return ng.load(path)


def _fit_from_arguments(args, data, hidden, **changes):
    import neuralglm as ng

    settings = {name: getattr(args, name) for name in PARAMETERS} | {"hidden": hidden} | changes
    return ng.fit(args.formula, data, exposure=args.exposure, offset=args.offset, weights=args.weights, **settings)


def _command_fit(args) -> int:
    _check_writable(args.out, "model file")
    result = _fit_from_arguments(args, _read(args.data), args.hidden)
    result.save(args.out, include_data=args.include_data)
    print(result.summary())
    held = "with the training data" if args.include_data else "without the training data (--include-data stores it)"
    print(f"\nSaved to {args.out}, {held}")
    return 0


def _command_summary(args) -> int:
    from neuralglm.errors import ModelFileError
    from neuralglm.results.model_file import stored_summary

    if not Path(args.model).exists():
        raise ModelFileError(f"No such model file: {args.model} (write one with `neuralglm fit ... --out {args.model}`).")
    # The file's stored summary needs NumPy only; a file without one is loaded (JAX) and asked.
    text = stored_summary(args.model)
    print(text if text is not None else _load(args.model).summary())
    return 0


def _command_predict(args) -> int:
    _check_writable(args.out, "predictions file")
    model = _load(args.model)
    data = _read(args.data)
    predictions = model.predict(data, type=args.type)
    predictions.to_frame(name=f"predicted_{args.type}").to_csv(args.out, index_label="row")
    print(f"Wrote {len(predictions):,} predictions ({args.type} scale) to {args.out}")
    return 0


def _command_compare(args) -> int:
    data = _read(args.data)
    hidden = args.hidden or (16,)
    if args.folds is not None:
        return _compare_by_folds(args, data, hidden)
    import numpy as np
    import pandas as pd

    from neuralglm.evaluate import heldout_deviance, heldout_deviance_explained

    held_out = np.random.default_rng(args.seed).random(len(data)) < args.test_fraction
    train, test = data.loc[~held_out], data.loc[held_out]
    models = _compared_models(args, train, hidden)
    rows = {}
    for name, model in models.items():
        rows[name] = {
            **_in_sample_columns(model),
            "held-out deviance": heldout_deviance(model, test),
            "held-out % deviance explained": 100.0 * heldout_deviance_explained(model, test),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")  # by rows: each column keeps its dtype (counts stay int)
    print(f"{args.formula} · {args.family} · {len(train):,} training rows, {len(test):,} held out (seed {args.seed})\n")
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    return 0


def _compared_models(args, data, hidden) -> dict:
    # --l2, --solver and --early-stopping are the network's: the GLM row is the maximum-likelihood GLM,
    # fitted by IRLS as ng.glm would (with --l2 it would be a ridge fit, with --solver lbfgs a float32 approximation).
    glm = _fit_from_arguments(args, data, (), l2=0.0, solver="auto", early_stopping=False)
    return {"GLM": glm, f"network {hidden}": _fit_from_arguments(args, data, hidden)}


def _in_sample_columns(model) -> dict:
    return {"parameters": model.n_params if model.kind == "network" else model.rank, "train deviance": model.deviance, "AIC": model.aic}


def _compare_by_folds(args, data, hidden) -> int:
    """``compare --folds K``: both models fitted to all rows (parameters, AIC), then cross-validated on the same folds."""
    import pandas as pd

    from neuralglm.cross_validation import cross_validate

    models = _compared_models(args, data, hidden)
    scores = cross_validate(models, data, folds=args.folds, seed=args.seed)
    fitted = pd.DataFrame.from_dict({name: _in_sample_columns(model) for name, model in models.items()}, orient="index")
    table = pd.concat([fitted, scores.add_prefix("CV ")], axis=1)
    print(f"{args.formula} · {args.family} · {len(data):,} rows, {args.folds}-fold cross-validation (seed {args.seed})")
    print("CV: held-out deviance per observation ± SE across folds; difference: to the GLM, paired over folds\n")
    print(table.to_string(float_format=lambda v: f"{v:,.4g}"))
    return 0


def _command_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralglm import plots
    from neuralglm.errors import NeuralGLMError

    model = _load(args.model)
    data = _read(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []

    def draw(name: str, size: tuple[float, float], plot) -> None:
        figure = plt.figure(figsize=size)
        try:
            plot(figure)
            figure.tight_layout()
            written.append(out / f"{name}.png")
            figure.savefig(written[-1], dpi=110)
        except NeuralGLMError as error:
            # Leverage and Cook's distance exist only for the fit's own rows: the panel is drawn
            # when DATA are the training rows (or the file holds them), else skipped with the reason.
            skipped.append(f"{name}: {error}")
        finally:
            plt.close(figure)

    draw("diagnostics", (10, 8), lambda figure: plots.diagnostic_panel(model, data, axes=figure.subplots(2, 2)))
    draw("observed_vs_fitted", (6.5, 5), lambda figure: plots.observed_vs_fitted(model, data, ax=figure.gca()))
    draw("calibration", (6.5, 5), lambda figure: plots.calibration(model, data, ax=figure.gca()))
    if model.kind == "network" and len(model.history):
        draw("training", (6.5, 4.5), lambda figure: plots.training_curves(model, ax=figure.gca()))
    print("Wrote " + ", ".join(str(path) for path in written))
    for reason in skipped:
        print(f"Skipped {reason}")
    return 0


def _command_report(args) -> int:
    """``report MODEL [MODEL ...] DATA --out FILE``: each model labelled by its file name."""
    import matplotlib

    matplotlib.use("Agg")
    from neuralglm.reporting import report

    if len(args.paths) < 2:
        raise SpecificationError(
            "report needs at least one model file and then the data file: neuralglm report MODEL DATA --out report.html"
        )
    _check_writable(args.out, "report")
    *model_paths, data_path = args.paths
    models = {}
    for path in model_paths:
        label = Path(path).stem
        models[label if label not in models else path] = _load(path)
    written = report(models, _read(data_path), args.out, title=args.title, top=args.top, seed=args.seed)
    print(f"Wrote {written} ({written.stat().st_size / 1e6:.2f} MB): {', '.join(models)} on {data_path}")
    return 0


def _command_example(args) -> int:
    import neuralglm as ng

    data = ng.datasets.load_insurance()
    fit = ng.glm("claims ~ C(district) + group + age", data, family="poisson", exposure="holders")
    print("Poisson GLM of car insurance claims (Baxter et al. 1980), exposure = policyholders\n")
    print(fit.summary())
    return 0


def _command_demo(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from neuralglm.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0


_COMMANDS = {
    "demo": _command_demo,
    "fit": _command_fit,
    "summary": _command_summary,
    "predict": _command_predict,
    "compare": _command_compare,
    "plot": _command_plot,
    "report": _command_report,
    "example": _command_example,
}

# The commands that run JAX code (and so use the compilation cache); summary imports no JAX.
_COMPILING = frozenset(_COMMANDS) - {"summary"}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 data/model error, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        if args.command in _COMPILING:
            from neuralglm.compilation_cache import enable_for_command_line

            enable_for_command_line(no_cache=args.no_cache)
        return _COMMANDS[args.command](args)
    except Exception as error:
        from neuralglm.errors import NeuralGLMError

        # Library errors, files that cannot be read or written and refused values are the user's
        # to fix: one line. Anything else is a bug and keeps its traceback.
        if args.debug or not isinstance(error, (NeuralGLMError, OSError, ValueError)):
            raise
        print(f"neuralglm: error: {_one_line(str(error))}", file=sys.stderr)
        return 1
