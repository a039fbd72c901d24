"""Assemble a run's report into one self-contained HTML file (jinja2, autoescaped) and write it atomically."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import jinja2

from dataengine import __version__
from dataengine.core.storage import write_bytes_atomic
from dataengine.report import charts, data, gallery, review

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("dataengine.report", "templates"),
    autoescape=True,  # captions, details and records are untrusted text
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def svg_uri(doc: str | None) -> str | None:
    """An SVG as a data URI for an <img>: each chart stays isolated (no shared ids, no scripts run)."""
    return "data:image/svg+xml;base64," + base64.b64encode(doc.encode()).decode("ascii") if doc else None


def context(record: dict[str, Any], gallery_size: int = 24, per_reason: int = 5) -> dict[str, Any]:
    """Everything the template shows: run facts, stats, charts as data URIs, the gallery cards and the review
    sample's first `per_reason` rows per group."""
    stats = data.gather(record)
    return {
        "record": record,
        "stats": stats,
        "charts": {
            "funnel": svg_uri(charts.funnel(stats["funnel"], stats["inputs"])),
            "reasons": svg_uri(charts.reasons(stats["rejects_by_reason"])),
            "languages": svg_uri(charts.languages(stats["languages"], stats["translation"])),
            "tiles": svg_uri(charts.tile_grids(stats["tile_grids"])),
            "scores": svg_uri(charts.scores(stats["score_table"])),
            "drift": svg_uri(charts.drift(stats["score_table"], stats["max_drift"])),
            "throughput": svg_uri(charts.throughput(stats["throughput"])),
        },
        "gallery": gallery.cards(record, gallery_size),
        "review": review.section(record, per_reason),
        "started": _when(record.get("started_at")),
        "generated": _when(datetime.datetime.now(datetime.UTC).timestamp()),
        "version": __version__,
    }


def _when(ts: float | None) -> str | None:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC") if ts else None


def render(record: dict[str, Any], gallery_size: int = 24, per_reason: int = 5) -> str:
    """The report of a run record (from `manifest.load`) as an HTML document."""
    return ENV.get_template("report.html.j2").render(**context(record, gallery_size, per_reason))


def write(record: dict[str, Any], out: str, gallery_size: int = 24, per_reason: int = 5) -> str:
    """Render and write the report to `out` (local path or URI) via temp + rename; returns `out`."""
    write_bytes_atomic(out, render(record, gallery_size, per_reason).encode("utf-8"))
    return out
