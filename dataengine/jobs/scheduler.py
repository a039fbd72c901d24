"""Scheduled pipeline runs as Ray jobs, never two runs of one pipeline at once.

APScheduler 3.x decides when (a CronTrigger per pipeline; coalesce, misfire_grace_time, max_instances=1). At each
fire the cluster is asked first whether a job of the pipeline is still PENDING or RUNNING (another scheduler, a
restarted one, a manual `dataengine submit`): if so the fire is skipped. Otherwise a job is submitted, followed to
its end and re-submitted per the pipeline's failure policy. Every run, skip and miss is recorded in
`<storage>/scheduler/<pipeline>.json`.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

from dataengine.core.cron import OnFailure, fire_times_between, latest_fire_time
from dataengine.core.storage import exists, join, read_bytes, write_bytes_atomic
from dataengine.jobs import ray_jobs
from dataengine.pipeline import PipelineSpec

log = logging.getLogger("dataengine.scheduler")
ACTIVE = {"PENDING", "RUNNING"}
FINAL = {"SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "stopped"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat(timespec="seconds") if t else None


class History:
    """Run history per pipeline, `<storage>/scheduler/<name>.json` (newest last), rewritten atomically."""

    def __init__(self, storage: str, keep: int = 500) -> None:
        self.root = join(storage, "scheduler")
        self.keep = keep
        self._lock = threading.Lock()

    def path(self, name: str) -> str:
        return join(self.root, f"{name}.json")

    def runs(self, name: str) -> list[dict[str, Any]]:
        path = self.path(name)
        return json.loads(read_bytes(path))["runs"] if exists(path) else []

    def record(self, name: str, entry: dict[str, Any]) -> None:
        """Add `entry`, or replace the entry with its id (a run moves from running to its end)."""
        with self._lock:
            runs = self.runs(name)
            ids = [r["id"] for r in runs]
            if entry["id"] in ids:
                runs[ids.index(entry["id"])] = entry
            else:
                runs.append(entry)
            data = {"pipeline": name, "runs": runs[-self.keep :]}
            write_bytes_atomic(self.path(name), json.dumps(data, indent=1, ensure_ascii=False).encode())

    def last_scheduled(self, name: str) -> datetime | None:
        """The newest fire time this pipeline's history accounts for (run, skipped or missed)."""
        times = [datetime.fromisoformat(r["scheduled_for"]) for r in self.runs(name) if r.get("scheduled_for")]
        return max(times) if times else None


class Scheduler:
    """Scheduled pipelines against one Ray cluster: fire, guard against overlap, submit, follow, retry, record."""

    def __init__(
        self,
        specs: list[PipelineSpec],
        address: str,
        *,
        storage: str,
        token: str | None = None,
        job_storage: str | None = None,
        poll_s: float = 5.0,
        triggers: dict[str, BaseTrigger] | None = None,
    ) -> None:
        self.specs = {s.name: s for s in specs}
        self.address, self.token, self.job_storage, self.poll_s = address, token, job_storage, poll_s
        self.history = History(storage)
        # a trigger given here replaces the spec's cron (tests fire every few seconds this way)
        self.triggers = {n: s.schedule.trigger() for n, s in self.specs.items() if s.schedule} | (triggers or {})
        self.started = utcnow()
        self.stopping = threading.Event()

    def active_jobs(self, name: str) -> list[str]:
        """Submission ids of this pipeline's jobs that are PENDING or RUNNING on the cluster (any submitter)."""
        found = []
        for job in ray_jobs.client(self.address, self.token).list_jobs():
            state = str(getattr(job.status, "value", job.status))
            if state in ACTIVE and (job.metadata or {}).get(ray_jobs.PIPELINE_KEY) == name:
                found.append(job.submission_id or job.job_id)
        return found

    def fire(self, name: str, scheduled_for: datetime | None = None, coalesced: int = 1) -> dict[str, Any]:
        """One run of pipeline `name` (for `scheduled_for`, or now when None): skipped while a job of it is active
        on the cluster, else submitted, followed to its end and re-submitted per its failure policy. Returns the
        history entry it recorded."""
        spec = self.specs[name]
        policy = spec.schedule.on_failure if spec.schedule else OnFailure()
        entry = self._entry(name, scheduled_for, "running", coalesced)
        message = None
        for attempt in range(policy.retries + 1):
            if attempt and self.stopping.wait(policy.retry_delay_s):
                return self._finish(entry, "failed", f"the scheduler stopped before retry {attempt}; last: {message}")
            submission_id = entry["id"] if attempt == 0 else f"{entry['id']}-retry{attempt}"
            record: dict[str, Any] = {"submission_id": submission_id, "status": "SUBMITTED", "message": None}
            try:
                active = self.active_jobs(name)
                if active:
                    return self._finish(entry, "skipped", f"a run of {name} is still active on the cluster: {active}")
                record["submitted_at"] = iso(utcnow())
                entry["attempts"].append(record)
                self.history.record(name, entry)
                log.info("%s: submitting %s (attempt %d of %d)", name, submission_id, attempt + 1, policy.retries + 1)
                ray_jobs.submit(
                    spec, self.address, storage=self.job_storage, token=self.token, submission_id=submission_id
                )
                state, message = self._wait(submission_id)
            except Exception as exc:  # cluster unreachable, submission refused: a failed attempt
                if attempt == 0 and "already exists" in str(exc):  # another scheduler took this very fire time
                    entry["attempts"].clear()
                    return self._finish(entry, "skipped", f"{submission_id} was submitted by another scheduler")
                state, message = "ERROR", f"{type(exc).__name__}: {exc}"
                if not any(r is record for r in entry["attempts"]):
                    entry["attempts"].append(record)
            if state == "DETACHED":
                record["status"] = state
                return self._finish(entry, "detached", f"the scheduler stopped; {submission_id} goes on running")
            record.update(status=state, message=(message or "")[-2000:] or None, ended_at=iso(utcnow()))
            if state in ("SUCCEEDED", "STOPPED"):  # a stopped job was stopped on purpose: not retried
                return self._finish(entry, FINAL[state], message if state == "STOPPED" else None)
            log.warning("%s: %s ended %s: %s", name, submission_id, state, (message or "")[-300:])
            self.history.record(name, entry)
        return self._finish(entry, "failed", f"{len(entry['attempts'])} attempt(s) failed; last: {message}")

    def _wait(self, submission_id: str) -> tuple[str, str | None]:
        """Poll the job until it ends; ("DETACHED", None) when the scheduler stops first."""
        client = ray_jobs.client(self.address, self.token)
        errors = 0
        while not self.stopping.is_set():
            try:
                info = client.get_job_info(submission_id)
                errors = 0
            except Exception:  # a head restarting or a network blip: retried, up to a point
                errors += 1
                if errors >= 10:
                    raise
            else:
                state = str(getattr(info.status, "value", info.status))
                if state in ray_jobs.TERMINAL:
                    return state, info.message
            self.stopping.wait(self.poll_s)
        return "DETACHED", None

    def _entry(self, name: str, scheduled_for: datetime | None, status: str, coalesced: int = 1) -> dict[str, Any]:
        now = utcnow()
        stamp = (scheduled_for or now).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_id = f"{name}-{stamp}" if scheduled_for else f"{name}-manual-{stamp}-{uuid.uuid4().hex[:6]}"
        return {
            "id": run_id,
            "pipeline": name,
            "scheduled_for": iso(scheduled_for),
            "coalesced": coalesced,
            "fired_at": iso(now),
            "finished_at": None,
            "status": status,
            "reason": None,
            "attempts": [],
        }

    def _finish(self, entry: dict[str, Any], status: str, reason: str | None) -> dict[str, Any]:
        entry.update(status=status, reason=reason, finished_at=iso(utcnow()))
        self.history.record(entry["pipeline"], entry)
        (log.info if status in ("succeeded", "skipped") else log.warning)(
            "%s: %s %s%s", entry["pipeline"], entry["id"], status, f" ({reason})" if reason else ""
        )
        return entry

    def due(self, name: str, until: datetime) -> tuple[datetime | None, int]:
        """The newest fire time of `name` up to `until` that its history does not account for yet, and how many
        such fire times there are (counted up to 10,000)."""
        after, trigger = self.history.last_scheduled(name) or self.started, self.triggers[name]
        return latest_fire_time(trigger, after, until), len(fire_times_between(trigger, after, until))

    def on_fire(self, name: str) -> None:
        """APScheduler's job function: the run stands for the newest due fire time and coalesces the others.
        Nothing due means the history already holds this fire: another scheduler on the same storage took it."""
        latest, count = self.due(name, utcnow())
        if latest is None:
            log.info("%s: this fire is already in the history (another scheduler took it); nothing submitted", name)
            return
        self.fire(name, latest, coalesced=max(count, 1))

    def on_event(self, event: JobEvent) -> None:
        """Record fires that APScheduler did not run: missed (misfire: skip) or overlapping a run still going."""
        name = event.job_id
        if event.code == EVENT_JOB_MISSED:
            when = event.scheduled_run_time
            spec = self.specs[name].schedule
            entry = self._entry(name, when, "missed", max(self.due(name, when)[1], 1))
            late = (utcnow() - when).total_seconds()
            self._finish(entry, "missed", f"reached {late:.0f} s late (misfire: skip, grace {spec.misfire_grace_s} s)")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            entry = self._entry(name, event.scheduled_run_times[-1], "skipped")
            self._finish(entry, "skipped", f"the previous run of {name} is still going (this scheduler)")

    def catch_up(self, name: str) -> datetime | None:
        """The first fire time missed since the last one in the history, when there is one (scheduler was down)."""
        last = self.history.last_scheduled(name)
        first = self.triggers[name].get_next_fire_time(last, last) if last else None
        return first if first and first <= utcnow() else None

    def build(self, scheduler_class: type[BaseScheduler] = BlockingScheduler) -> BaseScheduler:
        """An APScheduler scheduler with one job per scheduled pipeline (not started)."""
        pool = ThreadPoolExecutor(max(4, len(self.triggers)))
        scheduler = scheduler_class(executors={"default": pool}, timezone=UTC)
        scheduler.add_listener(self.on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        for name, trigger in self.triggers.items():
            schedule = self.specs[name].schedule
            if schedule is None or not schedule.enabled:
                continue
            options: dict[str, Any] = {}
            if (first := self.catch_up(name)) is not None:
                options["next_run_time"] = first  # APScheduler applies coalesce and the misfire grace to it
            scheduler.add_job(
                self.on_fire, trigger, args=[name], id=name, name=f"pipeline {name}", max_instances=1,
                coalesce=True, misfire_grace_time=schedule.misfire_grace_s if schedule.misfire == "skip" else None,
                **options,
            )  # fmt: skip
        return scheduler

    def stop(self, scheduler: BaseScheduler) -> None:
        """Stop firing; runs being followed are left going on the cluster and recorded as detached."""
        self.stopping.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)
