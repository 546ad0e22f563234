"""A Dask DataFrame as data: each pass maps the partitions to partial sums on the workers and reduces them as a tree.

Works with whatever scheduler is active: the ``dask.distributed.Client`` in use (a local
cluster or a remote one), else Dask's threads. The batch plan (formula, family and the
template design with its formulaic spec) is found once on the client and sent to every
worker once per fit; the partitions' design blocks are then built once and kept in the
workers' memory (``dask.persist``, as Spark caches its instances: the design takes 8·p bytes
a row, spread over the workers), and what comes back from a pass is p×p sums, never rows.
The first pass returns, per partition, one row for each factor level it meets (to build the
design's levels) and its row counts.
"""

from __future__ import annotations

from neuralglm.data.batches import BatchPlan, ScanReport
from neuralglm.family.family import Family
from neuralglm.family.link import Link
from neuralglm.fit.accumulated_sums import Block, Request, block_sums, combine


def is_dask_frame(data) -> bool:
    """Whether ``data`` is a Dask DataFrame (checked without importing Dask).

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame({"y": [1.0]}))
    False
    """
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "to_delayed") and hasattr(data, "npartitions")


def _block(frame, plan: BatchPlan) -> Block | None:
    return plan.block(frame)


def _block_sums(block: Block | None, family: Family, link: Link, request: Request) -> dict:
    return {} if block is None else block_sums(block, family, link, request)


def _scan(frame, plan: BatchPlan) -> ScanReport:
    return plan.scan(frame)


class DaskSource:
    """Passes over the partitions of a Dask DataFrame (see the module docstring)."""

    description = "a Dask DataFrame"

    def __init__(self, frame, *, fan_in: int = 8) -> None:
        self.frame = frame
        self.fan_in = fan_in
        self._shipped: tuple[BatchPlan, object] | None = None
        self._persisted: tuple[BatchPlan, list] | None = None

    def use_columns(self, formula: str, arguments: dict) -> None:
        """All columns are read (a Dask frame selects its columns lazily; select them before fitting to read fewer)."""

    def _plan_on_workers(self, plan: BatchPlan):
        """The plan sent to every worker once (scattered to a distributed client's workers; else kept as it is)."""
        if self._shipped is not None and self._shipped[0] is plan:
            return self._shipped[1]
        try:
            from distributed import default_client

            shipped = default_client().scatter(plan, broadcast=True, hash=False)
        except (ImportError, ValueError):  # no distributed client: the local scheduler shares memory
            shipped = plan
        self._shipped = (plan, shipped)
        return shipped

    def scan(self, plan: BatchPlan) -> list[ScanReport]:
        import dask

        parts = self.frame.to_delayed()
        return list(dask.compute(*[dask.delayed(_scan)(part, plan) for part in parts]))

    def _blocks(self, plan: BatchPlan) -> list:
        """The partitions' design blocks, built once per fit and kept in the workers' memory (as Spark caches its instances)."""
        import dask

        if self._persisted is None or self._persisted[0] is not plan:
            shipped = self._plan_on_workers(plan)
            blocks = dask.persist(*[dask.delayed(_block)(part, shipped) for part in self.frame.to_delayed()])
            self._persisted = (plan, list(blocks))
        return self._persisted[1]

    def close(self) -> None:
        """Release the persisted design blocks (the workers free their memory)."""
        self._persisted = None
        self._shipped = None

    def run_pass(self, plan: BatchPlan, family: Family, link: Link, request: Request) -> dict:
        import dask

        sums = [dask.delayed(_block_sums)(block, family, link, request) for block in self._blocks(plan)]
        while len(sums) > 1:  # a tree of reductions: each worker adds a few p×p sums, not the client all of them
            sums = [dask.delayed(_combine_many)(*sums[i : i + self.fan_in]) for i in range(0, len(sums), self.fan_in)]
        (total,) = dask.compute(sums[0])
        return total


def _combine_many(*parts: dict) -> dict:
    total: dict = {}
    for part in parts:
        total = combine(total, part)
    return total
