"""Capacity planning: how many nodes of each type of a Ray cluster config a pipeline needs for a daily volume, and
how long a run takes on a local cluster, from per-stage unit costs (`dataengine bench stages` measures them).

The arithmetic, stage by stage in the pipeline's order:
- rows alive: the day's input pairs, shrunk by each stage's pass fraction (`flow.pass`, measured on the bench's
  sample; the filter's is its `keep_top_fraction`);
- units: a row stage's are the live rows entering it; dedup's its signatures (live rows entering); translate's the
  thousands of tokens of its English rows (`flow.english` x `flow.tokens_per_translation`); tile's the images; score's
  the tiles the scorer sees (`flow.scored_tiles_per_sample`: 1 for a thumbnail-only scorer, `train scorer`'s
  default); read's and export's every input row (rejects are written too);
- CPU seconds: units x the measured one-process seconds a unit x max(1, the stage's declared num_cpus): a task
  holds its declared CPUs while it runs, and never uses less than the one core it runs on;
- GPU seconds: units x the GPU seconds a unit (estimates until measured on a GPU: `estimate: true`); a GPU stage
  also holds num_cpus / num_gpus CPUs for each of its GPU seconds;
- nodes of a type: its CPU seconds / (window x the type's CPUs x Ray's parallel efficiency), its GPU seconds /
  (window x GPUs x `ray.gpu_busy`), whichever is larger, rounded up.

A stage runs on the node type carrying one of its custom resources (`resources.custom`, as pipelines/bilingual.yaml
places its stages), else on the first type with GPUs (GPU stages) or with CPUs and no GPUs (the others).
Everything here is arithmetic on files: no Ray, no models.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataengine.core.storage import PACKAGE_DIR, join
from dataengine.pipeline import PipelineSpec

COSTS_VERSION = 1
DEFAULT_COSTS = PACKAGE_DIR / "unit_costs.json"  # shipped: measured on the machine it names
READ = "read"  # the runner's read tasks: not a stage of the spec, but every input row passes them
ROW_STAGES = {"resolve", "image", "text", "blocklist", "language"}
ALL_ROWS = {READ, "export"}  # stages whose units are every input row, rejected or not


class PlanError(ValueError):
    """A costs file, cluster config or assumption that cannot be used; the message says which and why."""


def costs_path(storage: str) -> str:
    """Where `bench stages` writes its measurement under a data root."""
    return join(storage, "bench", "unit_costs.json")


def load_costs(path: str | Path | None, storage: str | None = None) -> tuple[dict[str, Any], str]:
    """The unit costs and where they came from: `path`, else the data root's last `bench stages` measurement,
    else the costs shipped with the package."""
    candidates = [Path(path)] if path else []
    if not path and storage and Path(costs_path(storage)).is_file():
        candidates.append(Path(costs_path(storage)))
    candidates.append(DEFAULT_COSTS)
    chosen = candidates[0]
    if not chosen.is_file():
        raise PlanError(f"costs file not found: {chosen}")
    try:
        costs = json.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PlanError(f"{chosen}: not a JSON costs file ({exc})") from None
    check_costs(costs, str(chosen))
    return costs, str(chosen)


def check_costs(costs: Any, origin: str) -> None:
    """Raise PlanError unless `costs` has this version's shape."""
    if not isinstance(costs, dict) or costs.get("version") != COSTS_VERSION:
        raise PlanError(f"{origin}: not a version {COSTS_VERSION} unit-costs file")
    for key in ("stages", "flow", "ray"):
        if not isinstance(costs.get(key), dict):
            raise PlanError(f"{origin}: no '{key}' mapping")
    for name, entry in costs["stages"].items():
        if not isinstance(entry, dict) or not ({"core_s", "gpu_s"} & set(entry)):
            raise PlanError(f"{origin}: stages.{name} needs core_s or gpu_s (seconds a unit)")
    ray = costs["ray"]
    if not 0 < float(ray.get("efficiency", 0)) <= 1:
        raise PlanError(f"{origin}: ray.efficiency must be in (0, 1]")


def assume(costs: dict[str, Any], assignments: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """A copy of `costs` with `flow` or `ray` values replaced: `pass.dedup=0.9`, `english=0.5`,
    `ray.efficiency=0.8` (a key without `ray.` is in `flow`)."""
    out = json.loads(json.dumps(costs))
    for a in assignments:
        key, sep, value = a.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not key or math.isnan(number) or number < 0:
            raise PlanError(f"--assume expects KEY=NUMBER (e.g. pass.dedup=0.9), got {a!r}")
        parts = key.strip().split(".")
        node = out if parts[0] == "ray" else out["flow"]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PlanError(f"--assume {key}: {part} is not a mapping")
        node[parts[-1]] = number
    check_costs(out, "--assume")
    return out


@dataclass(frozen=True)
class NodeType:
    name: str
    cpus: float
    gpus: float
    resources: dict[str, float]
    max_workers: int | None


def load_cluster(path: str | Path) -> list[NodeType]:
    """The node types of a Ray cluster launcher config (`available_node_types`), safe-loaded."""
    p = Path(path)
    if not p.is_file():
        raise PlanError(f"cluster config not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PlanError(f"{p}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    types = raw.get("available_node_types") if isinstance(raw, dict) else None
    if not isinstance(types, dict) or not types:
        raise PlanError(f"{p}: no available_node_types")
    out = []
    for name, spec in types.items():
        res = (spec or {}).get("resources") or {}
        if not isinstance(res, dict):
            raise PlanError(f"{p}: available_node_types.{name}.resources is not a mapping")
        mw = (spec or {}).get("max_workers")
        out.append(
            NodeType(
                name,
                float(res.get("CPU", 0)),
                float(res.get("GPU", 0)),
                {k: float(v) for k, v in res.items()},
                int(mw) if mw is not None else None,
            )
        )
    return out


@dataclass
class StageLoad:
    """One stage's day (or run): its units, and the CPU and GPU seconds they hold on its node type."""

    stage: str
    node_type: str | None
    unit: str
    units: float
    rows_in: float
    core_s: float
    gpu_s: float
    estimate: bool
    basis: str = ""


@dataclass
class Plan:
    pairs: float
    window_s: float
    stages: list[StageLoad]
    nodes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "window_s": self.window_s,
            "stages": [s.__dict__ for s in self.stages],
            "nodes": self.nodes,
            "notes": self.notes,
        }


def _flow(costs: dict[str, Any], key: str) -> float:
    value = costs["flow"].get(key)
    if value is None:
        raise PlanError(f"the costs file has no flow.{key} (set it with --assume {key}=NUMBER)")
    return float(value)


def _pass(costs: dict[str, Any], spec: PipelineSpec, op: str) -> float:
    if op == "filter":
        return float(getattr(spec.stage("filter"), "keep_top_fraction", None) or 1.0)
    return float(costs["flow"].get("pass", {}).get(op, 1.0))


def stage_loads(spec: PipelineSpec, costs: dict[str, Any], pairs: float) -> list[StageLoad]:
    """Per stage (read first): units, CPU seconds and GPU seconds for `pairs` input rows (see the module's doc)."""
    known = costs["stages"]
    configs = {s.op: s for s in spec.stages}
    alive, out = float(pairs), []
    for op in [READ, *configs]:
        if op not in known:
            raise PlanError(f"the costs file has no unit cost for stage '{op}' (run `dataengine bench stages`)")
        entry = known[op]
        cfg = configs.get(op, spec.stages[0])  # read runs fused with the first stage, on its resources
        if op in ALL_ROWS:
            units = float(pairs)
        elif op == "translate":
            units = alive * _flow(costs, "english") * _flow(costs, "tokens_per_translation") / 1000
        elif op == "score":
            units = alive * _flow(costs, "scored_tiles_per_sample")
        else:
            units = alive
        res = cfg.resources
        gpu_s = units * float(entry.get("gpu_s", 0.0)) if res.num_gpus else 0.0
        if res.num_gpus and "gpu_s" not in entry:
            raise PlanError(f"stage '{op}' asks for GPUs but the costs file has no gpu_s for it")
        if res.num_gpus:
            core_s = gpu_s * res.num_cpus / res.num_gpus  # CPUs held beside the GPU share
        else:
            if "core_s" not in entry:
                raise PlanError(f"stage '{op}' runs on CPUs here but the costs file has no core_s for it")
            core_s = units * float(entry["core_s"]) * max(1.0, res.num_cpus)
        out.append(
            StageLoad(
                op, None, entry.get("unit", ""), units, alive if op not in ALL_ROWS else float(pairs), core_s,
                gpu_s, bool(entry.get("estimate")) and bool(res.num_gpus), entry.get("basis", ""),
            )
        )  # fmt: skip
        if op not in ALL_ROWS:
            alive *= _pass(costs, spec, op)
    return out


def node_type_for(cfg: Any, types: list[NodeType]) -> NodeType:
    """The node type a stage's tasks land on (see the module's doc)."""
    res = cfg.resources
    for name in res.custom:
        for t in types:
            if t.resources.get(name, 0) > 0:
                return t
    if res.num_gpus:
        found = next((t for t in types if t.gpus > 0), None)
    else:
        found = next((t for t in types if t.cpus > 0 and t.gpus == 0), None) or next(
            (t for t in types if t.cpus > 0), None
        )
    if found is None:
        raise PlanError(f"no node type of the cluster config can run stage '{cfg.op}' ({res.model_dump()})")
    return found


def capacity(
    spec: PipelineSpec, costs: dict[str, Any], types: list[NodeType], pairs: float, hours: float = 24.0
) -> Plan:
    """Per stage and per node type: CPU and GPU seconds and the nodes that do `pairs` in `hours`."""
    if pairs <= 0 or hours <= 0:
        raise PlanError("pairs per day and hours must be positive")
    window = hours * 3600.0
    eff = float(costs["ray"]["efficiency"])
    gpu_busy = float(costs["ray"].get("gpu_busy", 1.0))
    loads = stage_loads(spec, costs, pairs)
    configs = {s.op: s for s in spec.stages}
    for load in loads:
        load.node_type = node_type_for(configs.get(load.stage, spec.stages[0]), types).name
    plan = Plan(pairs, window, loads)
    for t in types:
        mine = [s for s in loads if s.node_type == t.name]
        if not mine:
            continue
        core_s, gpu_s = sum(s.core_s for s in mine), sum(s.gpu_s for s in mine)
        by_cpu = core_s / (window * t.cpus * eff) if t.cpus else math.inf
        by_gpu = gpu_s / (window * t.gpus * gpu_busy) if gpu_s and t.gpus else 0.0
        needed = max(by_cpu, by_gpu)
        row = {
            "node_type": t.name,
            "stages": [s.stage for s in mine],
            "core_s": core_s,
            "gpu_s": gpu_s,
            "nodes_by_cpu": by_cpu,
            "nodes_by_gpu": by_gpu,
            "nodes": math.ceil(needed - 1e-9),
            "max_workers": t.max_workers,
            "gpu_estimate": any(s.estimate for s in mine),
        }
        plan.nodes.append(row)
        if t.max_workers is not None and row["nodes"] > t.max_workers:
            plan.notes.append(f"{t.name}: {row['nodes']} nodes needed, max_workers is {t.max_workers}")
    plan.notes.append(f"CPU nodes at Ray parallel efficiency {eff:.2f} ({costs['ray'].get('basis', 'as given')})")
    if any(s.gpu_s for s in loads):
        plan.notes.append(
            f"GPU figures are estimates until measured on a GPU; GPUs busy {gpu_busy:.0%} of the window "
            f"({costs['ray'].get('gpu_busy_basis', 'assumed')})"
        )
    return plan


def predict_wall(
    spec: PipelineSpec, costs: dict[str, Any], inputs: int, cpus: float, cold: bool = True
) -> dict[str, Any]:
    """Wall seconds of a run of `inputs` rows on a local cluster of `cpus` cores (CPU stages only): Ray's fixed
    seconds a run (plus its cold start on fresh workers) + the stages' CPU seconds / (cpus x efficiency)."""
    if inputs <= 0 or cpus <= 0:
        raise PlanError("--inputs and --cpus must be positive")
    loads = stage_loads(spec, costs, inputs)
    gpu = [s.stage for s in loads if s.gpu_s]
    if gpu:
        raise PlanError(f"a local wall is predicted for CPU pipelines only; {', '.join(gpu)} ask for GPUs")
    ray = costs["ray"]
    eff, fixed = float(ray["efficiency"]), float(ray.get("fixed_s", 0.0))
    start = float(ray.get("cold_start_s", 0.0)) if cold else 0.0
    core_s = sum(s.core_s for s in loads)
    wall = fixed + start + core_s / (cpus * eff)
    return {
        "inputs": inputs,
        "cpus": cpus,
        "efficiency": eff,
        "fixed_s": fixed,
        "cold_start_s": start,
        "core_s": core_s,
        "wall_s": wall,
        "stages": [{"stage": s.stage, "units": s.units, "core_s": s.core_s} for s in loads],
    }
