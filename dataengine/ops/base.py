"""The stage contract. A stage is a pydantic config (settings, resources, compute, the stages it `needs`) and a
class of one of three kinds:

- `RowStage`: one row in, one row out (`process(row)`; it rejects a row by raising `Reject`);
- `BatchStage`: `setup()` once per worker (load a model, open a client), then `process_batch(rows)` on the
  batch's live rows (models, shard writers);
- `DatasetStage`: sees the whole run (`run(ds, ctx)`): dedup, a top-fraction cut, export. One that decides from
  the whole run (`SignatureStage`) spills the stream to the run's `_work/` once, reads back only its compact
  signature columns to `decide`, then streams the spilled rows again through `apply`, block by block.

`Worker` runs every row and batch stage the same way on Ray Data: rows rejected upstream pass through untouched,
an unexpected exception rejects its row only (`internal_error`), and each batch's counts and latency go to the
stage's metrics. The runner is a loop over the stages (`attach`).
"""

from __future__ import annotations

import json
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field

from dataengine.core import shuffle, stage_stats
from dataengine.core.config import Compute, Resources, Strict
from dataengine.core.ids import content_hash, run_token
from dataengine.core.metrics import StageMetrics, stage_labels
from dataengine.core.rows import Reject, is_rejected, reject, to_table
from dataengine.core.stage_stats import named
from dataengine.core.storage import WORK_DIR, delete_dir, exists, join, read_parquet, write_parquet_atomic

Kind = Literal["row", "batch", "dataset"]


class StageConfig(Strict):
    """Fields every stage has; each stage subclasses this with its own settings and an `op` literal. Class
    attributes: `needs` (ops that must come earlier: their columns are read) and `actors_only` (the stage holds
    a model or client per worker, so it runs on an actor pool)."""

    needs: ClassVar[frozenset[str]] = frozenset()
    actors_only: ClassVar[bool] = False

    op: str
    batch_size: int = Field(64, ge=1)
    resources: Resources = Resources()
    compute: Compute = Compute()

    def variant(self) -> type[Stage] | None:
        """The class that runs this config when its settings call for another than its op's registered one (the
        top-fraction filter, the vLLM engine); None for the registered one (`ops.stage_for`)."""
        return None

    def ray_args(self) -> dict[str, Any]:
        """Keyword arguments for `Dataset.map_batches` from the declared resources and compute. Ray's batches are
        whole blocks (`batch_size=None`): the stage cuts each block into `batch_size` rows itself (`Worker`,
        `write_parts`). Ray sizes a fused task's input by the largest batch size of the fused chain, counted in
        rows of the chain's first operator; those are the read's (or a spill's) one-row tasks, so an integer
        here would put hundreds of read tasks into one Ray task on one CPU. A GPU stage keeps an integer (Ray
        requires it with num_gpus); it runs on actors, whose input is the upstream blocks."""
        import ray.data

        args: dict[str, Any] = {
            "batch_size": self.batch_size if self.resources.num_gpus else None,
            "num_cpus": self.resources.num_cpus,
        }
        if self.resources.num_gpus:
            args["num_gpus"] = self.resources.num_gpus
        if self.resources.memory:
            args["memory"] = self.resources.memory
        if self.resources.custom:
            args["resources"] = dict(self.resources.custom)
        if self.compute.kind == "actors":
            c = self.compute
            size = c.size or None
            args["compute"] = (
                ray.data.ActorPoolStrategy(size=size)
                if size
                else ray.data.ActorPoolStrategy(min_size=c.min_size, max_size=c.max_size)
            )
        return args

    def task_args(self) -> dict[str, Any]:
        """The declared resources (num_cpus, num_gpus, memory, custom) for a dataset stage's own Ray tasks."""
        return {k: v for k, v in self.ray_args().items() if k not in ("batch_size", "compute")}


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run may need: which run, where it writes, the data root, its metric labels.
    Small and picklable: Ray sends it to every task and actor."""

    run_id: str
    pipeline: str
    output: str  # the run's folder: samples/, rejects/, tiles/, _work/<run token>/
    storage: str  # the data root: models, caches
    metrics: bool = True
    prior: tuple[str, ...] = ()  # an incremental dataset's committed samples files (dedup checks against them)
    stats: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)  # spilled segments'

    @property
    def token(self) -> str:
        return run_token(self.run_id)

    @property
    def labels(self) -> dict[str, str] | None:
        """{pipeline, run}: every metric's labels (None records none)."""
        return {"pipeline": self.pipeline, "run": self.run_id} if self.metrics else None

    def stage_labels(self, stage: str) -> dict[str, str] | None:
        return stage_labels(self.labels, stage)

    def path(self, *parts: str) -> str:
        """A path inside the run's folder."""
        return join(self.output, *parts)

    @property
    def work(self) -> str:
        """This run's scratch folder (deleted when the run ends; never read by anyone else)."""
        return join(self.output, WORK_DIR, self.token)


class Stage(ABC):
    """Base of the three kinds; `name` is the op name (the rejects table's `stage`)."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    Config: ClassVar[type[StageConfig]]

    def __init__(self, config: StageConfig, ctx: RunContext | None = None):
        self.config = config
        self.ctx = ctx

    @classmethod
    def attach(cls, ds: Any, config: StageConfig, ctx: RunContext) -> Any:
        """This stage appended to the Ray Dataset `ds` (lazily: nothing runs until the run is consumed)."""
        return _map(ds, cls, config, ctx)

    @classmethod
    def finish(cls, config: StageConfig, ctx: RunContext, samples: list[str]) -> dict[str, Any]:
        """After export, before the accounting check: tidy what the stage wrote beside the samples (`samples`:
        the run's samples files). Returns what the manifest records of it ({} for most stages)."""
        return {}


class RowStage(Stage):
    """One job on one row: `process` returns the row with this stage's columns set, or raises `Reject`."""

    kind = "row"

    @abstractmethod
    def process(self, row: dict[str, Any]) -> dict[str, Any]: ...

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """`process` with the contract around it: rejected rows pass, an exception rejects this row only."""
        if is_rejected(row):
            return row
        try:
            return self.process(row)
        except Reject as exc:
            return reject(row, self.name, exc.reason, exc.detail)
        except Exception as exc:  # a bug or library failure on one hostile record must not sink the batch
            return reject(row, self.name, "internal_error", _where(exc))

    def run_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.apply(r) for r in rows]


class BatchStage(Stage):
    """Work done a batch at a time with state built once per worker: `setup` (a model, a client), then
    `process_batch` on the live rows of each batch (rejected ones never reach it), returning them in order."""

    kind = "batch"

    def setup(self) -> None:
        """Build what every batch shares; runs once per worker process or actor."""

    @abstractmethod
    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def run_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        passed = [is_rejected(r) for r in rows]  # before processing: a stage may reject rows in place
        live = [r for r, p in zip(rows, passed, strict=True) if not p]
        try:
            done = iter(self.process_batch(live) if live else [])
        except Exception:  # find the row that broke it: each alone, so one bad row rejects itself only
            done = iter([self._alone(r) for r in live])
        return [r if p else next(done) for r, p in zip(rows, passed, strict=True)]

    def _alone(self, row: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.process_batch([row])[0]
        except Reject as exc:
            return reject(row, self.name, exc.reason, exc.detail)
        except Exception as exc:
            return reject(row, self.name, "internal_error", _where(exc))


class DatasetStage(Stage):
    """A stage over the whole run: `attach` returns the transformed Ray Dataset."""

    kind = "dataset"

    @classmethod
    @abstractmethod
    def attach(cls, ds: Any, config: StageConfig, ctx: RunContext) -> Any: ...


class SignatureStage(DatasetStage):
    """A dataset stage that decides from compact per-row signatures. The stream is written once to
    `_work/<token>/<stage>/`, one Parquet file a block (streaming: nothing of it stays in memory or the object
    store), the `signature` columns are read back for `decide` (tens of bytes a row), and the spilled files stream
    again, one task a file, through `apply(block, decision)`.

    The decision is either one small value every task gets (a score cutoff), or, with `per_row`, a Ray Dataset of
    rows keyed by `id` (dedup's rejections): those are routed to the spill file holding each id (a join with the
    spill's ids, then a file of decisions per spill file), and each task reads only its own file's decisions.
    Memory: the list of spill files and a small decision on the driver; never the rows. Per-row decisions are
    shuffled in `num_partitions` blocks when the stage sets it, else one per `partition_rows` rows (a million by
    default): partitions grow with the run, and a small run's routing is one task without a hash shuffle."""

    signature: ClassVar[tuple[str, ...]]
    per_row: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def decide(cls, signatures: Any, config: StageConfig, ctx: RunContext) -> Any:
        """Everything `apply` needs, from the run's signatures (a Ray Dataset of the signature columns); with
        `per_row`, a Ray Dataset of decision rows with an `id` column."""

    @staticmethod
    @abstractmethod
    def apply(batch: pa.Table, decision: Any, config: StageConfig, ctx: RunContext) -> pa.Table:
        """One spilled block with the decision applied (rows rejected upstream untouched); with `per_row`, the
        decision is the table of this block's decision rows."""

    @classmethod
    def attach(cls, ds: Any, config: StageConfig, ctx: RunContext) -> Any:
        import ray

        spill, routed = join(ctx.work, cls.name), join(ctx.work, f"{cls.name}-decisions")
        for folder in (spill, routed):
            delete_dir(folder)  # only this attach's files: never half-written ones of an earlier try
        written = ds.map_batches(named(partial(spill_block, folder=spill), "spill"), batch_format="pyarrow")
        files, spilled = [], 0
        for b in written.iter_batches(batch_format="pyarrow", batch_size=None):
            files += b.column("file").to_pylist()
            spilled += sum(b.column("rows").to_pylist())
        ctx.stats.extend(stage_stats.of_dataset(written, spilled))  # the segment that ends here, for the manifest
        if not files:
            return ds.limit(0)
        signatures = ray.data.read_parquet(files).select_columns(list(cls.signature))  # this attach's files only
        decision = cls.decide(signatures, config, ctx)
        if cls.per_row and decision.count() == 0:
            decision = None
        elif cls.per_row:
            where = ray.data.read_parquet(files, include_paths=True).select_columns(["id", "path"])
            parts = shuffle.partitions(
                spilled + decision.count(),
                getattr(config, "num_partitions", None),
                getattr(config, "partition_rows", shuffle.PARTITION_ROWS),
            )
            located = shuffle.join(decision, where, "id", "inner", parts, **config.task_args())
            write = partial(route_decisions, folder=routed)
            for _ in shuffle.by_key(located, ["path"], write, parts, **config.task_args()).iter_batches(
                batch_size=None
            ):
                pass
            decision = None
        fn = partial(
            _apply_file, stage=cls, decision=decision, routed=routed if cls.per_row else None,
            config=config.model_dump(), ctx=ctx,
        )  # fmt: skip
        tasks = ray.data.from_items([{"file": f} for f in files], override_num_blocks=len(files))
        return tasks.map_batches(named(fn, cls.name), batch_size=1, batch_format="pyarrow", **config.task_args())


def spill_block(batch: pa.Table, folder: str) -> pa.Table:
    """One block -> one Parquet file in the spill (named by its ids, so a retried task rewrites its own file);
    returns (file, rows). A file per block keeps a task's memory to one block however long the task runs (Ray
    Data's own parquet write holds all of a task's blocks until it writes them)."""
    if len(batch) == 0:
        return pa.table({"file": pa.array([], pa.string()), "rows": pa.array([], pa.int64())})
    digest = content_hash("\n".join(sorted(batch.column("id").to_pylist())).encode(), 16)
    file = join(folder, f"block-{digest}.parquet")
    write_parquet_atomic(file, batch, compression="snappy", dictionary=False)  # image bytes do not compress
    return pa.table({"file": [file], "rows": pa.array([len(batch)], pa.int64())})


def route_decisions(block: pa.Table, folder: str) -> pa.Table:
    """Decision rows with the spill file (`path`) holding their id, whole files a block -> one decisions file
    per spill file, named like it."""
    if len(block) == 0:
        return pa.table({"files": [0]})
    block = block.sort_by("path")
    paths = block.column("path").to_pylist()
    starts = [i for i in range(len(paths)) if i == 0 or paths[i] != paths[i - 1]]
    for lo, hi in zip(starts, [*starts[1:], len(paths)], strict=True):
        rows = block.slice(lo, hi - lo).drop_columns(["path"])
        write_parquet_atomic(join(folder, paths[lo].rsplit("/", 1)[-1]), rows)
    return pa.table({"files": [len(starts)]})


def _apply_file(
    batch: pa.Table, stage: type[SignatureStage], decision: Any, routed: str | None, config: dict, ctx: RunContext
) -> pa.Table:
    """One spill file (its path in `batch`) -> its rows with the decision applied."""
    (file,) = batch.column("file").to_pylist()
    rows = read_parquet(file)
    if routed is not None:
        mine = join(routed, file.rsplit("/", 1)[-1])
        decision = read_parquet(mine) if exists(mine) else None
    return _apply_decision(rows, stage, decision, config, ctx)


def _apply_decision(batch: pa.Table, stage: type[SignatureStage], decision: Any, config: dict, ctx: RunContext):
    started = time.perf_counter()
    out = stage.apply(batch, decision, stage_config(stage, config), ctx)
    StageMetrics(ctx.stage_labels(stage.name)).batch(batch, out, time.perf_counter() - started)
    return out


def stage_config(stage: type[Stage], config: dict[str, Any]) -> StageConfig:
    return stage.Config.model_validate(config)


def _where(exc: Exception) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__}: {exc} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"[:500]


class Worker:
    """Ray Data callable for one row or batch stage (an actor class, or per task process through `_task`):
    builds the stage and runs its `setup` once, then applies the contract to every batch and records the
    stage's metrics (rows in/out, rejects by reason, latency)."""

    def __init__(self, stage: type[Stage], config: dict[str, Any], ctx: RunContext):
        self.stage = stage(stage_config(stage, config), ctx)
        if isinstance(self.stage, BatchStage):
            self.stage.setup()
        self.metrics = StageMetrics(ctx.stage_labels(stage.name))

    def __call__(self, block: pa.Table) -> Iterator[pa.Table]:
        """One Ray block, `batch_size` rows at a time, each batch's output yielded when done (`StageConfig.ray_args`
        says why Ray batches are blocks). Yielding keeps a stage that adds bytes (resolve reads the images) from
        holding a whole block's output: a large input piece's block of metadata would become gigabytes."""
        size = self.stage.config.batch_size
        for i in range(0, len(block) or 1, size):
            yield self._batch(block.slice(i, size))

    def table(self, block: pa.Table) -> pa.Table:
        """`__call__`'s outputs as one table (for callers outside Ray Data)."""
        return pa.concat_tables(list(self(block)))

    def _batch(self, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        out = to_table(self.stage.run_rows(batch.to_pylist()))  # type: ignore[attr-defined]
        self.metrics.batch(batch, out, time.perf_counter() - started)
        return out


_workers: dict[str, Worker] = {}


def _task(batch: pa.Table, stage: type[Stage], config: dict[str, Any], ctx: RunContext) -> Iterator[pa.Table]:
    """Task-mode UDF: one Worker per (stage, config, run) and process, built on its first batch."""
    key = json.dumps([stage.name, config, ctx.run_id, ctx.output], sort_keys=True, default=str)
    if key not in _workers:
        if len(_workers) >= 64:  # a long-lived worker process serving many runs
            _workers.clear()
        _workers[key] = Worker(stage, config, ctx)
    yield from _workers[key](batch)


def _map(ds: Any, stage: type[Stage], config: StageConfig, ctx: RunContext) -> Any:
    """A row or batch stage as one map_batches, on tasks or an actor pool as its config declares."""
    data = config.model_dump()
    if config.compute.kind == "actors":
        return ds.map_batches(
            named(Worker, stage.name), fn_constructor_args=(stage, data, ctx), batch_format="pyarrow",
            **config.ray_args(),
        )  # fmt: skip
    fn = partial(_task, stage=stage, config=data, ctx=ctx)
    return ds.map_batches(named(fn, stage.name), batch_format="pyarrow", **config.ray_args())
