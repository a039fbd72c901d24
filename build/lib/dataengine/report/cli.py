"""`dataengine report RUN_ID`: the run's self-contained HTML report (registered on the main CLI)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
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
        from dataengine import manifest
        from dataengine.report import render
        from dataengine.storage import join, write_bytes_atomic

        try:
            record = manifest.load(run_id, ctx.obj["storage"])
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        out = out or join(ctx.obj["storage"], "runs", run_id, "report.html")
        render.write(record, out, gallery)
        click.echo(f"report: {out}")
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
                    click.echo(f"browser {m['type']}: {m['text']}", err=True)
            click.echo(f"screenshot: {png}")
