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

from dataengine import schema, stage_stats
from dataengine.ids import content_hash, run_token
from dataengine.metrics import StageMetrics, stage_labels
from dataengine.ops.base import StageConfig
from dataengine.stage_stats import named
from dataengine.storage import join, write_parquet_atomic

RESULT_SCHEMA = pa.schema([("table", pa.string()), ("file", pa.string()), ("rows", pa.int64())])


class ExportConfig(StageConfig):
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
    batch: pa.Table, output: str, run_id: str, images: str, labels: dict[str, str] | None = None
) -> pa.Table:
    """Ray Data UDF: one batch of working rows -> up to two Parquet files; returns what it wrote."""
    started, metrics = time.perf_counter(), StageMetrics(labels)
    rejected = pc.is_valid(batch.column("reason"))
    results = []
    for name, part in (
        ("samples", samples_table(batch.filter(pc.invert(rejected)), run_id, images)),
        ("rejects", rejects_table(batch.filter(rejected), run_id)),
    ):
        if len(part) == 0:
            continue
        digest = content_hash("\n".join(sorted(part.column("id").to_pylist())).encode(), 10)
        file = join(output, name, f"part-{run_token(run_id)}-{digest}.parquet")
        write_parquet_atomic(file, part)
        results.append({"table": name, "file": file, "rows": len(part)})
        metrics.inc("dataengine_export_rows", len(part), table=name)
    metrics.batch(batch, batch, time.perf_counter() - started)
    return pa.Table.from_pylist(results, schema=RESULT_SCHEMA)


def export(
    ds: Any,
    cfg: ExportConfig,
    output: str,
    run_id: str,
    labels: dict[str, str] | None = None,
    stats: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Run the writes on Ray and return the list of files written (table, file, rows). `labels` ({pipeline,
    run}) tag the stage's metrics (dataengine.metrics); None records none. `stats`, if given, receives the
    whole plan's per-stage throughput (dataengine.stage_stats)."""
    written = ds.map_batches(
        named(write_parts, cfg.op),
        fn_kwargs={
            "output": output,
            "run_id": run_id,
            "images": cfg.images,
            "labels": stage_labels(labels, cfg.op),
        },
        batch_format="pyarrow",
        **cfg.ray_args(),
    )
    files = sorted(written.take_all(), key=lambda r: (r["table"], r["file"]))
    if stats is not None:
        stats.extend(stage_stats.of_dataset(written, sum(f["rows"] for f in files)))
    return files
