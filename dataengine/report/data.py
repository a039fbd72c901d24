"""The numbers behind a run report, computed with polars over the run's Parquet files (never from the manifest)."""

from __future__ import annotations

from typing import Any

import polars as pl

from dataengine.report.summary import run_stats

SCORE_COLUMNS = ["match_en", "match_zh", "loglik_en", "loglik_zh", "translation_drift"]


def columns(files: list[str]) -> set[str]:
    """Column names of a table's files (one schema per table and run), empty when there are none."""
    return set(pl.read_parquet_schema(files[0])) if files else set()


def scan(files: list[str], wanted: list[str]) -> pl.LazyFrame | None:
    """The wanted columns that exist in these files, or None without files."""
    present = columns(files)
    return pl.scan_parquet(files).select([c for c in wanted if c in present]) if files else None


def funnel(record: dict[str, Any], rejects_by_stage: list[dict[str, Any]], inputs: int) -> list[dict[str, Any]]:
    """Rows left after each stage, in pipeline order: ingest, the spec's stages, then any other reject stage."""
    order = ["ingest"] + [s["op"] for s in (record.get("config") or {}).get("stages", []) if s["op"] != "export"]
    counts = {r["stage"]: r["len"] for r in rejects_by_stage}
    order += sorted(set(counts) - set(order))
    left, out = inputs, []
    for stage in order:
        left -= counts.get(stage, 0)
        out.append({"stage": stage, "rejected": counts.get(stage, 0), "left": left})
    return out


def tile_grids(sample_files: list[str]) -> list[dict[str, Any]]:
    """Accepted samples per InternVL tile grid (cols x rows), most frequent first; empty without a tile stage."""
    lf = scan(sample_files, ["grid_cols", "grid_rows", "num_tiles"])
    if lf is None or "grid_cols" not in lf.collect_schema():
        return []
    return (
        lf.drop_nulls("grid_cols")
        .group_by("grid_cols", "grid_rows", "num_tiles")
        .len()
        .sort(["len", "num_tiles"], descending=[True, False])
        .collect()
        .rows(named=True)
    )


def translation_status(sample_files: list[str]) -> list[dict[str, Any]]:
    """Accepted samples per translation status (ok, source_zh, failed:<check>...); empty without translation."""
    lf = scan(sample_files, ["translation_status"])
    if lf is None or "translation_status" not in lf.collect_schema():
        return []
    status = pl.col("translation_status").str.split(":").list.first()  # failed:<check> -> failed
    return lf.drop_nulls().group_by(status).len().sort("len", descending=True).collect().rows(named=True)


def scores(files: dict[str, list[str]]) -> pl.DataFrame | None:
    """Every scored sample's scores with an `accepted` flag (samples and filter rejects), or None when unscored."""
    frames = []
    for table, accepted in (("samples", True), ("rejects", False)):
        lf = scan(files.get(table, []), ["scorer_model", *SCORE_COLUMNS])
        if lf is None or "scorer_model" not in lf.collect_schema():
            continue
        frames.append(lf.filter(pl.col("scorer_model").is_not_null()).with_columns(accepted=pl.lit(accepted)))
    df = pl.concat(frames, how="diagonal").collect() if frames else None
    return df if df is not None and df.height else None


def stage_setting(record: dict[str, Any], op: str, key: str) -> Any:
    """A setting of the first stage with this op in the run's spec, or None."""
    for stage in (record.get("config") or {}).get("stages", []):
        if stage["op"] == op:
            return stage.get(key)
    return None


def throughput(record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Rows, wall time and rows/s per stage from the manifest's `stage_stats`; None when not recorded."""
    stats = record.get("stage_stats")
    if not stats:
        return None
    out = []
    for s in stats:
        rows, wall = int(s.get("rows") or 0), float(s.get("wall_s") or 0.0)
        rate = rows / wall if wall else None
        out.append({"stage": str(s.get("stage")), "rows": rows, "wall_s": wall, "rows_per_s": rate})
    return out


def gather(record: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows except the gallery."""
    files = record.get("files") or {}
    stats = run_stats(record)
    return {
        **stats,
        "funnel": funnel(record, stats["rejects_by_stage"], stats["inputs"]),
        "tile_grids": tile_grids(files.get("samples", [])),
        "translation": translation_status(files.get("samples", [])),
        "score_table": scores(files),
        "max_drift": stage_setting(record, "filter", "max_drift"),
        "throughput": throughput(record),
    }
