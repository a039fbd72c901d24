"""Write accepted rows to `samples/` and rejected rows to `rejects/` as Parquet in the versioned schemas.

Each Ray batch becomes at most one file per table, `part-<run token>-<hash of its ids>.parquet` (a retried batch
rewrites the same name; another run's files never clash with this one's), written to a hidden temp file first, then
renamed, so readers never see partial files.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from dataengine.core import schema
from dataengine.core.ids import content_hash, run_token
from dataengine.core.metrics import StageMetrics
from dataengine.core.stage_stats import named
from dataengine.core.storage import join, write_parquet_atomic
from dataengine.ops.base import DatasetStage, RunContext, StageConfig

RESULT_SCHEMA = pa.schema([("table", pa.string()), ("file", pa.string()), ("rows", pa.int64())])


class ExportConfig(StageConfig):
    needs = frozenset({"image"})

    op: Literal["export"] = "export"
    batch_size: int = Field(500, ge=1, description="rows per Parquet file (at most)")
    images: Literal["embed", "reference"] = Field(
        "embed",
        description="embed: normalised bytes in samples.image; reference: image_path/image_root for images read "
        "from files, while inline ones (Parquet bytes, tar members) are embedded, having no file to refer to",
    )


def samples_table(rows: pa.Table, run_id: str, images: str) -> pa.Table:
    n = len(rows)
    path_based = pc.invert(rows.column("image_inline"))
    cols = {name: rows.column(name) for name in rows.column_names}
    cols["run_id"] = pa.array([run_id] * n, pa.string())
    embed = rows.column("image_out")
    cols["image"] = embed if images == "embed" else pc.if_else(path_based, pa.nulls(n, pa.binary()), embed)
    cols["image_path"] = pc.if_else(path_based, rows.column("image_path"), pa.nulls(n, pa.string()))
    cols["image_root"] = pc.if_else(path_based, rows.column("image_root"), pa.nulls(n, pa.string()))
    return schema.conform(pa.table(cols), schema.load("samples"))


def rejects_table(rows: pa.Table, run_id: str) -> pa.Table:
    n = len(rows)
    cols = {name: rows.column(name) for name in rows.column_names}
    cols["run_id"] = pa.array([run_id] * n, pa.string())
    cols["image"] = pc.if_else(rows.column("image_inline"), rows.column("image"), pa.nulls(n, pa.binary()))
    return schema.conform(pa.table(cols), schema.load("rejects"))


def write_parts(
    block: pa.Table, output: str, run_id: str, images: str, labels: dict[str, str] | None = None, rows: int = 500
) -> pa.Table:
    """Ray Data UDF: one block of working rows -> Parquet files of at most `rows` rows, samples and rejects
    apart; returns what it wrote."""
    started, metrics = time.perf_counter(), StageMetrics(labels)
    rejected = pc.is_valid(block.column("reason"))
    results = []
    for name, table in (
        ("samples", samples_table(block.filter(pc.invert(rejected)), run_id, images)),
        ("rejects", rejects_table(block.filter(rejected), run_id)),
    ):
        for start in range(0, len(table), rows):
            part = table.slice(start, rows)
            digest = content_hash("\n".join(sorted(part.column("id").to_pylist())).encode(), 10)
            file = join(output, name, f"part-{run_token(run_id)}-{digest}.parquet")
            write_parquet_atomic(file, part)
            results.append({"table": name, "file": file, "rows": len(part)})
            metrics.inc("dataengine_export_rows", len(part), table=name)
    metrics.batch(block, block, time.perf_counter() - started)
    return pa.Table.from_pylist(results, schema=RESULT_SCHEMA)


class Export(DatasetStage):
    """The run's sink: each block becomes at most one samples and one rejects file; the stage's dataset is the
    list of files written (one small row per file), which the runner consumes to execute the run."""

    name = "export"
    Config = ExportConfig

    @classmethod
    def attach(cls, ds: Any, config: StageConfig, ctx: RunContext) -> Any:
        cfg: ExportConfig = config  # type: ignore[assignment]
        return ds.map_batches(
            named(write_parts, cls.name),
            fn_kwargs={
                "output": ctx.output,
                "run_id": ctx.run_id,
                "images": cfg.images,
                "labels": ctx.stage_labels(cls.name),
                "rows": cfg.batch_size,
            },
            batch_format="pyarrow",
            **cfg.ray_args(),
        )
