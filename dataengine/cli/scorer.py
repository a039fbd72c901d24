"""Scorer commands: `train scorer` and `serve scorer`, and the shapes-world run and demo scorer that `demo` and
`bench scorer` use."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.table import Table

from dataengine.cli.base import console, serve, set_option, train_group
from dataengine.core.storage import join
from dataengine.serving import api_key_option


def shapes_run(storage: str, n: int, seed: int = 0, num_cpus: int | None = None) -> str:
    """Build the shapes world (if missing) and run pipelines/shapes.yaml on it; returns the run's output."""
    from dataengine import pipeline, runner, sample_data

    data = sample_data.ensure_shapes(join(storage, "datasets", f"shapes-{n}"), n, seed, console=console)
    spec = pipeline.load("shapes", [f"ray.num_cpus={num_cpus}"] if num_cpus else [])
    record = runner.run(spec, input_uri=data, storage=storage)
    return record["output"]


def ensure_demo_scorer(storage: str) -> str:
    """The demo's scorer: the tiny preset trained briefly on a 1,200-sample shapes world (a few minutes on
    2 cores), unless already trained. Returns its model folder."""
    from dataengine.scorer.model import resolve_checkpoint
    from dataengine.scorer.train import TrainConfig, train

    try:
        return resolve_checkpoint("demo-scorer", storage)
    except FileNotFoundError:
        pass
    console.print("demo scorer: training the tiny InternVL scorer on the shapes world (once, about 8 min on 2 cores)")
    output = shapes_run(storage, 1200)
    metrics = train(output, TrainConfig(name="demo-scorer", steps=500, generative_steps=200, eval_every=250), storage)
    print_metrics(metrics)
    return resolve_checkpoint("demo-scorer", storage)


def print_metrics(metrics: dict[str, Any]) -> None:
    final = metrics.get("final", {})
    table = Table("metric", "value", title=f"scorer {metrics['name']}:{metrics['version']}")
    for key in ("train_pairs", "heldout_pairs", "heldout_examples", "workers", "seconds"):
        table.add_row(key, str(metrics[key]))
    for key, value in final.items():
        table.add_row(key, str(value))
    console.print(table)


@train_group.command("scorer")
@click.option("--data", required=True, help="a run id under <storage>/runs, or a run output folder/URI")
@click.option("--base", default="tiny", help="'tiny' or a local InternVL -hf checkpoint folder (LoRA)")
@click.option("--name", default="scorer")
@click.option("--version", "version", default="v1")
@click.option("--workers", default=2, type=int, help="Ray Train workers")
@click.option("--gpu", is_flag=True, help="one GPU per worker (NCCL)")
@click.option("--steps", default=None, type=int)
@set_option("any TrainConfig field")
@click.option("--address", default=None, help="Ray cluster address; default: a local Ray")
@click.pass_context
def train_scorer(
    ctx: click.Context,
    data: str,
    base: str,
    name: str,
    version: str,
    workers: int,
    gpu: bool,
    steps: int | None,
    sets: tuple[str, ...],
    address: str | None,
) -> None:
    """Fine-tune an InternVL scorer on a run's accepted pairs; resumes from the last checkpoint."""
    from pydantic import ValidationError

    from dataengine.pipeline import invalid, split_set
    from dataengine.scorer.train import TrainConfig, train

    fields: dict[str, Any] = {"base": base, "name": name, "version": version, "workers": workers, "use_gpu": gpu}
    if steps:
        fields["steps"] = steps
    fields.update(split_set(item) for item in sets)
    try:
        config = TrainConfig(**fields)
    except ValidationError as exc:
        raise invalid(exc, "train scorer --set") from None
    metrics = train(data, config, ctx.obj["storage"], ray_address=address)
    print_metrics(metrics)


@serve.command("scorer")
@click.option("--model", required=True, help="NAME[:VERSION] under <storage>/models, or a checkpoint folder")
@click.option("--host", default="127.0.0.1", help="bind address (default loopback only)")
@click.option("--port", default=8000, type=int)
@click.option("--image-root", default=None, help="allow image_uri requests under this folder only")
@click.option("--trust-remote-code", is_flag=True, default=False)
@api_key_option
@click.pass_context
def serve_scorer(
    ctx: click.Context,
    model: str,
    host: str,
    port: int,
    image_root: str | None,
    trust_remote_code: bool,
    api_key: str | None,
) -> None:
    """POST /v1/score (image or tiles + texts -> scores) and GET /healthz on Ray Serve."""
    from dataengine.scorer.model import resolve_checkpoint
    from dataengine.serving import check_exposure

    try:  # refused here, in one line, before Ray starts
        check_exposure(host, api_key)
        path = resolve_checkpoint(model, ctx.obj["storage"])
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    import ray

    from dataengine.scorer import serve as scorer_serve

    ray.init(include_dashboard=False)
    base = scorer_serve.start(path, host, port, image_root, trust_remote_code, api_key)
    console.print(f"serving scorer {model} ({path}) at {base} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
