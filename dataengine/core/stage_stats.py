"""Per-stage throughput for the manifest, from Ray Data's own execution statistics.

Ray Data fuses consecutive map stages with compatible resources into one operator (e.g. read->resolve->image):
such stages share one entry, named by all of them, since Ray measures them together.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# our UDFs are named `stage_<op>` by `named` (every stage's map_batches and the runner's read); other operators are
# Ray Data's own (shuffles, writes)
_STAGE_NAME = re.compile(r"stage_([a-z_]+)")
_SOURCES = {"FromItems", "InputDataBuffer[Input]"}


def named(udf: Any, stage: str) -> Any:
    """The same UDF under the name `stage_<stage>`, which Ray Data shows as the operator's name (in its progress,
    dashboard and stats): a function is wrapped, an actor class subclassed."""
    name = f"stage_{stage}"
    if isinstance(udf, type):
        return type(name, (udf,), {"__doc__": udf.__doc__})

    @functools.wraps(udf if not isinstance(udf, functools.partial) else udf.func)
    def stage_udf(*args: Any, **kwargs: Any) -> Any:
        return udf(*args, **kwargs)

    stage_udf.__name__ = stage_udf.__qualname__ = name
    return stage_udf


def _stage_of(operator: str) -> str:
    """'MapBatches(stage_read)->MapBatches(stage_resolve)' -> 'read+resolve'; 'JoinShuffleReduce(num_partitions=8)'
    -> 'ray: JoinShuffleReduce'."""
    found = _STAGE_NAME.findall(operator)
    if found:
        return "+".join(dict.fromkeys(found))
    return "ray: " + operator.split("(", 1)[0]  # Ray Data's own operators (dedup's join shuffles), without arguments


def collect(summary: Any, rows_written: int | None = None) -> list[dict[str, Any]]:
    """Operators of a DatasetStatsSummary tree (sources first) -> [{stage, operator, rows, rows_out, tasks, wall_s,
    rows_per_s}]: rows a stage put out (for export and a spill's write: `rows_written`), the Ray tasks it ran (None
    where Ray does not say), and the operator's total time as Ray Data reports it."""
    ordered: list[Any] = []

    def walk(node: Any) -> None:
        for parent in getattr(node, "parents", []) or []:
            walk(parent)
        ordered.extend(reversed(getattr(node, "operators_stats", []) or []))

    walk(summary)
    out: dict[str, dict[str, Any]] = {}
    for op in ordered:
        name = op.operator_name
        if name in out or name in _SOURCES:  # seen through two children; or the list of read tasks itself
            continue
        rows_out = int(op.output_num_rows.sum) if op.output_num_rows else 0
        stage = _stage_of(name)
        # rows a stage processed: its output rows, except export's (one row per file written)
        sink = bool({"export", "spill"} & set(stage.split("+"))) or name.rsplit("->", 1)[-1].startswith("Write")
        rows = rows_written if rows_written is not None and sink else rows_out
        wall = float(op.time_total_s or 0.0)
        tasks = int(op.task_rows.count) if getattr(op, "task_rows", None) else None
        out[name] = {
            "stage": stage, "operator": name, "rows": rows, "rows_out": rows_out, "tasks": tasks,
            "wall_s": round(wall, 3),
        }  # fmt: skip
    for entry in out.values():
        entry["rows_per_s"] = round(entry["rows"] / entry["wall_s"], 2) if entry["wall_s"] > 0 else None
    return list(out.values())


def of_dataset(ds: Any, rows_written: int | None = None) -> list[dict[str, Any]]:
    """Stage stats of an executed dataset; [] when this Ray version's stats API differs (it is not public)."""
    try:
        summary = ds.get_stats_summary() if hasattr(ds, "get_stats_summary") else ds._get_stats_summary()
        return collect(summary, rows_written)
    except Exception:  # the manifest must not fail over a statistics detail
        return []
