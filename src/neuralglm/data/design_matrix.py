"""The formula's design matrix written straight into one preallocated float64 array.

formulaic builds a model matrix as a pandas frame: every dummy column a dense array, every
term a fresh copy, then a frame, ``to_numpy`` and ``ascontiguousarray``, each a pass over
newly allocated memory (at n = 10⁶, p = 100 each is 800 MB). Here formulaic still does all
of the thinking (parsing, the terms and their order, the full-rank rules, contrasts, levels,
stateful transforms, column names and the ``ModelSpec`` that ``predict`` and model files
keep) through a subclass of its own pandas materializer, which differs in what it hands back
for each column: a recipe instead of an array. Numeric columns stay the caller's arrays,
categorical factors become their integer codes plus a table of the contrast values of each
level (formulaic encodes one row per level, so its coding is used unchanged), and products
of factors are recorded, not computed. The recipes are then evaluated in row blocks directly
into the C-ordered float64 array the IRLS kernels read (:mod:`neuralglm.fit.linalg` works
on row blocks), the intercept written as ones; columns that lie side by side in one of the
frame's 2-d blocks are copied with one transposing copy per row block, and large designs are
written by two threads, each on its half of the rows.

Each value is computed with the same NumPy operations in the same order as formulaic's
(the factors with one column multiplied together first, that product multiplied in last
after the others from left to right, the term's scale applied at the end; integer and boolean columns keep their dtype until the final cast to float64),
so the matrix equals formulaic's bit for bit. Anything this path does not know (rows dropped
by formulaic, pandas extension dtypes, sparse or multi-column categorical values) raises
:class:`Unsupported` and the caller uses formulaic's own matrix.
"""

from __future__ import annotations

import functools
import itertools
import os
from typing import Any

import numpy as np
import pandas as pd

from neuralglm.data.validate import MAX_ABS_RESPONSE

# Rows per block: a block of the design (rows × p float64) stays in a core's cache while its
# columns are written one after the other (at p = 100, 2048 rows are 1.6 MB).
_BLOCK_BYTES = 2 * 1024 * 1024
_DOT_PIECE = 8192
# From this many values (32 MB) on, the design is written, and the columns are screened, by two
# threads (the machines are 2-core; NumPy's copies and single-threaded dots release the GIL).
_THREADED_SIZE = 4_000_000


class Unsupported(Exception):
    """A model matrix this path does not build: the caller falls back to formulaic's."""


class _Constant:
    """formulaic's constant column ``value * ones(n)``, made per block."""

    def __init__(self, value):
        self.value = value

    def block(self, start: int, stop: int):
        return self.value * np.ones(stop - start)

    def __rmul__(self, scale):  # the intercept: ``scale * constant`` in formulaic's order
        return _Product((self,), scale)


class _Coded:
    """A categorical factor's column: the contrast value of each level, looked up by the row's level code."""

    def __init__(self, codes: np.ndarray, table: np.ndarray):
        self.codes = codes
        self.table = table

    def block(self, start: int, stop: int):
        return self.table[self.codes[start:stop]]


class _Product:
    """``scale * reduce(multiply, parts)``: one column of a term, as formulaic computes it."""

    def __init__(self, parts: tuple, scale=1):
        self.parts = parts
        self.scale = scale

    def block(self, start: int, stop: int):
        values = functools.reduce(np.multiply, (_block(part, start, stop) for part in self.parts))
        # 1 * values is values (a bool column would become int, then the same 0.0/1.0).
        return values if _is_one(self.scale) else self.scale * values

    def source(self) -> np.ndarray | None:
        """The caller's own array when this column is a copy of it (one numeric part, scale 1)."""
        if len(self.parts) == 1 and _is_one(self.scale):
            part = self.parts[0]
            if isinstance(part, np.ndarray):
                return part
            if isinstance(part, _Product):
                return part.source()
        return None

    def is_ones(self) -> bool:
        return len(self.parts) == 1 and _is_one(self.scale) and isinstance(self.parts[0], _Constant) and _is_one(self.parts[0].value)


def _is_one(value) -> bool:
    return type(value) in (int, float) and value == 1


def _block(part, start: int, stop: int):
    return part[start:stop] if isinstance(part, np.ndarray) else part.block(start, stop)


def _numeric(values, n_rows: int) -> np.ndarray:
    """A numeric factor's values as a NumPy array without a copy (the caller's memory, read only)."""
    values = getattr(values, "__wrapped__", values)
    if isinstance(values, pd.Series):
        if not isinstance(values.dtype, np.dtype):
            raise Unsupported(f"extension dtype {values.dtype}")
        values = values.to_numpy(copy=False)
    if not isinstance(values, np.ndarray) or values.ndim != 1 or len(values) != n_rows or values.dtype.kind not in "biuf":
        raise Unsupported("numeric values that are not a 1-d array of numbers")
    return values


def _part(values, n_rows: int):
    if isinstance(values, _Coded | _Constant | _Product):
        return values
    return _numeric(values, n_rows)


def _materializer_class() -> type:
    from formulaic.materializers import PandasMaterializer
    from interface_meta import override

    class BlockMaterializer(PandasMaterializer):
        """formulaic's pandas materializer, returning column recipes; ``REGISTER_NAME`` stays ``'pandas'`` (in the spec too)."""

        @override
        def _init(self):
            super()._init()
            self._codes: dict[str, np.ndarray] = {}
            self.known: set | None = None  # memory keys of the data's columns found clean (set by the caller)
            self.clean = False  # after the build: every value finite and within range

        @override
        def _encode_constant(self, value, metadata, encoder_state, spec, drop_rows):
            if drop_rows:
                raise Unsupported("rows dropped by formulaic")
            return _Constant(value)

        @override
        def _encode_evaled_factor(self, factor, spec, drop_rows, reduced_rank=False):
            if drop_rows:
                raise Unsupported("rows dropped by formulaic")
            if factor.metadata.kind.value != "categorical" or factor.metadata.encoded:
                return super()._encode_evaled_factor(factor, spec, drop_rows, reduced_rank=reduced_rank)
            proxy, codes = self._levels(factor)
            encoded = super()._encode_evaled_factor(proxy, spec, drop_rows, reduced_rank=reduced_rank)
            return {name: _Coded(codes, _table(values)) for name, values in encoded.items()}

        def _levels(self, factor):
            """The factor with one row per level (formulaic encodes it as it would the data) and each row's level code."""
            from formulaic.materializers.types import EvaluatedFactor, FactorValues

            values = factor.values.__wrapped__
            if isinstance(values, dict) or getattr(values, "ndim", 1) != 1 or len(values) != self.nrows:
                raise Unsupported("categorical values that are not one column")
            # As formulaic's encode_contrasts reads them: pandas.Series(data).astype("category").
            categorical = pd.Series(values).astype("category")
            codes = self._codes.get(factor.expr)
            if codes is None:
                codes = np.asarray(categorical.cat.codes)
                if (codes < 0).any():  # missing or, with C(x, levels=...), unlisted values: formulaic warns
                    raise Unsupported("categorical values outside the levels")
                self._codes[factor.expr] = codes
            levels = pd.Series(pd.Categorical.from_codes(np.arange(len(categorical.cat.categories)), dtype=categorical.dtype))
            proxy = FactorValues(levels, metadata=factor.values.__formulaic_metadata__)
            return EvaluatedFactor(factor=factor.factor, values=proxy, variables=factor.variables), codes

        @override
        def _get_columns_for_term(self, factors, spec, scale=1):
            # formulaic's order (pandas materializer): names from the product of the factors'
            # columns, later factors varying slowest; single-column factors multiplied first
            # and appended as the last factor of every product.
            names = [":".join(reversed(product)) for product in itertools.product(*reversed(factors))]
            solo = [i for i, factor in enumerate(factors) if len(factor) == 1]
            rest = [dict(factor) for i, factor in enumerate(factors) if i not in solo]
            if solo:
                parts = tuple(_part(next(iter(factors[i].values())), self.nrows) for i in solo)
                rest.append({"": parts[0] if len(parts) == 1 else _Product(parts)})
            out = {}
            for i, reversed_product in enumerate(itertools.product(*(factor.values() for factor in reversed(rest)))):
                out[names[i]] = _Product(tuple(_part(p, self.nrows) for p in reversed(reversed_product)), scale)
            return out

        @override
        def _combine_columns(self, cols, spec, drop_rows):
            names = [name for name, _ in cols]
            if drop_rows or spec.output != "pandas" or len(set(names)) < len(names):
                raise Unsupported("rows dropped by formulaic, an output other than pandas, or repeated column names")
            recipes = [value if isinstance(value, _Product) else _Product((_part(value, self.nrows),)) for _, value in cols]
            X, self.clean = _fill(recipes, self.nrows, self.known)
            return X

    return BlockMaterializer


_MATERIALIZER: list[type] = []


def materializer_class() -> type:
    """The block-writing materializer class (built once, on first use: formulaic is imported lazily)."""
    if not _MATERIALIZER:
        _MATERIALIZER.append(_materializer_class())
    return _MATERIALIZER[0]


def _table(values) -> np.ndarray:
    """The encoded values of one row per level, plus a last row of zeros (unreached: codes are ≥ 0)."""
    table = np.asarray(getattr(values, "__wrapped__", values))
    if table.ndim != 1 or table.dtype.kind not in "biuf":
        raise Unsupported("categorical encoding that is not numeric")
    return table


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _source_runs(sources: list[np.ndarray | None]) -> list[tuple[int, int, np.ndarray]]:
    """Runs of consecutive columns that are equally spaced rows of one array (a frame's 2-d block).

    Returns ``(first column, number of columns, (columns, rows) view)``: each run is copied
    into a row block of the design with one transposing copy instead of one copy per column.
    The view covers exactly the memory of the run's columns, and is read only.
    """

    def follows(array: np.ndarray | None, first: np.ndarray) -> bool:
        return array is not None and array.dtype == first.dtype and array.strides == first.strides and len(array) == len(first)

    runs = []
    j = 0
    while j < len(sources):
        first, count = sources[j], 1
        if first is not None and j + 1 < len(sources) and follows(sources[j + 1], first):
            stride = _address(sources[j + 1]) - _address(first)  # pyright: ignore[reportArgumentType]
            while (
                stride != 0
                and j + count < len(sources)
                and follows(sources[j + count], first)
                and _address(sources[j + count]) - _address(first) == count * stride  # pyright: ignore[reportArgumentType]
            ):
                count += 1
            if count > 1:
                view = np.lib.stride_tricks.as_strided(
                    first, shape=(count, len(first)), strides=(stride, first.strides[0]), writeable=False
                )
                runs.append((j, count, view))
        j += count
    return runs


def certainly_clean(values: np.ndarray) -> bool:
    """True when a numeric column certainly has no NaN, no ±inf and no value beyond ±MAX_ABS_RESPONSE.

    One pass and no temporary array: the sum of squares is finite and at most MAX² only then
    (a NaN or inf makes it NaN or inf). False means "look closer" (the exact checks decide):
    a float32 column's float32 sum of squares may overflow with values well within range.
    """
    kind = values.dtype.kind
    if kind in "biu":  # integers and booleans: never missing, |value| < 1e19
        return True
    if values.dtype != np.float64 or values.ndim != 1:
        return False
    total = 0.0
    with np.errstate(all="ignore"):
        # In pieces below OpenBLAS's threading threshold (10,000): its threaded dot was 9× slower
        # than one thread on the 2 loaded cores (9.2 against 1.0 ms per column of 10⁶ rows).
        for start in range(0, len(values), _DOT_PIECE):
            piece = values[start : start + _DOT_PIECE]
            total += float(np.dot(piece, piece))
    return total <= MAX_ABS_RESPONSE**2


def memory_key(values: np.ndarray) -> tuple:
    """What identifies a column's memory: the same key means the same values (nothing writes to them meanwhile)."""
    return (_address(values), values.strides, len(values), values.dtype.str)


def _clean_columns(columns: list[_Product], sources: list[np.ndarray | None], known: set) -> list[bool | None]:
    """For each column, whether it is certainly clean (True), not (False), or to be checked as it is written (None)."""
    clean: list[bool | None] = []
    for column, source in zip(columns, sources, strict=True):
        coded = column.parts[0] if len(column.parts) == 1 and _is_one(column.scale) else None
        if source is not None:
            clean.append(source.dtype.kind in "biu" or memory_key(source) in known or certainly_clean(source))
        elif column.is_ones():
            clean.append(True)
        elif isinstance(coded, _Coded):
            clean.append(certainly_clean(coded.table))
        else:
            clean.append(None)
    return clean


def _fill(columns: list[_Product], n_rows: int, known: set | None) -> tuple[np.ndarray, bool]:
    """The C-ordered float64 (n_rows, len(columns)) matrix of the column recipes, written in row blocks.

    With ``known`` (memory keys of columns already found clean), also whether every value is
    certainly finite and within ±MAX_ABS_RESPONSE (False: the caller runs the exact checks).
    """
    n_columns = len(columns)
    X = np.empty((n_rows, n_columns), dtype=np.float64)
    sources = [column.source() for column in columns]
    runs = _source_runs(sources)
    in_runs = {j for first, count, _ in runs for j in range(first, first + count)}
    ones = [j for j, column in enumerate(columns) if column.is_ones() and j not in in_runs]
    others = [(j, column) for j, column in enumerate(columns) if j not in in_runs and j not in ones]
    clean = _clean_columns(columns, sources, known) if known is not None else [True] * n_columns
    checked = {j for j, _ in others if clean[j] is None}
    step = max(256, _BLOCK_BYTES // (8 * max(n_columns, 1)))

    def write(rows: range) -> dict[int, float]:
        squares = dict.fromkeys(checked, 0.0)
        for start in rows:
            stop = min(start + step, n_rows)
            block = X[start:stop]
            for first, count, view in runs:
                block[:, first : first + count] = view[:, start:stop].T
            for j in ones:
                block[:, j] = 1.0
            for j, column in others:
                values = column.block(start, stop)
                block[:, j] = values
                if j in squares and values.dtype.kind == "f":
                    as_double = np.asarray(values, dtype=np.float64)
                    with np.errstate(all="ignore"):
                        squares[j] += float(np.dot(as_double, as_double))
        return squares

    parts = _in_threads(write, _pieces(range(0, n_rows, step), n_rows * n_columns))
    totals = [sum(part[j] for part in parts) for j in checked]
    ok = all(c is not False for c in clean) and all(total <= MAX_ABS_RESPONSE**2 for total in totals)
    return X, ok


def _pieces(items, size: int) -> list:
    """``items`` whole, or in two halves for two threads when the work (``size`` values) is large and there are two cores."""
    if size < _THREADED_SIZE or (os.cpu_count() or 1) < 2 or len(items) < 2:
        return [items]
    middle = len(items) // 2
    return [items[:middle], items[middle:]]


def clean_flags(columns: list[np.ndarray]) -> list[bool]:
    """:func:`certainly_clean` of each column (in two threads for large data)."""
    pieces = _pieces(columns, sum(len(c) for c in columns))
    return [flag for part in _in_threads(lambda piece: [certainly_clean(c) for c in piece], pieces) for flag in part]


def _in_threads(work, pieces: list) -> list:
    """``work`` on each piece, in threads when there are several (NumPy's copies and BLAS release the GIL)."""
    if len(pieces) == 1:
        return [work(pieces[0])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(pieces)) as pool:
        return list(pool.map(work, pieces))


def block_model_matrix(text: str, data: pd.DataFrame, context: dict, known: set | None) -> tuple[np.ndarray, Any, bool]:
    """The model matrix of the formula side ``text`` as formulaic's ``model_matrix(text, data, na_action="ignore", context=context)`` builds it.

    Returns the C-ordered float64 matrix, formulaic's ``ModelSpec`` and whether every value
    is certainly finite and within range (see :func:`_fill`; ``known``: memory keys of the
    data's columns already found clean). Raises :class:`Unsupported` when formulaic's own
    matrix must be used instead.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": [0.5, 1.5, 2.5], "g": ["a", "b", "a"]})
    >>> X, spec, clean = block_model_matrix("x + C(g)", frame, {}, set())
    >>> X.tolist(), list(spec.column_names), clean
    ([[1.0, 0.5, 0.0], [1.0, 1.5, 1.0], [1.0, 2.5, 0.0]], ['Intercept', 'x', 'C(g)[T.b]'], True)
    """
    from formulaic import ModelSpec

    # As formulaic.model_matrix does: the parser's context is a pandas materializer's.
    parser_context = ModelSpec.from_spec([], na_action="ignore").get_materializer(data, context=context).layered_context
    spec = ModelSpec.from_spec(text, context=parser_context, na_action="ignore")
    materializer = materializer_class()(data, context=context)
    materializer.known = known
    matrix = materializer.get_model_matrix(spec)
    X = matrix.__wrapped__
    if not isinstance(X, np.ndarray):  # pragma: no cover - formulaic returned something else
        raise Unsupported("formulaic did not combine the columns here")
    return X, matrix.model_spec, bool(materializer.clean)
