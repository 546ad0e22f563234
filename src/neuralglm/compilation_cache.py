"""Opt-in persistent cache of JAX's compiled functions, for fits in many short processes.

Within one Python process neuralglm compiles each training loop once per data shape and reuses
it (DESIGN.md §10). A *new* process compiles again: about 2 s for the first L-BFGS fit and
1.7 s for the first Adam fit on the 2-core benchmark machine. JAX can keep compiled code on
disk; with that cache warm, the first L-BFGS fit of a process (n = 20,000, hidden (32,), 50
iterations) took 0.78 s instead of 2.1 s, and the benchmark's Adam first fit 2.15 s instead
of 2.81 s (benchmarks/README.md).

The cache is a process-wide JAX setting that writes to disk, so the library never turns it
on by itself: call :func:`enable_compilation_cache` in a script, or set the environment
variable ``NEURALGLM_CACHE_DIR`` for the command line (``neuralglm fit ...``), which then
enables it in that folder. Keep the folder private: JAX loads compiled code from it, so
anyone who can write there can run code in your processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from neuralglm.errors import SpecificationError

CACHE_DIR_VARIABLE = "NEURALGLM_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$NEURALGLM_CACHE_DIR``, else ``$XDG_CACHE_HOME/neuralglm/jax``, else ``~/.cache/neuralglm/jax``.

    Examples
    --------
    >>> import os
    >>> os.environ["NEURALGLM_CACHE_DIR"] = "ng-cache"
    >>> default_cache_dir()
    PosixPath('ng-cache')
    >>> del os.environ["NEURALGLM_CACHE_DIR"]
    """
    chosen = os.environ.get(CACHE_DIR_VARIABLE)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "neuralglm" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Keep JAX's compiled functions in ``path`` so that later processes skip compilation.

    Every compiled function is stored, however short its compilation (JAX's own default keeps
    only those over one second, which would miss most of a fit's). Entries are keyed by the
    computation, the JAX version and the device, so a stale entry is never used. Affects every
    JAX computation of this process from now on; calling it again with another folder moves
    the cache there; deleting the folder clears it. Keep the folder private: JAX loads
    compiled code from it.

    Parameters
    ----------
    path : folder for the cache; default :func:`default_cache_dir`. Created if missing.

    Returns
    -------
    pathlib.Path
        The folder in use.

    Raises
    ------
    SpecificationError
        ``path`` is not a path, or the folder cannot be created (a file of that name exists,
        no permission).

    Examples
    --------
    Not run as a doctest (it would switch the cache on for the rest of the test process;
    ``tests/unit/test_compilation_cache.py`` runs it in subprocesses):

    >>> import neuralglm as ng
    >>> ng.enable_compilation_cache()  # doctest: +SKIP
    PosixPath('/home/me/.cache/neuralglm/jax')
    """
    if path is not None and not isinstance(path, str | os.PathLike):
        raise SpecificationError(
            f"The 'path' parameter of enable_compilation_cache must be a folder path (str or os.PathLike). Got {path!r} instead."
        )
    folder = Path(path).expanduser() if path is not None else default_cache_dir()
    from_variable = path is None and bool(os.environ.get(CACHE_DIR_VARIABLE))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        source, remedy = (
            (f" (from ${CACHE_DIR_VARIABLE})", f"set ${CACHE_DIR_VARIABLE} to a folder you can write to, or unset it")
            if from_variable
            else ("", "pass a folder you can write to")
        )
        raise SpecificationError(
            f"Cannot use {str(folder)!r}{source} as the compilation cache folder: {error.strerror or error}; {remedy}."
        ) from error
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if previous and Path(previous) != folder:
        # JAX opens its disk cache once per process: without a reset, entries would keep
        # going to the previous folder.
        compilation_cache.reset_cache()
    return folder
