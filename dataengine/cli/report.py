"""Commands on committed runs: `runs`, `inspect`, `report` (the self-contained HTML report) and
`export internvl`."""

from __future__ import annotations

import click
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


@main.command()
@click.argument("run_id")
@click.option("--config/--no-config", default=True, help="print the run's pipeline config")
@click.pass_context
def inspect(ctx: click.Context, run_id: str, config: bool) -> None:
    """Show a run's config, stage counts and reject reasons (computed from its Parquet)."""
    from dataengine.report.summary import print_summary

    try:
        record = manifest.load(run_id, ctx.obj["storage"])
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(record, console, show_config=config)


@main.command()
@click.argument("run_id")
@click.option("--out", default=None, help="HTML file to write (default: <storage>/runs/<RUN_ID>/report.html)")
@click.option("--gallery", default=24, show_default=True, type=click.IntRange(0, 1000),
              help="accepted and rejected samples to show (each)")  # fmt: skip
@click.option("--screenshot", "png", default=None, type=click.Path(dir_okay=False),
              help="also save a PNG of the rendered report (needs playwright and Chromium)")  # fmt: skip
@click.option("--screenshot-height", default=1600, show_default=True, type=click.IntRange(0),
              help="pixels from the top to capture; 0 for the full page")  # fmt: skip
@click.pass_context
def report(
    ctx: click.Context, run_id: str, out: str | None, gallery: int, png: str | None, screenshot_height: int
) -> None:
    """Write RUN_ID's report: funnel, rejects, languages, tiles, scores, drift, throughput and a gallery."""
    from dataengine.core.storage import write_bytes_atomic
    from dataengine.report import render

    try:
        record = manifest.load(run_id, ctx.obj["storage"])
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    out = out or join(ctx.obj["storage"], "runs", run_id, "report.html")
    render.write(record, out, gallery)
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
