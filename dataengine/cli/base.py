"""The command tree: `main` (the `dataengine` command) and its groups, the one console every command prints
through, and the one `--set` option. Each module of this package hangs its commands on these groups."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from dataengine import pipeline
from dataengine.core.storage import default_root

# Deprecation warnings Ray raises from its own code (Ray Data's context dump, Ray Train's execution options), which
# no setting of ours avoids: not shown to users.
RAY_INTERNAL_WARNINGS = (
    r".*`ExecutionOptions.exclude_resources` is deprecated",
    r"`use_push_based_shuffle` is deprecated",
    r"`use_polars` is deprecated",
    r"`use_arrow_tensor_v2` is deprecated",
)
console = Console(markup=False)  # paths and captions are printed as written, never read as rich markup
err_console = Console(markup=False, stderr=True)


def set_option(help: str | None = None) -> Callable[[Any], Any]:
    """`--set KEY=VALUE` (repeatable), the same on every command; each is parsed by `pipeline.split_set`."""
    return click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help=help)


class _Commands(click.Group):
    """The command group: a mistake in what the user gave (a pipeline or --set, a model name, an input that does
    not balance) ends in one line naming it, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from dataengine.accounting import AccountingError
        from dataengine.ledger import LedgerConflict
        from dataengine.models import ModelError

        try:
            return super().invoke(ctx)
        except (pipeline.PipelineError, ModelError, AccountingError, LedgerConflict) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
@click.option("--storage", envvar="DATAENGINE_STORAGE", default=None, help="data root (default: ./storage)")
@click.pass_context
def main(ctx: click.Context, storage: str | None) -> None:
    """Bilingual (English/Chinese) data engine for vision-language models, on Ray."""
    ctx.obj = {"storage": storage or default_root()}
    for message in RAY_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


@main.group()
def bench() -> None:
    """Benchmarks (figures go to BENCHMARKS.md)."""


@main.group("eval")
def eval_group() -> None:
    """Quality evaluations."""


@main.group("export")
def export_group() -> None:
    """Export a run in other formats."""


@main.group()
def models() -> None:
    """Local models under <storage>/models/."""


@main.group()
def serve() -> None:
    """Long-running services on Ray Serve."""


@main.group("train")
def train_group() -> None:
    """Train models on the cluster (Ray Train)."""
