"""`dataengine scheduler`: pipelines run on their `schedule:` as Ray jobs."""

from __future__ import annotations

import logging
import signal
import sys
from typing import TYPE_CHECKING

import click

from dataengine.cli.base import console, main, set_option
from dataengine.pipeline import PIPELINE_DIR, PipelineError, PipelineSpec, load

if TYPE_CHECKING:
    from dataengine.jobs.scheduler import Scheduler


def _specs(names: tuple[str, ...], sets: tuple[str, ...], scheduled: bool) -> list[PipelineSpec]:
    """The pipelines named, or every pipelines/*.yaml with an enabled schedule; `scheduled` demands a schedule."""
    try:
        if not names:
            names = tuple(p.stem for p in sorted(PIPELINE_DIR.glob("*.yaml")) if _enabled(load(str(p))))
            if not names:
                raise click.ClickException(f"no pipeline in {PIPELINE_DIR} has an enabled schedule")
        specs = [load(name, sets) for name in names]
    except PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    for spec in specs:
        if scheduled and spec.schedule is None:
            raise click.ClickException(f"{spec.name}: the pipeline has no schedule: block")
    return specs


def _enabled(spec: PipelineSpec) -> bool:
    return spec.schedule is not None and spec.schedule.enabled


def _print_next(specs: list[PipelineSpec], n: int) -> None:
    from dataengine.core.cron import next_fire_times
    from dataengine.jobs.scheduler import iso

    for spec in specs:
        s = spec.schedule
        assert s is not None
        state = "" if s.enabled else "  DISABLED"
        console.out(
            f"{spec.name}: '{s.cron}' in {s.timezone} (misfire {s.misfire}, grace {s.misfire_grace_s} s, "
            f"retries {s.on_failure.retries}){state}"
        )
        for t in next_fire_times(s.trigger(), n):
            console.out(f"  {t:%Y-%m-%d %H:%M %Z (%z)}  = {iso(t)}")


def _print_history(storage: str, specs: list[PipelineSpec], n: int) -> None:
    from dataengine.jobs.scheduler import History

    history = History(storage)
    for spec in specs:
        runs = history.runs(spec.name)[-n:]
        console.out(f"{spec.name}: {len(runs)} recorded run(s) shown, {history.path(spec.name)}")
        for r in runs:
            jobs = ",".join(a["submission_id"] for a in r["attempts"]) or "-"
            reason = f"  {r['reason']}" if r.get("reason") else ""
            console.out(f"  {r['fired_at']}  {r['status']:<9}  for {r['scheduled_for'] or 'now'}  jobs {jobs}{reason}")


@main.command()
@click.argument("names", nargs=-1, metavar="[PIPELINE]...")
@click.option("--address", envvar="RAY_API_SERVER_ADDRESS", default=None, help="dashboard, http://HEAD:8265")
@click.option("--token", envvar="RAY_AUTH_TOKEN", default=None, help="dashboard token (default: ~/.ray/auth_token)")
@click.option("--job-storage", default=None, help="data root on the cluster (default: its own default)")
@set_option("spec override, every pipeline named")
@click.option("--next", "show_next", type=int, default=None, metavar="N", help="print the next N fire times")
@click.option("--history", "show_history", type=int, default=None, metavar="N", help="print the last N runs")
@click.option("--once", is_flag=True, help="run each pipeline once now (guard, retries, history), then exit")
@click.option("--poll-s", type=float, default=5.0, show_default=True, help="seconds between job status polls")
@click.pass_context
def scheduler(
    ctx: click.Context,
    names: tuple[str, ...],
    address: str | None,
    token: str | None,
    job_storage: str | None,
    sets: tuple[str, ...],
    show_next: int | None,
    show_history: int | None,
    once: bool,
    poll_s: float,
) -> None:
    """Run PIPELINEs (default: every pipelines/*.yaml with an enabled schedule) on their schedules as Ray jobs,
    never two runs of one pipeline at once. Runs until interrupted; history in <storage>/scheduler/."""
    if show_next is not None:
        return _print_next(_specs(names, sets, scheduled=True), show_next)
    if show_history is not None:
        return _print_history(ctx.obj["storage"], _specs(names, sets, scheduled=False), show_history)
    if not address:
        raise click.UsageError("--address (or $RAY_API_SERVER_ADDRESS) is needed to run pipelines")
    specs = _specs(names, sets, scheduled=not once)
    for spec in specs:
        if not spec.input.uri:
            raise click.ClickException(
                f"{spec.name}: input.uri is not set; scheduled runs read the spec's input "
                "(set it in the YAML or with --set input.uri=URI)"
            )
        if not once and not _enabled(spec):
            raise click.ClickException(f"{spec.name}: schedule.enabled is false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # our own log says what each fire did
    from dataengine.jobs.scheduler import Scheduler

    runner = Scheduler(specs, address, storage=ctx.obj["storage"], token=token, job_storage=job_storage, poll_s=poll_s)
    if once:
        entries = [runner.fire(spec.name) for spec in specs]
        for e in entries:
            console.out(f"{e['pipeline']}: {e['status']} {e['id']}" + (f" ({e['reason']})" if e["reason"] else ""))
        if any(e["status"] not in ("succeeded", "skipped") for e in entries):
            sys.exit(1)
        return
    _serve(runner)


def _serve(runner: Scheduler) -> None:
    """Block running the schedules; SIGTERM or Ctrl-C stop firing (jobs already submitted go on)."""
    console.out(f"scheduling {', '.join(sorted(runner.triggers))} on {runner.address}; Ctrl-C to stop")
    scheduler = runner.build()
    signal.signal(signal.SIGTERM, lambda *_: runner.stop(scheduler))
    try:
        scheduler.start()
    except KeyboardInterrupt:
        runner.stop(scheduler)
