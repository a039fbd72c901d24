"""The report's charts as self-contained SVG (matplotlib's SVG backend, text as paths, no fonts needed).

Each function takes numbers from `report.data` and returns an SVG document, or None when there is nothing to
plot; figures are built with the object API (no pyplot state), so this is safe to call from any thread.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
import polars as pl
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

EN, ZH, ACCEPTED, REJECTED, NEUTRAL = "#2f6db3", "#d1495b", "#3a9d5d", "#c0392b", "#6c7a89"
STYLE = {
    "svg.fonttype": "path",
    "svg.hashsalt": "dataengine-report",  # stable ids: the same run gives the same file
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}


@contextmanager
def figure(width: float, height: float, ncols: int = 1) -> Iterator[tuple[Figure, list[Any]]]:
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(1, ncols, squeeze=False)[0].tolist()
        yield fig, axes


def svg(fig: Figure) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def hbar(ax: Any, labels: list[str], values: list[float], color: Any, fmt: str = "{:,.0f}") -> None:
    """Horizontal bars, first label on top, each bar labelled with its value."""
    pos = list(range(len(labels)))[::-1]
    bars = ax.barh(pos, values, color=color)
    ax.set_yticks(pos, labels)
    ax.bar_label(bars, [fmt.format(v) for v in values], padding=3, fontsize=8)
    ax.margins(x=0.15)
    if fmt == "{:,.0f}":
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))


def funnel(rows: list[dict[str, Any]], inputs: int) -> str | None:
    """Rows remaining after each stage, with each stage's rejects."""
    if not inputs:
        return None
    with figure(7.2, 0.45 + 0.32 * (len(rows) + 1)) as (fig, (ax,)):
        labels = ["inputs"] + [f"{r['stage']} (−{r['rejected']})" if r["rejected"] else r["stage"] for r in rows]
        values = [inputs] + [r["left"] for r in rows]
        colors = [NEUTRAL] + [REJECTED if r["rejected"] else ACCEPTED for r in rows]
        hbar(ax, labels, values, colors)
        ax.set_xlabel("rows remaining")
        return svg(fig)


def reasons(rows: list[dict[str, Any]]) -> str | None:
    """Rejects by stage and reason."""
    if not rows:
        return None
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    palette = matplotlib.colormaps["tab10"]
    color = {s: palette(i % 10) for i, s in enumerate(stages)}
    with figure(7.2, 0.45 + 0.26 * len(rows)) as (fig, (ax,)):
        hbar(ax, [f"{r['stage']} / {r['reason']}" for r in rows], [r["len"] for r in rows],
             [color[r["stage"]] for r in rows])  # fmt: skip
        ax.set_xlabel("rejected rows")
        return svg(fig)


def languages(langs: list[dict[str, Any]], translation: list[dict[str, Any]]) -> str | None:
    """Language of the accepted samples, and their translation status when the run translated."""
    langs = [r for r in langs if r["language"] is not None]  # null: the pipeline had no language stage
    if not langs:
        return None
    with figure(7.2, 0.9 + 0.3 * max(len(langs), len(translation), 2), 2 if translation else 1) as (fig, axes):
        hbar(axes[0], [str(r["language"]) for r in langs], [r["len"] for r in langs],
             [ZH if r["language"] == "zh" else EN for r in langs])  # fmt: skip
        axes[0].set_title("detected language (accepted)")
        if translation:
            hbar(axes[1], [r["translation_status"] for r in translation], [r["len"] for r in translation], NEUTRAL)
            axes[1].set_title("translation status")
        return svg(fig)


def tile_grids(rows: list[dict[str, Any]]) -> str | None:
    """Accepted samples per tile grid (cols × rows) and per number of 448px tiles stored."""
    if not rows:
        return None
    df = pl.DataFrame(rows)
    per_tiles = df.group_by("num_tiles").agg(pl.col("len").sum()).sort("num_tiles")
    top = rows[:14]
    with figure(7.2, 0.9 + 0.26 * max(len(top), 4), 2) as (fig, (left, right)):
        hbar(left, [f"{r['grid_cols']}×{r['grid_rows']}" for r in top], [r["len"] for r in top], EN)
        left.set_title("tile grid (cols × rows)")
        right.bar(per_tiles["num_tiles"].to_list(), per_tiles["len"].to_list(), color=NEUTRAL)
        ticks = per_tiles["num_tiles"].to_list()
        if len(ticks) <= 13:
            right.set_xticks(ticks)
        else:
            right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_xlabel("tiles stored per sample (incl. thumbnail)")
        right.set_title("tiles per sample")
        return svg(fig)


def scores(df: pl.DataFrame | None) -> str | None:
    """Histograms of the English and Chinese match scores (and log-likelihoods when scored)."""
    if df is None:
        return None
    pairs = [("match_en", "match_zh", "P(yes): image matches text")]
    if df["loglik_en"].drop_nulls().len() if "loglik_en" in df.columns else 0:
        pairs.append(("loglik_en", "loglik_zh", "mean token log-probability"))
    with figure(7.2, 2.6, len(pairs)) as (fig, axes):
        for ax, (en, zh, title) in zip(axes, pairs, strict=True):
            values = df[en].drop_nulls().to_list() + df[zh].drop_nulls().to_list()
            span = (min(values), max(values)) if values else None
            for col, color, label in ((en, EN, "EN"), (zh, ZH, "ZH")):
                ax.hist(df[col].drop_nulls().to_list(), bins=20, range=span, color=color, label=label,
                        histtype="stepfilled", alpha=0.55)  # fmt: skip
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.set_title(title)
            ax.set_ylabel("samples")
            ax.legend(frameon=False)
        return svg(fig)


def drift(df: pl.DataFrame | None, max_drift: float | None) -> str | None:
    """match_en against match_zh per sample (accepted vs rejected), and the drift histogram with the filter's limit."""
    if df is None or "translation_drift" not in df.columns:
        return None
    paired = df.drop_nulls(["match_en", "match_zh"])
    if not paired.height:
        return None
    with figure(7.2, 2.9, 2) as (fig, (left, right)):
        for accepted, color, label in ((True, ACCEPTED, "accepted"), (False, REJECTED, "rejected")):
            part = paired.filter(pl.col("accepted") == accepted)
            if part.height:
                left.scatter(part["match_en"], part["match_zh"], s=12, color=color, alpha=0.7, label=label)
        lo = min(paired["match_en"].min(), paired["match_zh"].min())
        hi = max(paired["match_en"].max(), paired["match_zh"].max())
        left.plot([lo, hi], [lo, hi], color="#999", lw=0.8, ls="--")
        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        left.set_xlabel("match_en")
        left.set_ylabel("match_zh")
        left.set_title("EN vs ZH match")
        left.legend(frameon=False)
        drifts = paired["translation_drift"].drop_nulls()
        right.hist(drifts.to_list(), bins=24, color=NEUTRAL)
        if max_drift is not None:
            lo, hi = drifts.min(), drifts.max()
            span = (hi - lo) or 1.0
            if lo - span <= max_drift <= hi + span:  # a limit far off the data would squash the histogram
                right.axvline(max_drift, color=REJECTED, ls="--", label=f"max_drift {max_drift:g}")
                right.legend(frameon=False)
            else:
                right.set_title(f"translation drift\n(filter max_drift {max_drift:g}, off scale)")
        right.set_xlabel("translation_drift = match_en − match_zh")
        if not right.get_title():
            right.set_title("translation drift")
        return svg(fig)


def throughput(rows: list[dict[str, Any]] | None) -> str | None:
    """Rows per second through each stage (Ray Data operator)."""
    if not rows:
        return None
    timed = [r for r in rows if r["rows_per_s"] is not None]
    if not timed:
        return None
    with figure(7.2, 0.45 + 0.3 * len(timed)) as (fig, (ax,)):
        hbar(ax, [r["stage"] for r in timed], [r["rows_per_s"] for r in timed], EN, fmt="{:,.1f}/s")
        ax.set_xlabel("rows per second")
        return svg(fig)
