"""Compile a pipeline spec into a Ray Data streaming plan and run it end to end.

Plan: read tasks -> row ops (map_batches, tasks or actor pools, as each stage declares) -> materialise (the
inputs, counted) -> global dedup -> translate, tile, score, filter (on surviving samples only) -> export ->
tile index -> accounting check -> manifest (committed last).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa

from dataengine import accounting, manifest
from dataengine.ops import ROW_OPS
from dataengine.ops.base import OpBatches
from dataengine.ops.dedup import dedup
from dataengine.ops.export import export
from dataengine.ops.filter import top_cutoff
from dataengine.ops.score import ScoreBatches
from dataengine.ops.tile import TileShards, write_index
from dataengine.ops.translate import TranslateBatches, translate_with_vllm
from dataengine.pipeline import PipelineSpec
from dataengine.readers import ReadTasks, plan_tasks
from dataengine.storage import default_root, delete_dir, delete_file, exists, is_remote, join

_OPS: dict[str, Any] = {}


def _apply(batch: pa.Table, op_name: str, config: dict[str, Any]) -> pa.Table:
    """Task-mode UDF: build the op once per worker process, then apply it."""
    key = op_name + json.dumps(config, sort_keys=True)
    if key not in _OPS:
        _OPS[key] = OpBatches(ROW_OPS[op_name], config)
    return _OPS[key](batch)


def _read(batch: pa.Table, max_record_bytes: int) -> Any:
    yield from ReadTasks(max_record_bytes)(batch)


def new_run_id(name: str) -> str:
    return f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def init_ray(spec: PipelineSpec, address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=spec.ray.num_cpus, include_dashboard=spec.ray.dashboard, log_to_driver=True)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = spec.ray.progress
    ctx.print_on_execution_start = spec.ray.progress


def split_stages(spec: PipelineSpec) -> tuple[list[Any], list[Any]]:
    """Row ops that stream before the inputs are materialised, and the stages after dedup (tile...)."""
    ops = [s.op for s in spec.stages]
    cut = ops.index("dedup") if "dedup" in ops else min(i for i, op in enumerate(ops) if op not in ROW_OPS)
    pre = [s for s in spec.stages[:cut] if s.op in ROW_OPS]
    post = [s for s in spec.stages[cut:] if s.op not in ("dedup", "export")]
    return pre, post


def map_stage(ds: Any, stage: Any, output: str, storage: str) -> Any:
    """One stage as a Ray Data map_batches, as tasks or an actor pool as the stage declares."""
    config = stage.model_dump()
    if stage.op == "tile":
        cls, args = TileShards, (config, output)
    elif stage.op == "score":
        if stage.compute.kind != "actors":
            raise ValueError("stages: score runs on an actor pool (compute.kind: actors)")
        cls, args = ScoreBatches, (config, output, storage)
    elif stage.op == "translate" and stage.engine == "vllm":
        return translate_with_vllm(ds, stage, storage)
    elif stage.op == "translate":
        if stage.compute.kind != "actors":
            raise ValueError("stages: translate runs on an actor pool (compute.kind: actors)")
        cls, args = TranslateBatches, (config, storage)
    else:
        cls, args = OpBatches, (ROW_OPS[stage.op], config)
    if stage.compute.kind == "actors":
        return ds.map_batches(cls, fn_constructor_args=args, batch_format="pyarrow", **stage.ray_args())
    fn = (
        partial(_apply_tile, config=config, output=output)
        if stage.op == "tile"
        else partial(_apply, op_name=stage.op, config=config)
    )
    return ds.map_batches(fn, batch_format="pyarrow", **stage.ray_args())


def _apply_tile(batch: pa.Table, config: dict[str, Any], output: str) -> pa.Table:
    return TileShards(config, output)(batch)


def build_plan(spec: PipelineSpec, input_uri: str, output: str, storage: str) -> Any:
    """The streaming part of the plan: read + row ops, lazily (nothing runs until consumed)."""
    import ray

    tasks = plan_tasks(input_uri, spec.input.format)
    ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=len(tasks))
    ds = ds.map_batches(
        partial(_read, max_record_bytes=spec.input.max_record_bytes), batch_size=1, batch_format="pyarrow"
    )
    for stage in split_stages(spec)[0]:
        ds = map_stage(ds, stage, output, storage)
    return ds


def prepare_output(output: str, overwrite: bool) -> None:
    """Refuse to clobber a committed run unless asked; clear debris left by a killed, uncommitted run."""
    committed = join(output, manifest.FILENAME)
    if exists(committed) and not overwrite:
        raise FileExistsError(f"{output} already holds a committed run; pass --set output.overwrite=true")
    delete_file(committed)
    for sub in ("samples", "rejects", "tiles", "_work"):
        delete_dir(join(output, sub))


def run(
    spec: PipelineSpec,
    *,
    input_uri: str | None = None,
    output_uri: str | None = None,
    address: str | None = None,
    storage: str | None = None,
) -> dict[str, Any]:
    """Run a pipeline and return its manifest; raises if the accounting invariant fails."""
    import ray

    storage = storage or default_root()
    input_uri = input_uri or spec.input.uri
    if not input_uri:
        raise ValueError("no input: give --input or set input.uri in the pipeline")
    if not is_remote(input_uri):
        input_uri = os.path.abspath(input_uri)
    run_id = new_run_id(spec.name)
    run_dir = join(storage, "runs", run_id)
    output = output_uri or spec.output.uri or run_dir
    if not is_remote(output):
        output = os.path.abspath(output)
    prepare_output(output, spec.output.overwrite)
    started = time.time()
    record = manifest.started(run_id, spec, input_uri, output, started)
    manifest.write(run_dir, record, name=manifest.STARTED)

    init_ray(spec, address)
    ds = build_plan(spec, input_uri, output, storage).materialize()
    input_ids = join(output, "_work", "input_ids")
    ds.select_columns(["id"]).write_parquet(input_ids)
    if "dedup" in [s.op for s in spec.stages]:
        ds = dedup(ds, spec.stage("dedup"))
    for stage in split_stages(spec)[1]:
        if stage.op == "filter" and stage.keep_top_fraction is not None:
            ds = ds.materialize()  # the top fraction is a global cut: every sample's score first
            stage = stage.model_copy(update={"cutoff": top_cutoff(ds, stage)})
        ds = map_stage(ds, stage, output, storage)
    files = export(ds, spec.stage("export"), output, run_id)
    tile_index = write_index(output) if "tile" in [s.op for s in spec.stages] else None
    check = accounting.check(
        input_ids,
        [f["file"] for f in files if f["table"] == "samples"],
        [f["file"] for f in files if f["table"] == "rejects"],
    )
    delete_dir(join(output, "_work"))
    record = manifest.finished(record, files, check, time.time() - started, ray.__version__, tile_index)
    manifest.commit(output, run_dir, record)
    if not check["ok"]:
        raise accounting.AccountingError(check)
    return record
