"""Run records: `started.json` when a run begins, `manifest.json` committed last when it completes.

The manifest holds the config, where things are, the files written and the accounting verdict; counts by
stage/reason are never copied into it: `inspect` computes them from the Parquet files.
"""

from __future__ import annotations

import json
from typing import Any

from dataengine import __version__
from dataengine.core.storage import default_root, exists, join, list_files, read_bytes, write_bytes_atomic

FILENAME = "manifest.json"
STARTED = "started.json"


def started(
    run_id: str, pipeline: str, config: dict[str, Any], input_uri: str, output: str, t0: float
) -> dict[str, Any]:
    """The record of a run that has begun: `config` is its whole pipeline spec as JSON."""
    return {
        "run_id": run_id,
        "pipeline": pipeline,
        "config": config,
        "input": input_uri,
        "output": output,
        "started_at": t0,
        "dataengine_version": __version__,
    }


def finished(
    record: dict[str, Any],
    files: list[dict[str, Any]],
    check: dict[str, Any],
    wall_s: float,
    ray_version: str,
    tile_index: str | None = None,
) -> dict[str, Any]:
    return {
        **record,
        "status": "complete",
        "finished_at": record["started_at"] + wall_s,
        "wall_s": round(wall_s, 2),
        "ray_version": ray_version,
        "files": {t: [f["file"] for f in files if f["table"] == t] for t in ("samples", "rejects")},
        "accounting": check,
        "tile_index": tile_index,
        "schemas": {"samples": "samples.v4", "rejects": "rejects.v3", "tiles": "tiles.v1"},
    }


def write(directory: str, record: dict[str, Any], name: str = FILENAME) -> None:
    write_bytes_atomic(join(directory, name), json.dumps(record, indent=2, ensure_ascii=False).encode())


def commit(output: str, run_dir: str, record: dict[str, Any]) -> None:
    """The commit point: the manifest in the output (if elsewhere) and then in the run's registry folder."""
    if output.rstrip("/") != run_dir.rstrip("/"):
        write(output, record)
    write(run_dir, record)


def list_runs(storage: str | None = None) -> list[dict[str, Any]]:
    """Every run under `<storage>/runs/`, newest first; runs without a manifest show as incomplete."""
    runs_dir = join(storage or default_root(), "runs")
    out = {}
    for f in list_files(runs_dir, (".json",)):
        name = f.rsplit("/", 1)[-1]
        if name not in (FILENAME, STARTED):
            continue
        rec = json.loads(read_bytes(f))
        if name == FILENAME or rec["run_id"] not in out:
            rec.setdefault("status", "incomplete")
            out[rec["run_id"]] = rec
    return sorted(out.values(), key=lambda r: r["started_at"], reverse=True)


def load(run_id: str, storage: str | None = None) -> dict[str, Any]:
    run_dir = join(storage or default_root(), "runs", run_id)
    for name in (FILENAME, STARTED):
        if exists(join(run_dir, name)):
            rec = json.loads(read_bytes(join(run_dir, name)))
            rec.setdefault("status", "incomplete")
            return rec
    raise FileNotFoundError(f"no run {run_id!r} under {run_dir}")
