"""Run a pipeline: plan its inputs, stream them through its stages on Ray Data, commit.

The run is a loop: read tasks -> each stage attached in order (`ops.base`: row and batch stages are map_batches,
dataset stages see the whole run through compact signatures) -> the export stage's list of files, consumed to
execute the plan -> each stage's `finish` -> accounting check -> commit (the manifest, or the dataset's ledger).
Rows stream from read to export: no stage holds the run in one process or in the object store.
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
from dataengine.core import stage_stats
from dataengine.core.ids import content_hash, run_token
from dataengine.core.metrics import StageMetrics, live_progress
from dataengine.core.stage_stats import named
from dataengine.core.storage import (
    REJECTS_DIR,
    SAMPLES_DIR,
    TILES_DIR,
    WORK_DIR,
    default_root,
    delete_dir,
    delete_dir_if_empty,
    delete_file,
    exists,
    is_remote,
    join,
    read_bytes,
    write_parquet_atomic,
)
from dataengine.ops import RunContext, stage_for
from dataengine.pipeline import PipelineSpec
from dataengine.readers import ReadTasks, plan_tasks, split_tasks
from dataengine.readers.annotations import STAGE as INGEST

INPUT_IDS = "input_ids"  # in the run's _work/: the ids every read task produced


def _read(batch: pa.Table, max_record_bytes: int, ctx: RunContext) -> Any:
    """Read tasks -> working-row blocks; the ids each task read are recorded in the run's `_work/` (what the
    accounting check counts as the run's inputs), named by the task so a retried task rewrites its own file."""
    meter = StageMetrics(ctx.stage_labels(INGEST))
    started, ids = time.perf_counter(), []
    for table in ReadTasks(max_record_bytes)(batch):
        meter.batch(None, table, time.perf_counter() - started)
        ids.append(table.column("id"))
        yield table
        started = time.perf_counter()
    name = content_hash("\n".join(batch.column("task").to_pylist()).encode(), 12)
    chunks = [c for col in ids for c in col.chunks] or [pa.array([], pa.string())]
    write_parquet_atomic(join(ctx.work, INPUT_IDS, f"{name}.parquet"), pa.table({"id": pa.chunked_array(chunks)}))


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
    """Connect to `address` or start a local Ray (unless this process is connected already), then apply the
    spec's Ray Data settings to this driver. `quiet` keeps workers' output in Ray's session logs
    (/tmp/ray/session_*/logs) and Ray's start-up lines below errors off the terminal."""
    import ray

    if not ray.is_initialized():
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
    default_block = ray.data.context.DEFAULT_TARGET_MAX_BLOCK_SIZE
    ctx.target_max_block_size = default_block if spec.ray.block_mb is None else spec.ray.block_mb * 2**20
    budget = spec.ray.object_store_budget_mb
    limits = ctx.execution_options.resource_limits
    ctx.execution_options.resource_limits = limits.copy(
        object_store_memory=float("inf") if budget is None else budget * 2**20
    )


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


def split_reads(tasks: list[dict[str, Any]], spec: PipelineSpec) -> list[dict[str, Any]]:
    """The planned read tasks (one per input shard) with JSONL and Parquet files over `input.split_bytes`, or over
    64 KiB where the run's inputs would be fewer tasks than the cluster's CPUs, cut into pieces sized for those CPUs
    (`readers.split`; the newline count of a split JSONL runs as Ray tasks)."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    return split_tasks(tasks, spec.input.split_bytes, cpus)


def read(tasks: list[dict[str, Any]], spec: PipelineSpec, ctx: RunContext) -> Any:
    """The run's read tasks (`split_reads`'s) as a lazy Ray Dataset of working rows, one block per task."""
    import ray

    ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=len(tasks))
    fn = partial(_read, max_record_bytes=spec.input.max_record_bytes, ctx=ctx)
    return ds.map_batches(named(fn, "read"), batch_size=1, batch_format="pyarrow")


OUTPUT_DIRS = (SAMPLES_DIR, REJECTS_DIR, TILES_DIR)
WORK = WORK_DIR  # output/_work/<run token>/: one run's scratch files and its claim on the output


def work_dir(output: str, run_id: str) -> str:
    return join(output, WORK, run_token(run_id))


def prepare_output(output: str, overwrite: bool, run_id: str) -> None:
    """Refuse to clobber a committed run unless asked, or to write beside a live run; clear debris left by a
    killed, uncommitted run (or by one whose accounting failed); claim the output for this run. A committed run
    stays as it is, readable through its manifest, until the run that overwrites it commits (`sweep_output`):
    its files and this run's are named apart (`ids.run_token`)."""
    from dataengine.core.storage import list_dirs

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
    from dataengine.core.storage import list_files

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
    record = manifest.started(run_id, spec.name, spec.model_dump(mode="json"), input_uri, output, started)
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
    ctx = RunContext(run_id, spec.name, output, storage, prior=tuple(plan.get("prior", ())))
    tasks = split_reads(plan["tasks"], spec)
    ds = read(tasks, spec, ctx)
    for config in spec.stages:
        ds = stage_for(config).attach(ds, config, ctx)
    files = sorted(ds.take_all(), key=lambda r: (r["table"], r["file"]))  # executes the run: export's files
    stats = [*ctx.stats, *stage_stats.of_dataset(ds, sum(f["rows"] for f in files))]
    sample_files = [f["file"] for f in files if f["table"] == "samples"]
    finished: dict[str, Any] = {}
    for config in spec.stages:
        finished.update(stage_for(config).finish(config, ctx, sample_files))
    check = accounting.check(
        join(ctx.work, INPUT_IDS), sample_files, [f["file"] for f in files if f["table"] == "rejects"]
    )
    record = manifest.finished(
        record, files, check, time.time() - started, ray.__version__, finished.get("tile_index")
    )
    record["stage_stats"] = stats
    record["read_tasks"] = len(tasks)  # more than the input shards where large files were split
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
