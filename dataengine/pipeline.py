"""Pipeline specs: YAML in `pipelines/`, safe-loaded, `--set` overrides applied, validated with pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, model_validator

from dataengine.core.config import Strict
from dataengine.core.cron import ScheduleSpec
from dataengine.core.storage import PACKAGE_DIR
from dataengine.ops import REGISTRY, stage_for
from dataengine.ops.base import StageConfig

PIPELINE_DIR = PACKAGE_DIR / "pipelines"
# one config model per registered stage, told apart by `op`
Stage = Annotated[Union[tuple(s.Config for s in REGISTRY.values())], Field(discriminator="op")]  # noqa: UP007


class PipelineError(ValueError):
    """A pipeline spec that cannot be used; the message names the bad key."""


class InputSpec(Strict):
    uri: str | None = Field(None, description="file or directory, local path or URI; --input overrides it")
    format: Literal["auto", "jsonl", "meta", "parquet", "webdataset"] = "auto"
    max_record_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="largest JSONL line, tar member or Parquet image"
    )
    split_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="a JSONL or Parquet file larger than this is read by several tasks (JSONL in byte ranges, "
        "Parquet by row groups) of about this size, or smaller (down to 64 KiB, also for a file under this) so "
        "that the run's inputs make one per CPU",
    )


class OutputSpec(Strict):
    uri: str | None = Field(
        None,
        description="default: <storage>/runs/<run_id>, or <storage>/exports/<name> when incremental; --output "
        "overrides it",
    )
    overwrite: bool = Field(False, description="replace an output that already holds a committed run (or dataset)")
    incremental: bool = Field(
        False,
        description="the output is a dataset that runs append to: input shards already committed there with the "
        "same config are skipped, and a killed run is redone by the next one",
    )


class RaySpec(Strict):
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray started when no address is given")
    dashboard: bool = Field(False, description="start Ray's dashboard with the local Ray")
    progress: bool = True
    object_store_budget_mb: int | None = Field(
        None,
        ge=64,
        description="object store memory (MiB) a run's streaming blocks may hold at once; unset: Ray Data's "
        "default share of the object store, which a large run fills and a small one does not",
    )
    block_mb: int | None = Field(
        16,
        ge=1,
        le=1024,
        description="largest block (MiB) a stage hands the next; every stage of a worker's fused chain may hold one "
        "in memory; null: Ray Data's default (128 MiB), which a large run's input pieces fill",
    )


class PipelineSpec(Strict):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    input: InputSpec = InputSpec()
    output: OutputSpec = OutputSpec()
    ray: RaySpec = RaySpec()
    stages: list[Stage] = Field(min_length=1)
    schedule: ScheduleSpec | None = Field(None, description="when `dataengine scheduler` runs it")

    @model_validator(mode="after")
    def _order(self) -> PipelineSpec:
        ops = [s.op for s in self.stages]
        if ops.count("export") != 1 or ops[-1] != "export":
            raise ValueError("stages: exactly one 'export' stage, and it must be last")
        for i, op in enumerate(ops):
            if ops.count(op) > 1:
                raise ValueError(f"stages: '{op}' appears more than once")
            missing = self.stages[i].needs - set(ops[:i])
            if missing:  # it reads the columns those stages set
                raise ValueError(f"stages[{i}] ({op}) needs {sorted(missing)} before it")
            stage = self.stages[i]
            if stage.actors_only and stage_for(stage).kind != "dataset" and stage.compute.kind != "actors":
                raise ValueError(f"stages[{i}] ({op}) runs on an actor pool: set compute.kind: actors")
        if "score" in ops and "translate" in ops and ops.index("translate") > ops.index("score"):
            raise ValueError("stages: 'translate' must come before 'score' (match_zh scores the translation)")
        quality = self.stage("quality") if "quality" in ops else None
        rates_pairs = quality is not None and (quality.translation_qe or quality.back_translation)
        if rates_pairs and "translate" in ops and ops.index("translate") > ops.index("quality"):
            raise ValueError(
                "stages: 'translate' must come before 'quality' (translation_qe rates the translation; "
                "set translation_qe: false to rate only the texts as written)"
            )
        # costly stages work on surviving samples only; quality may rate before dedup, so that on one machine a
        # dataset stage between it and translate keeps one copy of the LLM loaded at a time (pipelines/demo.yaml)
        for late in ("translate", "tile", "score"):
            if "dedup" in ops and late in ops and ops.index(late) < ops.index("dedup"):
                raise ValueError(f"stages: '{late}' must come after 'dedup' (only surviving samples are processed)")
        if "score" in ops and not self.stage("tile").thumbnail:
            raise ValueError("stages: 'score' needs tile.thumbnail: true (the scorer sees the picture through it)")
        if "filter" in ops and self.stage("filter").cutoff is not None:
            raise ValueError("stages: filter.cutoff is computed from keep_top_fraction; do not set it")
        if "dedup" in ops and self.stage("dedup").key == "image+text" and "text" not in ops[: ops.index("dedup")]:
            raise ValueError("stages: dedup with key image+text needs the 'text' stage before it")
        return self

    def stage(self, op: str) -> StageConfig | Any:
        return next(s for s in self.stages if s.op == op)


def find(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise PipelineError(f"pipeline file not found: {path}")
        return path
    candidate = PIPELINE_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        names = sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))
        raise PipelineError(f"no pipeline named {name_or_path!r}; available: {', '.join(names)}")
    return candidate


def split_set(assignment: str) -> tuple[str, Any]:
    """One `--set KEY=VALUE` (every command's): the key and the value parsed as YAML."""
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise PipelineError(f"--set expects key=value, got {assignment!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise PipelineError(f"--set {key.strip()}: {value!r} is not a YAML value ({problem}); quote it") from None


def invalid(exc: ValidationError, origin: str) -> PipelineError:
    """A pydantic validation error as one PipelineError naming each bad field."""
    return PipelineError(f"{origin}: invalid settings\n{_format(exc)}")


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """`a.b.c=value` (value parsed as YAML); in `stages.X...`, X is a stage's op name or its index."""
    key, value = split_set(assignment)
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _stage_by(node, part, ".".join(parts[: i + 1]))
        else:
            node = node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise PipelineError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping")
    if isinstance(node, list):
        raise PipelineError(f"--set {key}: name a field inside the stage")
    node[parts[-1]] = value


def _stage_by(stages: list[Any], ref: str, where: str) -> dict[str, Any]:
    if ref.isdigit() and int(ref) < len(stages):
        return stages[int(ref)]
    for stage in stages:
        if isinstance(stage, dict) and stage.get("op") == ref:
            return stage
    raise PipelineError(f"--set: no stage {ref!r} at {where}")


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def parse(raw: Any, origin: str = "<spec>") -> PipelineSpec:
    if not isinstance(raw, dict):
        raise PipelineError(f"{origin}: a pipeline spec is a YAML mapping")
    try:
        return PipelineSpec.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(f"{origin}: invalid pipeline spec\n{_format(exc)}") from None


def load(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> PipelineSpec:
    path = find(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        what = "empty" if raw is None else "not a mapping"
        raise PipelineError(f"{path}: {what}: a pipeline spec is a YAML mapping")
    for assignment in overrides:
        apply_override(raw, assignment)
    return parse(raw, str(path))
