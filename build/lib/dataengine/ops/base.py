"""The stage contract: a small op with a pydantic config declaring its resources, batch size and compute.

An op turns one working row into one working row; it rejects by raising `Reject`. The runner applies it to
Ray Data batches, passes already-rejected rows through untouched, and turns an unexpected exception into an
`internal_error` reject for that row only (never a dropped batch, never a crashed run).
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from dataengine.metrics import StageMetrics
from dataengine.records import Reject, is_rejected, reject, to_table


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors that name the key."""

    model_config = ConfigDict(extra="forbid")


class Resources(Strict):
    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    memory: int | None = Field(None, ge=0, description="bytes of heap memory to reserve per task/actor")
    custom: dict[str, float] = Field(
        default_factory=dict, description="custom Ray resources per task/actor, e.g. {cpu_worker: 0.01}"
    )


class Compute(Strict):
    kind: Literal["tasks", "actors"] = "tasks"
    size: int | None = Field(None, ge=1, description="fixed actor pool size (actors only)")
    min_size: int = Field(1, ge=1)
    max_size: int | None = Field(None, ge=1)


class StageConfig(Strict):
    """Fields every stage has; each op subclasses this with its own settings and an `op` literal."""

    op: str
    batch_size: int = Field(64, ge=1)
    resources: Resources = Resources()
    compute: Compute = Compute()

    def ray_args(self) -> dict[str, Any]:
        """Keyword arguments for `Dataset.map_batches` from the declared resources and compute."""
        import ray.data

        args: dict[str, Any] = {
            "batch_size": self.batch_size,
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


class Op(ABC):
    """One job on one row. Subclasses set `name` and `Config`, and implement `process`."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]

    def __init__(self, config: StageConfig):
        self.config = config

    @abstractmethod
    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        """Return the row with this op's columns set, or raise `Reject`."""

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """Process one row with per-row error isolation."""
        if is_rejected(row):
            return row
        try:
            return self.process(row)
        except Reject as exc:
            return reject(row, self.name, exc.reason, exc.detail)
        except Exception as exc:  # a bug or library failure on one hostile record must not sink the batch
            last = traceback.extract_tb(exc.__traceback__)[-1]
            detail = f"{type(exc).__name__}: {exc} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
            return reject(row, self.name, "internal_error", detail[:500])

    def apply_table(self, batch: pa.Table) -> pa.Table:
        return to_table([self.apply(row) for row in batch.to_pylist()])


class OpBatches:
    """Ray Data callable (task function or actor class) that builds the op once per worker; records the stage's
    metrics (rows in/out, rejects by reason, batch latency) when given labels."""

    def __init__(self, op_cls: type[Op], config: dict[str, Any], labels: dict[str, str] | None = None):
        self.op = op_cls(op_cls.Config.model_validate(config))
        self.metrics = StageMetrics(labels)

    def __call__(self, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        out = self.op.apply_table(batch)
        self.metrics.batch(batch, out, time.perf_counter() - started)
        return out
