"""`dataengine submit` and `dataengine status`: pipeline runs as Ray jobs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from dataengine.cli.base import console, main, set_option


@main.command()
@click.argument("pipeline_name", metavar="PIPELINE")
@click.option("--address", envvar="RAY_API_SERVER_ADDRESS", required=True, help="dashboard, http://HEAD:8265")
@click.option("--input", "input_uri", help="input URI as the cluster sees it")
@click.option("--output", help="output URI as the cluster sees it (default: <storage>/runs/<run_id>)")
@set_option("spec override (repeatable)")
@click.option("--job-storage", default=None, help="data root on the cluster (default: its own default)")
@click.option("--token", envvar="RAY_AUTH_TOKEN", default=None, help="dashboard token (default: ~/.ray/auth_token)")
@click.option("--submission-id", default=None, help="job id to use (default: Ray's raysubmit_...)")
@click.option("--follow/--no-follow", default=True, help="stream the job's logs until it ends")
def submit(
    pipeline_name: str,
    address: str,
    input_uri: str | None,
    output: str | None,
    sets: tuple[str, ...],
    job_storage: str | None,
    token: str | None,
    submission_id: str | None,
    follow: bool,
) -> None:
    """Submit a run of PIPELINE to a Ray cluster through the Ray Jobs API."""
    from dataengine import pipeline
    from dataengine.jobs import ray_jobs

    try:
        spec = pipeline.load(pipeline_name, sets)
    except pipeline.PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    with _cluster_errors(address):
        job_id = ray_jobs.submit(
            spec, address, input_uri=input_uri, output=output, storage=job_storage, token=token,
            submission_id=submission_id,
        )  # fmt: skip
    console.out(f"submitted {job_id} to {address}")
    if not follow:
        return
    with _cluster_errors(address):
        for text in ray_jobs.follow(address, job_id, token):
            click.echo(text, nl=False)  # the job's own log output, passed through as it is
        state = ray_jobs.status(address, job_id, token)
    console.out(f"\njob {job_id}: {state['status']}")
    if state["status"] != "SUCCEEDED":
        sys.exit(1)


@main.command()
@click.argument("job_id")
@click.option("--address", envvar="RAY_API_SERVER_ADDRESS", required=True, help="dashboard, http://HEAD:8265")
@click.option("--token", envvar="RAY_AUTH_TOKEN", default=None)
@click.option("--logs", is_flag=True, help="also print the job's logs so far")
def status(job_id: str, address: str, token: str | None, logs: bool) -> None:
    """Status of a submitted job (JSON), and optionally its logs."""
    from dataengine.jobs import ray_jobs

    with _cluster_errors(address):
        console.out(json.dumps(ray_jobs.status(address, job_id, token), indent=2))
        if logs:
            click.echo(ray_jobs.client(address, token).get_job_logs(job_id))  # the job's own log output


@contextmanager
def _cluster_errors(address: str) -> Iterator[None]:
    """What the Jobs client raises for an unknown job id, a duplicate submission id or an unreachable dashboard,
    as one line for the user instead of a traceback."""
    try:
        yield
    except (RuntimeError, ConnectionError, OSError, ValueError) as exc:
        raise click.ClickException(f"{address}: {type(exc).__name__}: {str(exc).strip()[:500]}") from None
