"""Keyed work on Ray Data without a Python call per key: rows hash-partitioned by their key, then one vectorised
call per block, which holds every row of each of its keys (`by_key`), and a join built on it (`join`)."""

from __future__ import annotations

from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

PARTITION_ROWS = 1_000_000  # rows a shuffle partition holds when no partition count is set


def partitions(rows: int, setting: int | None = None, per_partition: int = PARTITION_ROWS) -> int:
    """Partitions for a shuffle of `rows` rows: the setting when one is given, else one per `per_partition` rows
    (at least one), so partitions grow with the run and a small table is one block in one task."""
    if setting:
        return setting
    return max(1, -(-rows // max(per_partition, 1)))


def by_key(ds: Any, keys: list[str], fn: Any, num_partitions: int, **res: Any) -> Any:
    """`fn(block)` on blocks hash-partitioned by `keys`: every key's rows arrive in one call (the contract Ray
    Data's own `map_groups` relies on), and `fn` handles all of a block's keys at once. One partition is one
    block, gathered without a hash shuffle (whose aggregator actors cost seconds to start: a small table's
    shuffle is mostly that). `res`: the tasks' Ray resources."""
    spread = ds.repartition(1) if num_partitions <= 1 else ds.repartition(num_partitions, keys=keys)
    return spread.map_batches(fn, batch_size=None, batch_format="pyarrow", **res)


def schema_of(ds: Any) -> pa.Schema | None:
    """The Arrow schema of a Ray Dataset; None for one with no rows and no schema."""
    found = ds.schema()
    if found is None:
        return None
    base = getattr(found, "base_schema", found)
    return base if isinstance(base, pa.Schema) else None


def join(
    left: Any, right: Any, on: str, how: str, num_partitions: int, right_on: str | None = None, **res: Any
) -> Any:
    """Rows of `left` with the matching `right` columns (`how`: "inner" or "left outer"), by one hash shuffle of
    both sides and an Arrow join per block. Unlike Ray Data's own join it accepts empty blocks (Ray issue
    60013). The two sides' other column names must differ."""
    right_on = right_on or on
    lschema, rschema = schema_of(left), schema_of(right)
    if lschema is None:
        return left
    if rschema is None:
        rschema = pa.schema([pa.field(right_on, lschema.field(on).type)])
    extra = [f for f in rschema if f.name != right_on]
    both = pa.schema([*lschema, *extra, pa.field("_side", pa.int8())])
    tagged = left.map_batches(partial(_tag, schema=both, side=0), batch_format="pyarrow", **res).union(
        right.map_batches(partial(_tag, schema=both, side=1, rename=(right_on, on)), batch_format="pyarrow", **res)
    )
    out = pa.schema([*lschema, *extra])
    fn = partial(_join_block, on=on, how=how, left=lschema.names, right=[on, *(f.name for f in extra)], out=out)
    return by_key(tagged, [on], fn, num_partitions, **res)


def _tag(batch: pa.Table, schema: pa.Schema, side: int, rename: tuple[str, str] | None = None) -> pa.Table:
    if rename and rename[0] != rename[1]:
        batch = batch.rename_columns([rename[1] if c == rename[0] else c for c in batch.column_names])
    n = len(batch)
    cols = {
        f.name: batch.column(f.name).cast(f.type) if f.name in batch.column_names else pa.nulls(n, f.type)
        for f in schema
        if f.name != "_side"
    }
    return pa.table({**cols, "_side": pa.array([side] * n, pa.int8())}, schema=schema)


def _join_block(block: pa.Table, on: str, how: str, left: list[str], right: list[str], out: pa.Schema) -> pa.Table:
    if len(block) == 0:
        return out.empty_table()
    side = pc.equal(block.column("_side"), 0)
    lt, rt = block.filter(side).select(left), block.filter(pc.invert(side)).select(right)
    return lt.join(rt, keys=on, join_type=how).select(out.names).cast(out)
