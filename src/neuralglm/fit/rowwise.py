"""Moved to :mod:`neuralglm.family.rowwise` (the family maths evaluated over row chunks); re-exported here."""

from neuralglm.family.rowwise import CHUNK_ROWS, map_rows

__all__ = ["CHUNK_ROWS", "map_rows"]
