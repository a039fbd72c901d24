"""Commands on committed runs: `runs`, `inspect`, `report` (the self-contained HTML report), `review` (a sample
to judge, read back by `inspect`) and `export internvl`."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from dataengine import manifest
from dataengine.cli.base import console, err_console, export_group, main
from dataengine.core.storage import join


@main.command()
@click.pass_context
def runs(ctx: click.Context) -> None:
    """List runs, newest first."""
    table = Table("run id", "pipeline", "status", "wall s", "output")
    for rec in manifest.list_runs(ctx.obj["storage"]):
        table.add_row(rec["run_id"], rec["pipeline"], rec["status"], str(rec.get("wall_s", "")), rec["output"])
    console.print(table)


def load_run(ctx: click.Context, run_id: str) -> dict[str, Any]:
    """RUN_ID's record, or a one-line error naming where it was looked for."""
    try:
        return manifest.load(run_id, ctx.obj["storage"])
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("run_id")
@click.option("--config/--no-config", default=True, help="print the run's pipeline config")
@click.option("--review", "review_file", default=None,
              help="review file to read verdicts from (default: the run's own, when it exists)")  # fmt: skip
@click.pass_context
def inspect(ctx: click.Context, run_id: str, config: bool, review_file: str | None) -> None:
    """Show a run's config, stage counts and reject reasons (computed from its Parquet), and the precision of
    each reason from a filled-in review file."""
    from dataengine.core.storage import exists
    from dataengine.report import review
    from dataengine.report.summary import print_summary

    record = load_run(ctx, run_id)
    path = review_file or review.path_for(record)
    groups = None
    if review_file or exists(path):  # checked first: a bad verdict is the one line shown
        try:
            groups = review.precision(review.load(path), path, run_id)
        except review.ReviewError as exc:
            raise click.ClickException(str(exc)) from None
    print_summary(record, console, show_config=config)
    if groups is not None:
        review.print_precision(console, path, groups)


@main.command("review")
@click.argument("run_id")
@click.option("--out", default=None,
              help="Parquet file to write (default: <output>/review/review-<run token>.parquet)")  # fmt: skip
@click.option("--per-reason", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="rows sampled per reject reason (stage/reason), and accepted rows")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="replace a review file that already holds verdicts")
@click.pass_context
def review_cmd(ctx: click.Context, run_id: str, out: str | None, per_reason: int, overwrite: bool) -> None:
    """Write a sample of RUN_ID for a person to judge: up to N rows per reject reason and N accepted, seeded by
    the run id, with an empty `verdict` column (correct or wrong) that `inspect` reads back as precision."""
    from collections import Counter

    from dataengine.report import review

    record = load_run(ctx, run_id)
    try:
        path, table = review.write(record, out, per_reason, overwrite)
    except review.ReviewError as exc:
        raise click.ClickException(str(exc)) from None
    sizes = dict(zip(table.column("group").to_pylist(), table.column("group_rows").to_pylist(), strict=True))
    counts = Counter(table.column("group").to_pylist())
    listing = Table("group", "sampled", "in run", title=f"review sample: {table.num_rows} rows")
    for group, n in counts.items():
        listing.add_row(escape(group), str(n), str(sizes[group]))
    console.print(listing)
    console.out(f"review: {path}")
    console.out(
        "fill its verdict column with correct or wrong (an accepted row belongs in the dataset; a reject's reason "
        f"applies to it), then: dataengine inspect {run_id}" + (f" --review {path}" if out else "")
    )


@main.command()
@click.argument("run_id")
@click.option("--out", default=None, help="HTML file to write (default: <storage>/runs/<RUN_ID>/report.html)")
@click.option("--gallery", default=24, show_default=True, type=click.IntRange(0, 1000),
              help="accepted and rejected samples to show (each)")  # fmt: skip
@click.option("--per-reason", default=5, show_default=True, type=click.IntRange(0, 100),
              help="review sample rows to show per reject reason and accepted (0: none)")  # fmt: skip
@click.option("--screenshot", "png", default=None, type=click.Path(dir_okay=False),
              help="also save a PNG of the rendered report (needs playwright and Chromium)")  # fmt: skip
@click.option("--screenshot-height", default=1600, show_default=True, type=click.IntRange(0),
              help="pixels from the top to capture; 0 for the full page")  # fmt: skip
@click.pass_context
def report(
    ctx: click.Context,
    run_id: str,
    out: str | None,
    gallery: int,
    per_reason: int,
    png: str | None,
    screenshot_height: int,
) -> None:
    """Write RUN_ID's report: funnel, rejects, languages, tiles, scores, drift, throughput, a gallery and the
    review sample per reason."""
    from dataengine.core.storage import write_bytes_atomic
    from dataengine.report import render

    record = load_run(ctx, run_id)
    out = out or join(ctx.obj["storage"], "runs", run_id, "report.html")
    render.write(record, out, gallery, per_reason)
    console.out(f"report: {out}")
    if png:
        import os
        import tempfile

        from dataengine.report.browser import screenshot

        with tempfile.TemporaryDirectory() as tmp:
            shot = os.path.join(tmp, "report.png")
            try:
                messages = screenshot(out, shot, height=screenshot_height or None)
            except RuntimeError as exc:
                raise click.ClickException(str(exc)) from None
            with open(shot, "rb") as f:
                write_bytes_atomic(png, f.read())
        for m in messages:
            if m["type"] in ("error", "pageerror"):
                err_console.out(f"browser {m['type']}: {m['text']}")
        console.out(f"screenshot: {png}")


@export_group.command("internvl")
@click.argument("run_id")
@click.argument("out")
@click.pass_context
def export_internvl_cmd(ctx: click.Context, run_id: str, out: str) -> None:
    """Write RUN_ID as InternVL fine-tuning data (meta JSON + JSONL + images) into OUT, for --meta_path."""
    from dataengine.export_internvl import export_internvl

    try:
        meta = export_internvl(run_id, out, ctx.obj["storage"])
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for name, entry in meta.items():
        console.print(f"{name}: {entry['length']} samples -> {entry['annotation']}")
    console.print(f"meta: {join(out, 'meta.json')}  (InternVL: --meta_path {join(out, 'meta.json')})")
