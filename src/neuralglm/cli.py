"""Command-line interface: ``neuralglm demo | fit | summary | predict | compare | plot | example``.

Exit status: 0 on success, 1 for a data or model error (one line; ``--debug`` for the
traceback), 2 for usage errors. JAX, pandas and matplotlib are imported only inside the
commands that need them, so ``neuralglm --help`` answers at once.

Each command is a new process that compiles its JAX functions again; with the environment
variable ``NEURALGLM_CACHE_DIR`` set, compiled code is kept in that folder and reused by later
commands (:mod:`neuralglm.compilation_cache`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _hidden(text: str) -> tuple[int, ...]:
    """``"32,16"`` → ``(32, 16)``; ``""`` or ``"0"`` → ``()`` (a GLM)."""
    text = text.strip()
    if text in ("", "0", "()"):
        return ()
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden takes comma-separated widths like 32,16; got {text!r}") from None
    if any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError(f"--hidden widths must be ≥ 1; got {text!r}")
    return widths


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="CSV or Parquet file")
    parser.add_argument("--formula", required=True, help='R-style formula, e.g. "claims ~ age + C(region)"')
    parser.add_argument(
        "--family", default="gaussian", help="gaussian, binomial, poisson, gamma, inverse_gaussian, negative_binomial(a), tweedie(p)"
    )
    parser.add_argument("--link", default=None, help="link name (default: the family's canonical link)")
    offsets = parser.add_mutually_exclusive_group()
    offsets.add_argument("--exposure", default=None, help="column with the exposure (offset = log(exposure))")
    offsets.add_argument("--offset", default=None, help="column with the offset (linear-predictor scale)")
    parser.add_argument("--weights", default=None, help="column with prior weights")
    parser.add_argument("--hidden", type=_hidden, default=(), help="hidden widths, e.g. 32,16 (default: none, a GLM)")
    parser.add_argument("--activation", default="relu", help="relu, tanh, sigmoid, gelu, softplus, elu, leaky_relu, identity")
    parser.add_argument("--solver", default="auto", help="auto, irls, lbfgs, adam, sgd")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (L-BFGS: iterations)")
    parser.add_argument("--l2", type=float, default=0.0, help="weight decay on the network's weights")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuralglm", description="Neural networks as generalized linear models with learned features.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="show the idea on simulated and shipped data (about a minute)")
    demo.add_argument("--out", default="neuralglm-demo", help="folder for the PNG plots (default ./neuralglm-demo/)")
    demo.add_argument("--quick", action="store_true", help="smaller data, fewer iterations")
    demo.add_argument("--seed", type=int, default=0)

    fit = commands.add_parser("fit", help="fit a GLM or a neural GLM to a data file and save it")
    _model_arguments(fit)
    fit.add_argument("--out", required=True, help="model file to write (.npz)")

    summary = commands.add_parser("summary", help="print the summary of a saved model")
    summary.add_argument("model", help="model file written by `neuralglm fit`")

    predict = commands.add_parser("predict", help="predict new data with a saved model")
    predict.add_argument("model")
    predict.add_argument("data", help="CSV or Parquet file")
    predict.add_argument("--out", required=True, help="CSV file for the predictions")
    predict.add_argument("--type", choices=("response", "link"), default="response")

    compare = commands.add_parser("compare", help="GLM vs network on a held-out split, in one table")
    _model_arguments(compare)
    compare.add_argument("--test-fraction", type=float, default=0.25, help="share of rows held out (default 0.25)")

    plot = commands.add_parser("plot", help="write diagnostic plots of a saved model for a data file")
    plot.add_argument("model")
    plot.add_argument("data", help="CSV or Parquet file (the training data, or new data with the response)")
    plot.add_argument("--out", required=True, help="folder for the PNG files")

    commands.add_parser("example", help="fit the classic Poisson claims GLM on the shipped insurance data")
    return parser


def _read(path: str):
    import pandas as pd

    from neuralglm.errors import DataError

    file = Path(path)
    if not file.exists():
        raise DataError(f"No such data file: {path}")
    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(file)
        except ImportError:
            raise DataError("Reading Parquet needs pyarrow: pip install pyarrow (or save the data as CSV).") from None
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(file)
    raise DataError(f"DATA must be a .csv or .parquet file; got {path}")


def _load(path: str):
    import neuralglm as ng
    from neuralglm.errors import ModelFileError

    if not Path(path).exists():
        raise ModelFileError(f"No such model file: {path} (write one with `neuralglm fit ... --out {path}`).")
    return ng.load(path)


def _fit_from_arguments(args, data, hidden):
    import neuralglm as ng

    return ng.fit(
        args.formula,
        data,
        family=args.family,
        link=args.link,
        exposure=args.exposure,
        offset=args.offset,
        weights=args.weights,
        hidden=hidden,
        activation=args.activation,
        solver=args.solver if hidden or args.solver != "auto" else "auto",
        epochs=args.epochs,
        l2=args.l2,
        seed=args.seed,
    )


def _command_fit(args) -> int:
    result = _fit_from_arguments(args, _read(args.data), args.hidden)
    result.save(args.out, include_data=True)  # until the CLI has --include-data (issue 8): `plot` needs the data
    print(result.summary())
    print(f"\nSaved to {args.out}")
    return 0


def _command_summary(args) -> int:
    print(_load(args.model).summary())
    return 0


def _command_predict(args) -> int:
    model = _load(args.model)
    data = _read(args.data)
    predictions = model.predict(data, type=args.type)
    predictions.to_frame(name=f"predicted_{args.type}").to_csv(args.out, index_label="row")
    print(f"Wrote {len(predictions):,} predictions ({args.type} scale) to {args.out}")
    return 0


def _command_compare(args) -> int:
    import numpy as np
    import pandas as pd

    from neuralglm.evaluate import heldout_deviance, heldout_deviance_explained

    data = _read(args.data)
    if not 0 < args.test_fraction < 1:
        raise SystemExit("neuralglm compare: error: --test-fraction must be in (0, 1)")
    held_out = np.random.default_rng(args.seed).random(len(data)) < args.test_fraction
    train, test = data.loc[~held_out], data.loc[held_out]
    hidden = args.hidden or (16,)
    models = {"GLM": _fit_from_arguments(args, train, ()), f"network {hidden}": _fit_from_arguments(args, train, hidden)}
    rows = {}
    for name, model in models.items():
        rows[name] = {
            "parameters": model.n_params if model.kind == "network" else model.rank,
            "train deviance": model.deviance,
            "AIC": model.aic,
            "held-out deviance": heldout_deviance(model, test),
            "held-out % deviance explained": 100.0 * heldout_deviance_explained(model, test),
        }
    table = pd.DataFrame(rows).T
    print(f"{args.formula} · {args.family} · {len(train):,} training rows, {len(test):,} held out (seed {args.seed})\n")
    print(table.to_string(float_format=lambda v: f"{v:,.3f}"))
    return 0


def _command_plot(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuralglm import plots

    model = _load(args.model)
    data = _read(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    figure, axes = plt.subplots(2, 2, figsize=(10, 8))
    plots.diagnostic_panel(model, axes=axes)
    figure.tight_layout()
    written.append(out / "diagnostics.png")
    figure.savefig(written[-1], dpi=110)
    plt.close(figure)
    for name, draw in (
        ("observed_vs_fitted", lambda ax: plots.observed_vs_fitted(model, ax=ax)),
        ("calibration", lambda ax: plots.calibration(model, data, ax=ax)),
    ):
        figure, ax = plt.subplots(figsize=(6.5, 5))
        draw(ax)
        figure.tight_layout()
        written.append(out / f"{name}.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    if model.kind == "network" and len(model.history):
        figure, ax = plt.subplots(figsize=(6.5, 4.5))
        plots.training_curves(model, ax=ax)
        figure.tight_layout()
        written.append(out / "training.png")
        figure.savefig(written[-1], dpi=110)
        plt.close(figure)
    print("Wrote " + ", ".join(str(path) for path in written))
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
    "example": _command_example,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 data/model error, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        from neuralglm.compilation_cache import CACHE_DIR_VARIABLE, enable_compilation_cache

        if os.environ.get(CACHE_DIR_VARIABLE):
            enable_compilation_cache()
        return _COMMANDS[args.command](args)
    except Exception as error:
        from neuralglm.errors import NeuralGLMError

        if args.debug or not isinstance(error, NeuralGLMError):
            raise
        print(f"neuralglm: error: {error}", file=sys.stderr)
        return 1
