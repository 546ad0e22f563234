"""``--device cpu|gpu`` for the benchmark scripts: where JAX runs neuralglm's compiled code.

``gpu`` makes the first GPU JAX sees the default device, or stops with a message saying that
none is visible and how to get one. NumPy and BLAS work (neuralglm's weighted Gram matrices,
scikit-learn, glum) stays on the CPU whatever the choice.
"""

from __future__ import annotations

import argparse

CHOICES = ("cpu", "gpu")

NO_GPU = (
    "--device gpu: JAX sees no GPU here ({error}). Install JAX's CUDA build on a machine with an NVIDIA GPU and "
    'its driver, with pip install "neuralglm[cuda]" (that is jax[cuda12]), check that python -c "import jax; '
    "print(jax.devices('gpu'))\" lists it, or run with --device cpu."
)


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=CHOICES,
        default="cpu",
        help="where JAX runs neuralglm's compiled code: cpu (default) or gpu (needs jax[cuda12])",
    )


def select(name: str) -> str:
    """Make ``name``'s first JAX device the default and return its description; exit with the message above when there is none."""
    import jax

    try:
        device = jax.devices(name)[0]
    except RuntimeError as error:
        raise SystemExit(NO_GPU.format(error=" ".join(str(error).split()))) from None
    jax.config.update("jax_default_device", device)
    return f"{device.platform}: {getattr(device, 'device_kind', device)}"
