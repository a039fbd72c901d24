"""Commands that make a run: `run`, `demo` and `sample-data`, and the progress view a run shows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.live import Live
from rich.table import Table

from dataengine import pipeline
from dataengine.cli.base import console, main, set_option
from dataengine.core.storage import delete_dir, join


def _run(
    ctx: click.Context,
    name: str,
    input_uri: str | None,
    output: str | None,
    sets: tuple[str, ...],
    address: str | None,
    verbose: bool = False,
) -> None:
    from dataengine import runner
    from dataengine.report.summary import print_summary

    try:
        spec = pipeline.load(name, sets)
    except pipeline.PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    if not verbose:  # one progress view instead of Ray's bars and log lines
        spec = spec.model_copy(update={"ray": spec.ray.model_copy(update={"progress": False})})
    view = _ProgressView(["ingest", *(s.op for s in spec.stages)])
    try:
        with _live(view, verbose) as live:
            record = runner.run(
                spec,
                input_uri=input_uri,
                output_uri=output,
                address=address,
                storage=ctx.obj["storage"],
                progress=None if verbose else lambda counts: live.update(view.render(counts)),
                quiet=not verbose,
            )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except ConnectionError as exc:
        where = f"the Ray cluster at {address} (check --address)" if address else "a service the run needs"
        raise click.ClickException(f"cannot reach {where}: {exc}") from None
    print_summary(record, console)


@contextmanager
def _live(view: _ProgressView, verbose: bool) -> Iterator[Live | None]:
    """The progress view while a run executes (nothing with --verbose), ended by a line break however it ends."""
    from rich.live import Live

    if verbose:
        yield None
        return
    try:
        with Live(view.render({}), console=console, refresh_per_second=4) as live:
            yield live
    finally:
        console.print()


class _ProgressView:
    """What a run shows while it executes: each stage's rows and rejects so far, and the time elapsed."""

    def __init__(self, stages: list[str]):
        self.stages = list(dict.fromkeys(stages))
        self.t0 = time.monotonic()

    def render(self, counts: dict[str, tuple[int, int]]) -> Table:
        table = Table("stage", "rows", "rejected", title=f"running: {time.monotonic() - self.t0:.0f} s elapsed")
        for stage in self.stages:
            rows, rejected = counts.get(stage, (0, 0))
            table.add_row(stage, f"{rows:,}" if stage in counts else "-", f"{rejected:,}" if stage in counts else "-")
        return table


@main.command()
@click.argument("pipeline_name", metavar="PIPELINE")
@click.option("--input", "input_uri", help="input file/directory or URI (overrides input.uri)")
@click.option("--output", help="output directory or URI (default: <storage>/runs/<run_id>)")
@set_option("override a spec value, e.g. stages.image.min_side=64 (repeatable)")
@click.option("--address", help="Ray cluster address; default: start a local Ray")
@click.option("--verbose", is_flag=True, help="show Ray's own progress bars and log lines instead of one view")
@click.pass_context
def run(
    ctx: click.Context,
    pipeline_name: str,
    input_uri: str | None,
    output: str | None,
    sets: tuple[str, ...],
    address: str | None,
    verbose: bool,
) -> None:
    """Run PIPELINE (a name in pipelines/ or a YAML path)."""
    _run(ctx, pipeline_name, input_uri, output, sets, address, verbose)


@main.command()
@click.option("--rebuild", is_flag=True, help="rebuild the sample dataset even if present")
@set_option()
@click.option("--verbose", is_flag=True, help="show Ray's own progress bars and log lines instead of one view")
@click.pass_context
def demo(ctx: click.Context, rebuild: bool, sets: tuple[str, ...], verbose: bool) -> None:
    """Build the offline sample dataset (if missing) and run pipelines/demo.yaml on it."""
    from dataengine import sample_data
    from dataengine.models import ModelError, pull

    target = join(ctx.obj["storage"], "datasets", "demo")
    sample_data.ensure(target, rebuild=rebuild, console=console)
    spec = pipeline.load("demo", sets)
    needed = {s.model for s in spec.stages if s.op in ("translate", "quality") and s.engine == "transformers"}
    for name in sorted(needed & {"demo-translator"}):
        try:
            pull(name, ctx.obj["storage"], log=console.print)  # no-op once registered and converted
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
    if "demo-scorer" in {s.model for s in spec.stages if s.op == "score"}:
        from dataengine.cli.scorer import ensure_demo_scorer

        ensure_demo_scorer(ctx.obj["storage"])  # no-op once trained
    _run(ctx, "demo", target, None, sets, None, verbose)


@main.command("sample-data")
@click.option("--out", default=None, help="target directory (default: <storage>/datasets/demo)")
@click.option("--scale", default=0, type=int, help="add this many augmented photo/document samples")
@click.option("--rebuild", is_flag=True)
@click.option("--shapes", default=0, type=int, help="build the shapes world with this many samples instead")
@click.pass_context
def sample_data_cmd(ctx: click.Context, out: str | None, scale: int, rebuild: bool, shapes: int) -> None:
    """Build the sample dataset (real photos, rendered bilingual documents, deliberate defects)."""
    from dataengine import sample_data

    if shapes:
        target = out or join(ctx.obj["storage"], "datasets", f"shapes-{shapes}")
        if rebuild:
            delete_dir(target)
        sample_data.ensure_shapes(target, shapes, console=console)
        return
    target = out or join(ctx.obj["storage"], "datasets", "demo" if not scale else f"demo-x{scale}")
    sample_data.ensure(target, scale=scale, rebuild=rebuild, console=console)
