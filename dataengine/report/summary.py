"""Run statistics computed with polars over a run's Parquet files (the only copy of the numbers)."""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def _scan(files: list[str], columns: list[str]) -> pl.LazyFrame | None:
    return pl.scan_parquet(files).select(columns) if files else None


def run_stats(record: dict[str, Any]) -> dict[str, Any]:
    """Accepted/rejected counts, rejects by stage and reason, language mix of accepted samples."""
    files = record.get("files") or {}
    samples = _scan(files.get("samples", []), ["id", "language"])
    rejects = _scan(files.get("rejects", []), ["id", "stage", "reason"])
    accepted = samples.select(pl.len()).collect().item() if samples is not None else 0
    rejected = rejects.select(pl.len()).collect().item() if rejects is not None else 0
    by_reason = (
        rejects.group_by("stage", "reason")
        .len()
        .sort(["len", "stage", "reason"], descending=[True, False, False])
        .collect()
        .rows(named=True)
        if rejects is not None
        else []
    )
    by_stage = (
        rejects.group_by("stage").len().sort("len", descending=True).collect().rows(named=True)
        if rejects is not None
        else []
    )
    languages = (
        samples.group_by("language").len().sort("len", descending=True).collect().rows(named=True)
        if samples is not None
        else []
    )
    return {
        "inputs": accepted + rejected,
        "accepted": accepted,
        "rejected": rejected,
        "rejects_by_stage": by_stage,
        "rejects_by_reason": by_reason,
        "languages": languages,
        "scores": score_stats(files.get("samples", [])),
    }


def score_stats(files: list[str]) -> dict[str, Any] | None:
    """Mean match per language and drift quantiles of the accepted samples, when a scorer ran."""
    if not files or "scorer_model" not in pl.read_parquet_schema(files[0]):
        return None
    cols = ["match_en", "match_zh", "translation_drift", "scorer_model"]
    df = pl.scan_parquet(files).select(cols).filter(pl.col("scorer_model").is_not_null()).collect()
    if df.height == 0:
        return None
    return {
        "scorer": df["scorer_model"][0],
        "scored": df.height,
        "match_en_mean": df["match_en"].mean(),
        "match_zh_mean": df["match_zh"].mean(),
        "drift_median": df["translation_drift"].median(),
        "drift_p95": df["translation_drift"].quantile(0.95),
    }


def print_summary(record: dict[str, Any], console: Console | None = None, show_config: bool = False) -> None:
    console = console or Console()
    stats = run_stats(record)
    console.rule(escape(f"run {record['run_id']} ({record.get('status', '?')})"))
    for label in ("pipeline", "input", "output"):  # user-given text: never read as rich markup
        console.print(f"{label:<9} {record[label]}", markup=False)
    inc = record.get("incremental")
    if inc:
        done = f"commit {inc['commit']}" if "commit" in inc else "nothing new to commit"
        changed = f", {inc['shards_superseded']} changed since their commit" if inc.get("shards_superseded") else ""
        rebuilt = " (rebuild: replaces the whole dataset)" if inc.get("rebuild") else ""
        console.print(
            f"dataset   {inc['dataset']}: {inc['shards_skipped']} of {inc['shards_total']} input shards already "
            f"committed{changed}; {done}{rebuilt}",
            markup=False,
        )
    if "wall_s" in record:
        rate = stats["inputs"] / record["wall_s"] if record["wall_s"] else 0.0
        console.print(f"wall time {record['wall_s']:.1f} s ({rate:.1f} samples/s)")
    console.print(f"inputs {stats['inputs']}  accepted {stats['accepted']}  rejected {stats['rejected']}")
    if stats["languages"]:
        console.print("languages " + ", ".join(f"{r['language']} {r['len']}" for r in stats["languages"]))
    if stats["scores"]:
        sc = stats["scores"]

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        console.print(
            f"scores    {sc['scorer']} on {sc['scored']} samples: mean match_en {fmt(sc['match_en_mean'])}, "
            f"match_zh {fmt(sc['match_zh_mean'])}; drift median {fmt(sc['drift_median'])}, "
            f"p95 {fmt(sc['drift_p95'])}"
        )
    if stats["rejects_by_reason"]:
        table = Table("stage", "reason", "count", title="rejected by reason")
        for r in stats["rejects_by_reason"]:
            table.add_row(escape(r["stage"]), escape(r["reason"]), str(r["len"]))
        console.print(table)
    acc = record.get("accounting")
    if acc:
        line = Text("accounting ")
        line.append("OK" if acc["ok"] else "VIOLATED", style="green" if acc["ok"] else "red")
        line.append(
            f": inputs {acc['inputs']} = accepted {acc['accepted']} + rejected {acc['rejected']}"
            f" (missing {acc['missing']}, duplicated {acc['ids_in_both_or_twice']})"
        )
        console.print(line)
    if show_config:
        import yaml

        console.print(yaml.safe_dump(record["config"], sort_keys=False, allow_unicode=True), markup=False)
