"""Compile a pipeline spec into a Ray Data streaming plan and run it end to end.

Plan: read tasks -> row ops (map_batches, tasks or actor pools, as each stage declares) -> materialise (the
inputs, counted) -> global dedup -> translate, tile, score, filter (on surviving samples only) -> export ->
tile index -> accounting check -> manifest (committed last).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pyarrow as pa

from dataengine import accounting, ledger, manifest
from dataengine.ids import run_token
from dataengine.metrics import StageMetrics, live_progress, stage_labels
from dataengine.ops import ROW_OPS
from dataengine.ops.base import OpBatches
from dataengine.ops.dedup import dedup
from dataengine.ops.export import export
from dataengine.ops.filter import top_cutoff
from dataengine.ops.score import ScoreBatches
from dataengine.ops.tile import TileShards, prune_shards, write_index
from dataengine.ops.translate import TranslateBatches, translate_with_vllm
from dataengine.pipeline import PipelineSpec
from dataengine.readers import ReadTasks, plan_tasks
from dataengine.readers.records import STAGE as INGEST
from dataengine.stage_stats import named
from dataengine.storage import (
    default_root,
    delete_dir,
    delete_dir_if_empty,
    delete_file,
    exists,
    is_remote,
    join,
    read_bytes,
)

_OPS: dict[str, Any] = {}


def _apply(batch: pa.Table, op_name: str, config: dict[str, Any], labels: dict[str, str] | None = None) -> pa.Table:
    """Task-mode UDF: build the op once per worker process (and run: the labels), then apply it."""
    key = op_name + json.dumps([config, labels], sort_keys=True)
    if key not in _OPS:
        if len(_OPS) >= 64:  # a long-lived worker serving many runs
            _OPS.clear()
        _OPS[key] = OpBatches(ROW_OPS[op_name], config, labels=labels)
    return _OPS[key](batch)


def _read(batch: pa.Table, max_record_bytes: int, labels: dict[str, str] | None = None) -> Any:
    meter = StageMetrics(stage_labels(labels, INGEST))
    started = time.perf_counter()
    for table in ReadTasks(max_record_bytes)(batch):
        meter.batch(None, table, time.perf_counter() - started)
        yield table
        started = time.perf_counter()


def new_run_id(name: str) -> str:
    return f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _opt_into_token_auth() -> None:
    """`ray start` turns token auth on, but a driver given an explicit address does not opt in by itself: do what
    a local `ray.init()` does (token mode when RAY_AUTH_MODE is unset and a token exists) before connecting."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray version: the user sets RAY_AUTH_MODE=token themselves
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def init_ray(spec: PipelineSpec, address: str | None, quiet: bool = False) -> None:
    """Connect to `address` or start a local Ray. `quiet` keeps workers' output in Ray's session logs
    (/tmp/ray/session_*/logs) and Ray's start-up lines below errors off the terminal."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    opts: dict[str, Any] = {"log_to_driver": not quiet, "logging_level": logging.ERROR if quiet else logging.INFO}
    if address:
        _opt_into_token_auth()
        ray.init(address=address, **opts)
    else:
        ray.init(num_cpus=spec.ray.num_cpus, include_dashboard=spec.ray.dashboard, **opts)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = spec.ray.progress
    ctx.print_on_execution_start = spec.ray.progress


@contextmanager
def ray_logs_to(path: str | None) -> Iterator[None]:
    """While a run executes, Ray's own driver-side log records go to `path` (the run's `ray.log`), and its terminal
    handlers show errors only; None leaves Ray's logging as it is."""
    if path is None:
        yield
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    changed: list[tuple[logging.Handler, int]] = []
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data", "ray.train", "ray.serve")]
    for lg in loggers:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
                changed.append((h, h.level))
                h.setLevel(logging.ERROR)
        lg.addHandler(to_file)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeHandler(to_file)
        for h, level in changed:
            h.setLevel(level)
        to_file.close()


def split_stages(spec: PipelineSpec) -> tuple[list[Any], list[Any]]:
    """Row ops that stream before the inputs are materialised, and the stages after dedup (tile...)."""
    ops = [s.op for s in spec.stages]
    cut = ops.index("dedup") if "dedup" in ops else min(i for i, op in enumerate(ops) if op not in ROW_OPS)
    pre = [s for s in spec.stages[:cut] if s.op in ROW_OPS]
    post = [s for s in spec.stages[cut:] if s.op not in ("dedup", "export")]
    return pre, post


def map_stage(
    ds: Any, stage: Any, output: str, storage: str, run_id: str, labels: dict[str, str] | None = None
) -> Any:
    """One stage as a Ray Data map_batches, as tasks or an actor pool as the stage declares.
    `labels` ({pipeline, run}) tag the stage's metrics (dataengine.metrics); None records none."""
    config = stage.model_dump()
    tags = stage_labels(labels, stage.op)
    if stage.op == "tile":
        cls, args = TileShards, (config, output, run_id)
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
        return ds.map_batches(
            named(cls, stage.op),
            fn_constructor_args=args,
            fn_constructor_kwargs={"labels": tags},
            batch_format="pyarrow",
            **stage.ray_args(),
        )
    fn = (
        partial(_apply_tile, config=config, output=output, run_id=run_id, labels=tags)
        if stage.op == "tile"
        else partial(_apply, op_name=stage.op, config=config, labels=tags)
    )
    return ds.map_batches(named(fn, stage.op), batch_format="pyarrow", **stage.ray_args())


def _apply_tile(
    batch: pa.Table, config: dict[str, Any], output: str, run_id: str, labels: dict[str, str] | None = None
) -> pa.Table:
    return TileShards(config, output, run_id, labels=labels)(batch)


def build_plan(
    spec: PipelineSpec,
    tasks: list[dict[str, Any]],
    output: str,
    storage: str,
    run_id: str,
    labels: dict[str, str] | None = None,
) -> Any:
    """The streaming part of the plan: read tasks + row ops, lazily (nothing runs until consumed).
    `labels` ({pipeline, run}) tag every stage's metrics (dataengine.metrics); None records none."""
    import ray

    ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=len(tasks))
    ds = ds.map_batches(
        named(partial(_read, max_record_bytes=spec.input.max_record_bytes, labels=labels), "read"),
        batch_size=1,
        batch_format="pyarrow",
    )
    for stage in split_stages(spec)[0]:
        ds = map_stage(ds, stage, output, storage, run_id, labels)
    return ds


OUTPUT_DIRS = ("samples", "rejects", "tiles")
WORK = "_work"  # output/_work/<run token>/: one run's scratch files and its claim on the output


def work_dir(output: str, run_id: str) -> str:
    return join(output, WORK, run_token(run_id))


def prepare_output(output: str, overwrite: bool, run_id: str) -> None:
    """Refuse to clobber a committed run unless asked, or to write beside a live run; clear debris left by a
    killed, uncommitted run (or by one whose accounting failed); claim the output for this run. A committed run
    stays as it is, readable through its manifest, until the run that overwrites it commits (`sweep_output`):
    its files and this run's are named apart (`ids.run_token`)."""
    from dataengine.storage import list_dirs

    for folder in list_dirs(join(output, WORK)):
        owner = ledger.live_owner(folder)
        if owner:
            raise FileExistsError(
                f"{output} is being written by another run (pid {owner.get('pid')} on {owner.get('host')}); "
                "wait for it to end or choose another --output"
            )
    committed = join(output, manifest.FILENAME)
    complete = exists(committed) and json.loads(read_bytes(committed)).get("status") == "complete"
    if complete and not overwrite:
        raise FileExistsError(f"{output} already holds a committed run; pass --set output.overwrite=true")
    delete_dir(join(output, WORK))
    if not complete:
        delete_file(committed)
        for sub in OUTPUT_DIRS:
            delete_dir(join(output, sub))
    ledger.claim_folder(work_dir(output, run_id))


def sweep_output(output: str, run_id: str) -> list[str]:
    """After a run committed into `output`: delete the files of the run it replaced and of killed runs (any file
    under samples/, rejects/, tiles/ not named with this run's token; no other run writes there meanwhile, see
    `prepare_output`). Returns what it deleted."""
    from dataengine.storage import list_files

    token = run_token(run_id)
    gone = []
    for sub in OUTPUT_DIRS:
        for f in list_files(join(output, sub), skip_underscore=False):
            if f"-{token}" not in f.rsplit("/", 1)[-1]:
                delete_file(f)
                gone.append(f)
    return gone


def _plan_inputs(spec: PipelineSpec, tasks: list[dict[str, Any]], target: str, run_id: str) -> dict[str, Any]:
    """Where this run writes and which read tasks it processes. Plain runs: everything into `target`.
    Incremental runs: `target` is a dataset (`ledger.plan`)."""
    if not spec.output.incremental:
        prepare_output(target, spec.output.overwrite, run_id)
        return {"output": target, "tasks": tasks}
    return ledger.plan(target, spec, tasks, run_id)


def run(
    spec: PipelineSpec,
    *,
    input_uri: str | None = None,
    output_uri: str | None = None,
    address: str | None = None,
    storage: str | None = None,
    progress: Callable[[dict[str, tuple[int, int]]], None] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run a pipeline and return its manifest; raises if the accounting invariant fails.

    With `output.incremental` the output is a dataset folder: only input shards not yet committed there are
    processed, and the run commits to the dataset's ledger last (a killed run leaves nothing committed).
    `progress` is called about twice a second with {stage: (rows in, rows rejected there)}; `quiet` keeps Ray's
    own log lines off the terminal (driver records in the run folder's `ray.log`, workers' in Ray's session logs)."""
    storage = storage or default_root()
    input_uri = input_uri or spec.input.uri
    if not input_uri:
        raise ValueError("no input: give --input or set input.uri in the pipeline")
    if not is_remote(input_uri):
        input_uri = os.path.abspath(input_uri)
    run_id = new_run_id(spec.name)
    run_dir = join(storage, "runs", run_id)
    default = join(storage, "exports", spec.name) if spec.output.incremental else run_dir
    target = output_uri or spec.output.uri or default
    if not is_remote(target):
        target = os.path.abspath(target)
    plan = _plan_inputs(spec, plan_tasks(input_uri, spec.input.format), target, run_id)
    try:
        return _run_planned(spec, plan, run_id, input_uri, run_dir, storage, address, progress, quiet)
    finally:  # committed, failed or interrupted: this run's scratch files and claim go
        delete_dir(work_dir(plan["output"], run_id))
        delete_dir_if_empty(join(plan["output"], WORK))


def _run_planned(
    spec: PipelineSpec,
    plan: dict[str, Any],
    run_id: str,
    input_uri: str,
    run_dir: str,
    storage: str,
    address: str | None,
    progress: Callable[[dict[str, tuple[int, int]]], None] | None,
    quiet: bool,
) -> dict[str, Any]:
    import ray

    output = plan["output"]
    started = time.time()
    record = manifest.started(run_id, spec, input_uri, output, started)
    if "summary" in plan:
        record["incremental"] = dict(plan["summary"])
    manifest.write(run_dir, record, name=manifest.STARTED)
    if not plan["tasks"]:
        record = manifest.finished(record, [], accounting.empty(), time.time() - started, ray.__version__)
        manifest.write(run_dir, record)  # nothing new: recorded, nothing to commit
        return record

    init_ray(spec, address, quiet=quiet)
    logs = join(run_dir, "ray.log") if quiet and not is_remote(run_dir) else None
    with ray_logs_to(logs), live_progress(run_id, progress) if progress else nullcontext():
        return _execute(spec, plan, record, run_dir, storage, started)


def _execute(
    spec: PipelineSpec, plan: dict[str, Any], record: dict[str, Any], run_dir: str, storage: str, started: float
) -> dict[str, Any]:
    """The run on Ray, from reading to the commit."""
    import ray

    run_id, output = record["run_id"], plan["output"]
    labels = {"pipeline": spec.name, "run": run_id}
    ds = build_plan(spec, plan["tasks"], output, storage, run_id, labels).materialize()
    input_ids = join(work_dir(output, run_id), "input_ids")
    ds.select_columns(["id"]).write_parquet(input_ids)
    if "dedup" in [s.op for s in spec.stages]:
        ds = dedup(ds, spec.stage("dedup"), labels, plan.get("prior"))
    for stage in split_stages(spec)[1]:
        if stage.op == "filter" and stage.keep_top_fraction is not None:
            ds = ds.materialize()  # the top fraction is a global cut: every sample's score first
            stage = stage.model_copy(update={"cutoff": top_cutoff(ds, stage)})
        ds = map_stage(ds, stage, output, storage, run_id, labels)
    stats: list[dict[str, Any]] = []
    files = export(ds, spec.stage("export"), output, run_id, labels, stats)
    sample_files = [f["file"] for f in files if f["table"] == "samples"]
    tile_index = None
    if "tile" in [s.op for s in spec.stages]:
        prune_shards(output, run_id, accounting.ids(sample_files))  # samples rejected after tiling leave too
        tile_index = write_index(output, run_id)
    check = accounting.check(input_ids, sample_files, [f["file"] for f in files if f["table"] == "rejects"])
    record = manifest.finished(record, files, check, time.time() - started, ray.__version__, tile_index)
    record["stage_stats"] = stats
    if not check["ok"]:
        record["status"] = "failed_accounting"  # recorded for inspection, never taken for a complete run
    if "commit" not in plan and check["ok"]:
        manifest.commit(output, run_dir, record)
        sweep_output(output, run_id)  # only now does the run this one replaced go
    elif not check["ok"]:
        manifest.write(run_dir, record)  # recorded for inspection; the output keeps the run it held, if any
    else:
        manifest.write(output, record)
        entry = ledger.commit(plan["commit"]["dataset"], record, plan["commit"])
        record["incremental"]["commit"] = entry["seq"]
        manifest.write(run_dir, record)
    if not check["ok"]:
        raise accounting.AccountingError(check, run_id, output)
    return record
