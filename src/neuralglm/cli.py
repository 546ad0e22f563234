"""Command-line interface: ``neuralglm example`` (more commands arrive with later issues).

Exit status: 0 on success, 1 for a data or model error (one line; ``--debug`` for the traceback),
2 for usage errors. Heavy libraries are imported only inside the commands that need them.
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuralglm", description="Neural networks as generalized linear models.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("example", help="fit the classic Poisson claims GLM on the shipped insurance data and print its summary")
    return parser


def _example() -> int:
    import neuralglm as ng

    data = ng.datasets.load_insurance()
    fit = ng.glm("claims ~ C(district) + group + age", data, family="poisson", exposure="holders")
    print("Poisson GLM of car insurance claims (Baxter et al. 1980), exposure = policyholders\n")
    print(fit.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "example":
            return _example()
    except Exception as error:
        from neuralglm.errors import NeuralGLMError

        if args.debug or not isinstance(error, NeuralGLMError):
            raise
        print(f"neuralglm: error: {error}", file=sys.stderr)
        return 1
    return 2
