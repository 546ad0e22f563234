"""Persistent cache of JAX's compiled functions, for fits in many short processes.

Within one Python process neuralglm compiles each training loop once per data shape and reuses
it (DESIGN.md §10). A *new* process compiles again: about 2 s for the first L-BFGS fit and
1.7 s for the first Adam fit on the 2-core benchmark machine. JAX can keep compiled code on
disk; with that cache warm, the first L-BFGS fit of a process (n = 20,000, hidden (32,), 50
iterations) took 0.78 s instead of 2.1 s, and the benchmark's Adam first fit 2.15 s instead
of 2.81 s (benchmarks/README.md).

The cache is a process-wide JAX setting that writes to disk, so the library never turns it on
by itself in Python: call :func:`enable_compilation_cache` in a script. The command line, a new
process per command, turns it on by default (:func:`enable_for_command_line`) in
:func:`default_cache_dir`; ``--no-cache`` or the environment variable ``NEURALGLM_NO_CACHE=1``
turns it off. Folders are created private to the user (mode 0o700): JAX loads compiled code
from them, so anyone who can write there could run code in your processes; the command line
refuses a folder that another user owns or can write to.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from neuralglm.errors import SpecificationError

CACHE_DIR_VARIABLE = "NEURALGLM_CACHE_DIR"
NO_CACHE_VARIABLE = "NEURALGLM_NO_CACHE"
_PRIVATE = 0o700


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
    path : folder for the cache; default :func:`default_cache_dir`. Created if missing, with
        its missing parents, private to the user (mode 0o700).

    Returns
    -------
    pathlib.Path
        The folder in use.

    Raises
    ------
    SpecificationError
        ``path`` is not a path, the folder cannot be created (a file of that name exists,
        no permission), or another user owns it or can write to it.

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
    _make_private_folder(folder, from_variable=from_variable)
    _refuse_shared_folder(folder, from_variable=from_variable)  # as the command line: JAX runs what it finds there
    _configure_jax(folder)
    return folder


def enable_for_command_line(no_cache: bool = False) -> Path | None:
    """The command line's cache: on by default in :func:`default_cache_dir`; returns the folder, or None when off.

    Off with ``no_cache`` (the ``--no-cache`` flag) or ``$NEURALGLM_NO_CACHE`` set to anything
    but ``0``/``false``/``no``. The folder must be private: owned by the user and writable by
    no one else. A folder named by ``$NEURALGLM_CACHE_DIR`` that cannot be made or is not
    private is an error (the user chose it); the default folder is skipped with a one-line note
    on stderr instead, so that a read-only home never stops a command.

    Examples
    --------
    >>> enable_for_command_line(no_cache=True) is None
    True
    """
    if no_cache or os.environ.get(NO_CACHE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no"):
        return None
    from_variable = bool(os.environ.get(CACHE_DIR_VARIABLE))
    try:
        folder = default_cache_dir()
    except RuntimeError as error:  # Path.home() without $HOME or a password-file entry
        print(f"neuralglm: note: running without the compilation cache: {error}.", file=sys.stderr)
        return None
    try:
        _make_private_folder(folder, from_variable=from_variable)
        _refuse_shared_folder(folder, from_variable=from_variable)
    except SpecificationError as error:
        if from_variable:
            raise
        print(f"neuralglm: note: running without the compilation cache. {error}", file=sys.stderr)
        return None
    _configure_jax(folder)
    return folder


def _remedy(from_variable: bool, default: str) -> tuple[str, str]:
    if from_variable:
        return f" (from ${CACHE_DIR_VARIABLE})", f"set ${CACHE_DIR_VARIABLE} to a folder you can write to, or unset it"
    return "", default


def _make_private_folder(folder: Path, *, from_variable: bool) -> None:
    """Create ``folder`` and its missing parents with mode 0o700 (``Path.mkdir(parents=True)`` gives parents the umask's mode)."""
    missing = [folder, *folder.parents]
    missing = [path for path in missing if not path.exists()][::-1]
    try:
        for path in missing:
            path.mkdir(mode=_PRIVATE, exist_ok=True)
        if not folder.is_dir():
            raise NotADirectoryError(20, "Not a directory")
    except OSError as error:
        source, remedy = _remedy(from_variable, "pass a folder you can write to")
        raise SpecificationError(
            f"Cannot use {str(folder)!r}{source} as the compilation cache folder: {error.strerror or error}; {remedy}."
        ) from error


def _refuse_shared_folder(folder: Path, *, from_variable: bool) -> None:
    """JAX loads compiled code from the cache: a folder another user owns or can write to is not used."""
    status = folder.stat()
    owner = getattr(os, "getuid", lambda: status.st_uid)()  # Windows has no owners to compare
    if status.st_uid == owner and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return
    who = "another user owns it" if status.st_uid != owner else "other users can write to it"
    source, remedy = _remedy(from_variable, f"run `chmod go-w {folder}`, set ${CACHE_DIR_VARIABLE} to a private folder, or pass --no-cache")
    raise SpecificationError(
        f"Cannot use {str(folder)!r}{source} as the compilation cache folder: {who}, and JAX loads compiled code from it; {remedy}."
    )


def _configure_jax(folder: Path) -> None:
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if previous and Path(previous) != folder:
        # JAX opens its disk cache once per process: without a reset, entries would keep
        # going to the previous folder.
        compilation_cache.reset_cache()
