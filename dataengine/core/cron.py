"""The `schedule:` block of a pipeline spec: a 5-field crontab read in an IANA time zone, and what to do with
missed fire times and failed runs. Parsing and fire times come from APScheduler 3.x, never from our own code."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Literal

from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import astimezone
from pydantic import Field, field_validator

from dataengine.core.config import Strict


class OnFailure(Strict):
    """Failure policy: a run whose job fails (or cannot be submitted) is submitted again up to `retries` times."""

    retries: int = Field(0, ge=0, le=20, description="re-submissions after a failed run")
    retry_delay_s: float = Field(300.0, ge=0, description="seconds between a failure and the next attempt")


class ScheduleSpec(Strict):
    """When `dataengine scheduler` runs the pipeline, and how it treats missed fire times and failures."""

    cron: str = Field(description="5-field crontab: minute hour day-of-month month day-of-week (mon..sun names)")
    timezone: str = Field("UTC", description="IANA time zone the cron fields are read in, e.g. Asia/Shanghai")
    enabled: bool = True
    misfire: Literal["skip", "run_once"] = Field(
        "run_once",
        description="fire times the scheduler reaches later than misfire_grace_s (it was down): skip them, or "
        "make one run for all of them",
    )
    misfire_grace_s: int = Field(300, ge=1, description="how late a fire may start and still count as on time")
    on_failure: OnFailure = OnFailure()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            astimezone(value)
        except (KeyError, ValueError):  # zoneinfo's "not found" is a KeyError
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. UTC, Asia/Shanghai, Europe/Berlin)") from None
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            trigger = CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a 5-field crontab expression ({value!r}): {exc}") from None
        if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
            raise ValueError(f"{value!r} never fires")
        fields = value.split()
        if any(ch.isdigit() for ch in fields[4]):
            # APScheduler 3.x counts weekdays from Monday=0, crontab from Sunday=0: names mean the same to both
            raise ValueError(f"day-of-week must use names (mon-fri, sun), not numbers: {value!r}")
        if fields[2] != "*" and fields[4] != "*":
            # crontab fires on either (day-of-month OR day-of-week), APScheduler only on both
            raise ValueError(f"give day-of-month or day-of-week, not both (use two pipelines for both): {value!r}")
        return value

    def trigger(self) -> CronTrigger:
        """The APScheduler trigger for this schedule, in its time zone (DST handled by the library)."""
        return WallClockCronTrigger.from_crontab(self.cron, timezone=self.timezone)


class WallClockCronTrigger(CronTrigger):
    """A CronTrigger that fires a fixed-hour schedule once per wall-clock time, as cron does: on the night clocks
    go back, "30 1 * * *" fires at the first 01:30, not again at the repeated one (which would be a second run)."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        fixed_hours = "*" not in str(next(f for f in self.fields if f.name == "hour"))
        while fire is not None and fixed_hours and fire.fold == 1:
            after = fire.astimezone(UTC) + timedelta(seconds=1)  # in UTC: wall-clock arithmetic keeps the fold
            fire = super().get_next_fire_time(after, after)
        return fire


def next_fire_times(trigger: CronTrigger, n: int, now: datetime | None = None) -> list[datetime]:
    """The next `n` fire times after `now`, in the trigger's time zone."""
    out: list[datetime] = []
    current = trigger.get_next_fire_time(None, now or datetime.now(UTC))
    while current is not None and len(out) < n:
        out.append(current)
        current = trigger.get_next_fire_time(current, current)
    return out


def fire_times_between(trigger: CronTrigger, after: datetime, until: datetime, limit: int = 10_000) -> list[datetime]:
    """Fire times in (after, until], oldest first, at most `limit` of them."""
    return list(islice(_walk(trigger, after, until), limit))


def latest_fire_time(trigger: CronTrigger, after: datetime, until: datetime) -> datetime | None:
    """The newest fire time in (after, until], looked for in growing windows back from `until` (stays fast for a
    minutely schedule missed for months)."""
    for window in (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=366), until - after):
        latest = deque(_walk(trigger, max(after, until - window), until), maxlen=1)
        if latest:
            return latest[0]
    return None


def _walk(trigger: CronTrigger, after: datetime, until: datetime) -> Iterator[datetime]:
    current = trigger.get_next_fire_time(after, after)
    while current is not None and current <= until:
        yield current
        current = trigger.get_next_fire_time(current, current)
