"""Capacity planning commands: `plan capacity` (nodes of each type of a cluster config for a daily volume) and
`plan wall` (the wall of one run on a local cluster). The arithmetic is in dataengine.plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from rich.table import Table

from dataengine import pipeline
from dataengine import plan as planner
from dataengine.cli.base import console, main, set_option


@main.group("plan")
def plan_group() -> None:
    """Capacity planning from measured unit costs (`dataengine bench stages`)."""


def _one_line(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A costs file, cluster config or assumption that cannot be used ends in one line, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except planner.PlanError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _costs_line(costs: dict[str, Any], origin: str) -> str:
    m = costs.get("measured", {})
    return f"unit costs: {origin} (measured {m.get('date', '?')} on {m.get('machine', '?')})"


def _flow_line(costs: dict[str, Any]) -> str:
    flow = costs["flow"]
    passes = ", ".join(f"{k} {v:.3g}" for k, v in flow.get("pass", {}).items())
    return (
        f"flow: pass fractions {passes}; English share {flow.get('english')}; tiles scored per sample "
        f"{flow.get('scored_tiles_per_sample')}; tokens per translation {flow.get('tokens_per_translation')}"
    )


COSTS_HELP = "unit costs JSON (default: <storage>/bench/unit_costs.json, else the shipped one)"
ASSUME_HELP = "override a flow or ray figure, e.g. pass.dedup=0.9, english=0.5, ray.efficiency=0.8 (repeatable)"
common = [
    click.option("--pipeline", "pipeline_name", default="clean", show_default=True, help="pipeline name or YAML"),
    click.option("--costs", "costs_file", default=None, help=COSTS_HELP),
    click.option("--assume", multiple=True, metavar="KEY=NUMBER", help=ASSUME_HELP),
    set_option("override a pipeline spec value (repeatable)"),
    click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables"),
]


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(common):
        fn = option(fn)
    return fn


def _load(ctx: click.Context, name: str, sets: tuple[str, ...], costs_file: str | None, assumptions: tuple[str, ...]):
    spec = pipeline.load(name, sets)
    costs, origin = planner.load_costs(costs_file, ctx.obj["storage"])
    return spec, planner.assume(costs, assumptions), origin


@plan_group.command("capacity")
@click.option("--pairs-per-day", "pairs", required=True, type=float, help="input image-text pairs a day, e.g. 1e9")
@click.option("--cluster", default="ray_cluster.yaml", show_default=True, help="Ray cluster launcher config")
@click.option("--hours", default=24.0, show_default=True, type=float, help="the window the day's pairs must fit")
@_common
@click.pass_context
@_one_line
def capacity_cmd(
    ctx: click.Context,
    pairs: float,
    cluster: str,
    hours: float,
    pipeline_name: str,
    costs_file: str | None,
    assume: tuple[str, ...],
    sets: tuple[str, ...],
    as_json: bool,
) -> None:
    """Per stage and node type of the cluster config: core-seconds, GPU-seconds and the nodes needed."""
    spec, costs, origin = _load(ctx, pipeline_name, sets, costs_file, assume)
    types = planner.load_cluster(cluster)
    result = planner.capacity(spec, costs, types, pairs, hours)
    if as_json:
        out = {"pipeline": spec.name, "costs": origin, "flow": costs["flow"], "ray": costs["ray"], **result.as_dict()}
        console.print_json(json.dumps(out))
        return
    title = f"{spec.name}: {_num(pairs)} pairs in {hours:g} h"
    stages = Table("stage", "node type", "unit", "units", "core-s", "GPU-s", title=title)
    for s in result.stages:
        gpu = _num(s.gpu_s) + (" (estimate)" if s.estimate else "")
        stages.add_row(s.stage, s.node_type or "", s.unit, _num(s.units), _num(s.core_s), gpu)
    console.print(stages)
    cpus = {t.name: t for t in types}
    nodes = Table("node type", "CPUs", "GPUs", "core-s", "GPU-s", "by CPU", "by GPU", "nodes", "max_workers")
    for n in result.nodes:
        t = cpus[n["node_type"]]
        nodes.add_row(
            n["node_type"], f"{t.cpus:g}", f"{t.gpus:g}", _num(n["core_s"]),
            _num(n["gpu_s"]) + (" (estimate)" if n["gpu_estimate"] else ""), f"{n['nodes_by_cpu']:.2f}",
            f"{n['nodes_by_gpu']:.2f}", str(n["nodes"]), str(n["max_workers"]),
        )  # fmt: skip
    console.print(nodes)
    for line in [_costs_line(costs, origin), _flow_line(costs), *result.notes]:
        console.print(f"- {line}")


@plan_group.command("wall")
@click.option("--inputs", required=True, type=int, help="input rows of the run")
@click.option("--cpus", required=True, type=float, help="cores the run's Ray cluster has (all nodes)")
@click.option("--warm", is_flag=True, help="workers already started (no cold start)")
@_common
@click.pass_context
@_one_line
def wall_cmd(
    ctx: click.Context,
    inputs: int,
    cpus: float,
    warm: bool,
    pipeline_name: str,
    costs_file: str | None,
    assume: tuple[str, ...],
    sets: tuple[str, ...],
    as_json: bool,
) -> None:
    """The predicted wall of one run on a local Ray cluster of CPUS cores (CPU pipelines)."""
    spec, costs, origin = _load(ctx, pipeline_name, sets, costs_file, assume)
    result = planner.predict_wall(spec, costs, inputs, cpus, cold=not warm)
    if as_json:
        console.print_json(json.dumps({"pipeline": spec.name, "costs": origin, **result}))
        return
    table = Table("stage", "units", "core-s", title=f"{spec.name}: {inputs} inputs on {cpus:g} cores")
    for s in result["stages"]:
        table.add_row(s["stage"], _num(s["units"]), f"{s['core_s']:.1f}")
    console.print(table)
    console.print(
        f"predicted wall {result['wall_s']:.1f} s = fixed {result['fixed_s']:.1f} s + cold start "
        f"{result['cold_start_s']:.1f} s + {result['core_s']:.1f} core-s / ({cpus:g} cores x efficiency "
        f"{result['efficiency']:.2f})"
    )
    console.print(f"- {_costs_line(costs, origin)}")
    console.print(f"- {_flow_line(costs)}")
