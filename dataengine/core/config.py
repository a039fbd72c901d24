"""Config models every layer builds on: strict pydantic models (an unknown key is an error that names it), and the
resources and compute a stage or task declares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
