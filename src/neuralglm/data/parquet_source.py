"""Parquet data read in row batches with pyarrow: a file, a folder of files, or a ``pyarrow.dataset.Dataset``.

Only the columns the formula and the offset/weights arguments name are read. Rows are
numbered 0, 1, … in the order of the dataset (files in name order, then row groups), and
those numbers label the rows in error messages, as ``pd.read_parquet(path)`` would.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from neuralglm.data.batches import ARGUMENTS, BatchPlan, ScanReport
from neuralglm.errors import DataError
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.accumulated_sums import Block, Request, block_sums, combine

# 16,384 rows: at p = 20 a design block of 2.5 MB. Building a batch's design makes a few copies
# of it, so the batch size sets most of the memory a fit needs beyond the reader's buffers.
BATCH_ROWS = 1 << 14


def is_parquet_source(data) -> bool:
    """Whether ``data`` is a path to a ``.parquet`` file or a folder, or a ``pyarrow.dataset.Dataset``.

    Examples
    --------
    >>> is_parquet_source("claims.parquet"), is_parquet_source({"y": [1]})
    (True, False)
    """
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        return path.suffix.lower() in (".parquet", ".pq") or path.is_dir()
    # A pyarrow.dataset.Dataset (not a Table: that is in memory already, read as a frame).
    return type(data).__module__.startswith("pyarrow") and hasattr(data, "get_fragments") and hasattr(data, "to_batches")


def open_dataset(data):
    """The ``pyarrow.dataset.Dataset`` of a path or dataset; a clear :class:`DataError` for a missing path."""
    import pyarrow.dataset as ds

    if not isinstance(data, str | os.PathLike):
        return data
    path = Path(data)
    if not path.exists():
        raise DataError(f"The Parquet data {str(data)!r} do not exist: give the path of a .parquet file or of a folder of them.")
    # Without pre-buffering, a file's column chunks are read as they are decoded, not all at
    # once: 50 MB less resident memory when reading 500,000-row files (benchmarks/streaming.py).
    options = ds.ParquetFragmentScanOptions(pre_buffer=False)
    try:
        return ds.dataset(str(path), format=ds.ParquetFileFormat(default_fragment_scan_options=options))
    except Exception as error:  # pyarrow raises several types for unreadable files
        raise DataError(f"Cannot read {str(data)!r} as Parquet data: {error}") from None


class ParquetSource:
    """Row batches of a Parquet dataset as pandas frames labelled by row number; passes of accumulated sums over them."""

    description = "read from Parquet in batches"

    def __init__(self, data, *, batch_rows: int = BATCH_ROWS) -> None:
        self.dataset = open_dataset(data)
        self.batch_rows = batch_rows
        self.columns: list[str] | None = None
        self._cache: tuple[BatchPlan, list[Path]] | None = None
        self._folder: Path | None = None

    def use_columns(self, formula: str, arguments: dict) -> None:
        """Read only the columns named in the formula or the arguments (all of them for R's ``.``)."""
        names = list(self.dataset.schema.names)
        rhs = formula.split("~", 1)[-1]
        if re.search(r"(^|[\s+*:(~-])\.($|[\s+*:)-])", rhs):
            self.columns = names
            return
        wanted = {value for key, value in arguments.items() if key in ARGUMENTS and isinstance(value, str)}
        self.columns = [name for name in names if name in wanted or name in formula]

    def _batches(self) -> Iterator:
        """The record batches, file by file, read as they are consumed.

        pyarrow's dataset scanner reads ahead in threads while the consumer builds designs:
        with a consumer at 30 ms a batch it held 270 MB more than reading each file's batches
        in turn (38 MB) on 2e6 rows. The scanner is kept for datasets whose files do not hold
        every column read (partition keys in folder names).
        """
        import pyarrow.parquet as pq

        fragments = self.dataset.get_fragments()
        first = next(iter(self.dataset.get_fragments()), None)
        wanted = set(self.columns or self.dataset.schema.names)
        if first is None or getattr(first, "path", None) is None or not wanted <= set(first.physical_schema.names):
            yield from self.dataset.to_batches(columns=self.columns, batch_size=self.batch_rows, batch_readahead=1, fragment_readahead=1)
            return
        filesystem = self.dataset.filesystem
        for fragment in fragments:
            with filesystem.open_input_file(fragment.path) as stream:
                file = pq.ParquetFile(stream, pre_buffer=False)
                yield from file.iter_batches(batch_size=self.batch_rows, columns=self.columns, use_threads=False)

    def frames(self) -> Iterator[pd.DataFrame]:
        """The batches in order, as pandas frames indexed by row number."""
        start = 0
        for batch in self._batches():
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
            _release_freed_memory()

    def scan(self, plan: BatchPlan) -> list[ScanReport]:
        return [plan.scan(frame) for frame in self.frames()]

    def _blocks(self, plan: BatchPlan) -> Iterator[Block]:
        """The design blocks: built from the batches in the first pass and written to a scratch folder, read back after.

        Building a batch's design (formulaic) costs far more than its Gram, and IRLS makes a
        pass per iteration; the blocks are therefore kept on disk (8·p bytes a row, as Spark
        spills cached data), one block in memory at a time, and the folder is removed by
        :meth:`close` when the fit ends.
        """
        if self._cache is not None and self._cache[0] is plan:
            for path in self._cache[1]:
                yield _load_block(path)
            return
        self.close()
        folder = Path(tempfile.mkdtemp(prefix="neuralglm-blocks-"))
        self._folder = folder
        paths = []
        for number, frame in enumerate(self.frames()):
            block = plan.block(frame)
            if block is None:
                continue
            paths.append(_save_block(block, folder / f"block-{number}"))
            yield block
        self._cache = (plan, paths)

    def run_pass(self, plan: BatchPlan, family: Family, link: Link, request: Request) -> dict:
        total: dict = {}
        for block in self._blocks(plan):
            total = combine(total, block_sums(block, family, link, request))
        return total

    def close(self) -> None:
        """Remove the scratch folder of design blocks, if any."""
        self._cache = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _release_freed_memory() -> None:
    """Give freed heap memory back to the system (glibc only).

    Building a batch's design allocates and frees arrays of a few MB; glibc keeps such freed
    memory in its heap, where it grew the resident size with the number of batches.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()  # mimalloc and jemalloc keep freed pages too
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def _save_block(block: Block, stem: Path) -> Path:
    vectors = [block.y, block.prior, block.offset] + ([] if block.freq is None else [block.freq])
    np.save(stem.with_suffix(".X.npy"), block.X, allow_pickle=False)
    np.save(stem.with_suffix(".v.npy"), np.vstack(vectors), allow_pickle=False)
    return stem


def _load_block(stem: Path) -> Block:
    X = np.load(stem.with_suffix(".X.npy"), allow_pickle=False)
    vectors = np.load(stem.with_suffix(".v.npy"), allow_pickle=False)
    return Block(X, vectors[0], vectors[1], vectors[3] if len(vectors) > 3 else None, vectors[2])


def write_predictions(fit, data, path, *, type: str = "response", keep=(), batch_rows: int = BATCH_ROWS) -> None:
    """Predictions of ``fit`` for every row of the Parquet ``data``, written to the Parquet file ``path`` batch by batch.

    The file has one column named ``type`` (``"response"`` or ``"link"``), after the columns of
    ``data`` named in ``keep`` (e.g. an identifier), one row per row of ``data`` in its order.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd, neuralglm as ng
    >>> df = ng.datasets.load_insurance()
    >>> fit = ng.glm("claims ~ age", df, family="poisson", exposure="holders")
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> df.to_parquet(folder / "in.parquet")
    >>> write_predictions(fit, folder / "in.parquet", folder / "out.parquet", keep=["district"])
    >>> out = pd.read_parquet(folder / "out.parquet")
    >>> list(out.columns), bool((out["response"].to_numpy() == fit.predict(df).to_numpy()).all())
    (['district', 'response'], True)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = ParquetSource(data, batch_rows=batch_rows)
    writer = None
    try:
        for frame in source.frames():
            values = fit.predict(frame, type=type)
            table = pa.Table.from_pandas(
                pd.DataFrame({**{name: frame[name] for name in keep}, type: values.to_numpy()}), preserve_index=False
            )
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
