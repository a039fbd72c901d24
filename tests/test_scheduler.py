"""Schedules: the `schedule:` spec (cron and time zone through APScheduler), fire times across DST, and the
scheduler against a real local Ray cluster: overlap guard, missed-run policies, failure policy, and APScheduler's
own loop firing a real pipeline job. Plus the KubeRay examples in deploy/kuberay/, validated as YAML."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import astimezone
from click.testing import CliRunner
from conftest import encode, textured, write_jsonl
from ray_head import start_head

from dataengine import pipeline
from dataengine.cli import main
from dataengine.core.cron import ScheduleSpec, fire_times_between, latest_fire_time, next_fire_times
from dataengine.jobs import ray_jobs
from dataengine.jobs.scheduler import History, Scheduler

KUBERAY = Path(__file__).resolve().parents[1] / "deploy" / "kuberay"
STAGES = [{"op": "resolve"}, {"op": "image"}, {"op": "export"}]


def _spec(schedule: dict) -> pipeline.PipelineSpec:
    return pipeline.parse({"name": "x", "stages": STAGES, "schedule": schedule})


def _error(schedule: dict) -> str:
    with pytest.raises(pipeline.PipelineError) as err:
        _spec(schedule)
    return str(err.value)


# ---- spec


def test_schedule_spec_validates_cron_timezone_and_policies():
    s = _spec({"cron": "*/15 1-3 * * mon-fri", "timezone": "Europe/Berlin", "misfire": "skip",
               "misfire_grace_s": 60, "on_failure": {"retries": 2, "retry_delay_s": 30}}).schedule  # fmt: skip
    assert (s.misfire, s.misfire_grace_s, s.on_failure.retries, s.on_failure.retry_delay_s) == ("skip", 60, 2, 30)
    assert str(s.trigger().timezone) == "Europe/Berlin"
    defaults = _spec({"cron": "0 2 * * *"}).schedule
    assert (defaults.timezone, defaults.enabled, defaults.misfire, defaults.on_failure.retries) == (
        "UTC",
        True,
        "run_once",
        0,
    )
    assert "schedule.cron" in _error({"cron": "0 2 * *"}) and "expected 5" in _error({"cron": "0 2 * *"})
    assert "schedule.cron" in _error({"cron": "61 * * * *"}) and "61" in _error({"cron": "61 * * * *"})
    assert "names (mon-fri, sun)" in _error({"cron": "0 2 * * 1-5"})  # crontab and APScheduler 3 disagree on 0
    assert "not both" in _error({"cron": "0 2 1 * mon"})  # crontab: the 1st OR Mondays; APScheduler: AND
    assert "never fires" in _error({"cron": "0 2 30 feb *"})
    assert "schedule.timezone: Value error, unknown IANA time zone 'Mars/Base'" in _error(
        {"cron": "0 2 * * *", "timezone": "Mars/Base"}
    )
    assert "schedule.timezone" in _error({"cron": "0 2 * * *", "timezone": "../etc/passwd"})
    assert "schedule.misfire" in _error({"cron": "0 2 * * *", "misfire": "later"})
    assert "schedule.on_failure.retries" in _error({"cron": "0 2 * * *", "on_failure": {"retries": -1}})
    assert "schedule.every: Extra inputs are not permitted" in _error({"cron": "0 2 * * *", "every": "day"})


def test_bilingual_pipeline_is_scheduled_nightly_in_shanghai():
    s = pipeline.load("bilingual").schedule
    assert s is not None and s.enabled and (s.cron, s.timezone) == ("0 2 * * *", "Asia/Shanghai")
    first = next_fire_times(s.trigger(), 1, datetime(2026, 11, 21, 12, tzinfo=UTC))[0]
    assert first.astimezone(UTC) == datetime(2026, 11, 21, 18, tzinfo=UTC)  # 02:00 +08:00


def test_next_fire_times_follow_daylight_saving_time():
    ny = CronTrigger.from_crontab("0 9 * * *", timezone="America/New_York")  # DST starts 2026-03-08
    times = next_fire_times(ny, 3, datetime(2026, 3, 6, 12, tzinfo=UTC))
    assert [t.hour for t in times] == [9, 9, 9]  # 09:00 local every day...
    assert [t.astimezone(UTC).hour for t in times] == [14, 14, 13]  # ...which moves an hour in UTC
    # Europe/Berlin, clocks go back 2026-10-25 03:00 -> 02:00: APScheduler 3 fires 02:30 twice that night
    berlin = CronTrigger.from_crontab("30 2 * * *", timezone="Europe/Berlin")
    times = next_fire_times(berlin, 3, datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert [t.astimezone(UTC).isoformat() for t in times] == [
        "2026-10-25T00:30:00+00:00", "2026-10-25T01:30:00+00:00", "2026-10-26T01:30:00+00:00"
    ]  # fmt: skip
    # ...which would be a second nightly run: our trigger fires a fixed-hour schedule once per wall time, as cron
    ours = ScheduleSpec(cron="30 2 * * *", timezone="Europe/Berlin").trigger()
    once = next_fire_times(ours, 2, datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert [t.astimezone(UTC).isoformat() for t in once] == ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
    hourly = ScheduleSpec(cron="30 * * * *", timezone="Europe/Berlin").trigger()  # every hour, the repeated one too
    night = fire_times_between(
        hourly, datetime(2026, 10, 24, 23, 45, tzinfo=UTC), datetime(2026, 10, 25, 2, tzinfo=UTC)
    )
    assert [t.astimezone(UTC).hour for t in night] == [0, 1]


def test_missed_fire_times_are_counted_by_the_trigger():
    yearly = CronTrigger.from_crontab("0 0 1 jan *", timezone="UTC")
    missed = fire_times_between(yearly, datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    assert [t.year for t in missed] == [2024, 2025, 2026]
    assert latest_fire_time(yearly, datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)) == missed[-1]
    # a minutely schedule missed for two years: counted up to a limit, and its newest fire time found fast
    minutely = CronTrigger.from_crontab("* * * * *", timezone="UTC")
    down, back = datetime(2024, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 30, tzinfo=UTC)
    assert len(fire_times_between(minutely, down, back, limit=100)) == 100
    started = time.perf_counter()
    assert latest_fire_time(minutely, down, back) == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert time.perf_counter() - started < 1
    assert latest_fire_time(yearly, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)) is None


def test_cli_prints_next_fire_times_and_needs_an_address_to_run():
    result = CliRunner().invoke(main, ["scheduler", "bilingual", "--next", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("bilingual: '0 2 * * *' in Asia/Shanghai (misfire run_once")
    assert len(lines) == 4 and all(
        " 02:00 CST (+0800)  = " in line and "T18:00:00+00:00" in line for line in lines[1:]
    )
    no_schedule = CliRunner().invoke(main, ["scheduler", "clean", "--next", "1"])
    assert no_schedule.exit_code != 0 and "clean: the pipeline has no schedule: block" in no_schedule.output
    no_address = CliRunner().invoke(main, ["scheduler", "bilingual"], env={"RAY_API_SERVER_ADDRESS": ""})
    assert no_address.exit_code == 2 and "--address" in no_address.output


def test_scheduler_process_records_a_missed_night_and_stops_on_sigterm(tmp_path):
    """`dataengine scheduler` as a real process: on start it finds the fire times missed since its history's last
    one (misfire: skip -> recorded as missed, nothing submitted), then waits for the next one until SIGTERM."""
    History(str(tmp_path)).record("sched-proc", {"id": "old", "scheduled_for": "2023-01-01T00:00:00+00:00"})
    schedule = json.dumps({"cron": "0 0 1 jan *", "misfire": "skip", "misfire_grace_s": 60})
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dataengine"), "--storage", str(tmp_path), "scheduler", "clean",
         "--address", "http://127.0.0.1:9", "--set", "name=sched-proc", "--set", "input.uri=/data",
         "--set", f"schedule={schedule}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert "scheduling sched-proc on http://127.0.0.1:9" in proc.stdout.readline()
        missed = _wait_for(lambda: History(str(tmp_path)).runs("sched-proc")[1:], 30, "the missed night")
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting for next January
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        proc.kill()
    [entry] = missed
    assert entry["status"] == "missed" and entry["coalesced"] >= 3 and entry["attempts"] == []
    assert entry["scheduled_for"] == datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC).isoformat()


# ---- KubeRay examples


def _pipeline_of(argv: list[str], command: str) -> pipeline.PipelineSpec:
    """The pipeline a `dataengine ... COMMAND NAME [--set K=V]...` command line names, loaded with its overrides."""
    name = argv[argv.index(command) + 1]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    return pipeline.load(name, sets)


def test_kuberay_rayjob_manifest():
    docs = list(yaml.safe_load_all((KUBERAY / "rayjob.yaml").read_text()))
    assert len(docs) == 1 and (docs[0]["apiVersion"], docs[0]["kind"]) == ("ray.io/v1", "RayJob")
    spec = docs[0]["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert spec["submissionMode"] in ("K8sJobMode", "HTTPMode", "SidecarMode")
    argv = shlex.split(spec["entrypoint"])
    assert argv[0] == "dataengine" and argv[argv.index("--address") + 1] == "auto"
    pipe = _pipeline_of(argv, "run")
    assert spec["metadata"][ray_jobs.PIPELINE_KEY] == pipe.name == "bilingual"
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"].startswith("2.60") and cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert 8265 in [p["containerPort"] for p in head["ports"]]
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    gpu = groups["gpu-workers"]["template"]["spec"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == "1"
    for group in groups.values():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    # every custom resource the pipeline's stages ask for is advertised by a worker group
    advertised = set()
    for group in groups.values():
        advertised |= set(json.loads(json.loads(group["rayStartParams"]["resources"])))
    wanted = {key for stage in pipe.stages for key in stage.resources.custom}
    assert wanted and wanted <= advertised


def test_kuberay_cronjob_manifest():
    docs = list(yaml.safe_load_all((KUBERAY / "cronjob.yaml").read_text()))
    assert len(docs) == 1 and (docs[0]["apiVersion"], docs[0]["kind"]) == ("batch/v1", "CronJob")
    spec = docs[0]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] > 0
    trigger = CronTrigger.from_crontab(spec["schedule"], timezone=astimezone(spec["timeZone"]))
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    argv = job["template"]["spec"]["containers"][0]["command"]
    assert argv[0] == "dataengine" and "--once" in argv and argv[argv.index("--address") + 1].endswith(":8265")
    pipe = _pipeline_of(argv, "scheduler")
    assert pipe.input.uri and pipe.schedule is not None
    # the CronJob fires when the pipeline's own schedule does
    now = datetime(2026, 11, 21, tzinfo=UTC)
    assert next_fire_times(trigger, 5, now) == next_fire_times(pipe.schedule.trigger(), 5, now)


# ---- against a real cluster


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    cluster = start_head(tmp_path_factory.mktemp("head"))
    yield cluster.dashboard
    cluster.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("data")
    (data / "img").mkdir()
    recs = []
    for i in range(3):
        (data / "img" / f"{i}.jpg").write_bytes(encode(textured(700 + i)))
        recs.append({"image": f"img/{i}.jpg", "caption": f"A smooth colourful texture, sample number {i}."})
    write_jsonl(data / "a.jsonl", recs)
    return data


def _scheduled(name: str, input_uri: str, **schedule) -> pipeline.PipelineSpec:
    sets = [f"name={name}", f"input.uri={input_uri}", "ray.progress=false", "stages.language.keep=[en]"]
    return pipeline.load("clean", [*sets, f"schedule={json.dumps({'cron': '0 2 * * *', **schedule})}"])


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    raise TimeoutError(what)


def _wait_state(client, job_id: str, states: set[str], timeout: float = 60) -> str:
    return _wait_for(lambda: (s := str(client.get_job_status(job_id).value)) in states and s, timeout, job_id)


def test_overlap_guard_and_missed_run_policies(head, tmp_path):
    """While a job tagged with pipeline P is RUNNING (another scheduler's, say), no fire of P submits anything:
    a direct fire is skipped, and APScheduler's catch-up after downtime is skipped (run_once: one fire for the
    three missed, coalesced) or recorded as missed (skip)."""
    client = ray_jobs.client(head)
    other = client.submit_job(
        entrypoint="python -c 'import time; time.sleep(300)'", metadata={ray_jobs.PIPELINE_KEY: "sched-overlap"}
    )
    try:
        _wait_state(client, other, {"RUNNING"})
        specs = [
            _scheduled("sched-overlap", "/nonexistent", cron="0 0 1 jan *", misfire="run_once"),
            _scheduled("sched-missed", "/nonexistent", cron="0 0 1 jan *", misfire="skip", misfire_grace_s=60),
        ]
        sched = Scheduler(specs, head, storage=str(tmp_path), poll_s=0.5)
        entry = sched.fire("sched-overlap")
        assert entry["status"] == "skipped" and other in entry["reason"] and entry["attempts"] == []
        assert History(str(tmp_path)).runs("sched-overlap") == [entry]

        # both pipelines last fired on 2023-01-01 (per their history), then the scheduler was down
        for name in ("sched-overlap", "sched-missed"):
            sched.history.record(name, {"id": f"{name}-old", "scheduled_for": "2023-01-01T00:00:00+00:00",
                                        "status": "succeeded", "attempts": []})  # fmt: skip
        background = sched.build(BackgroundScheduler)
        background.start()
        try:
            overlap = _wait_for(lambda: History(str(tmp_path)).runs("sched-overlap")[2:], 30, "catch-up fire")
            missed = _wait_for(lambda: History(str(tmp_path)).runs("sched-missed")[1:], 30, "missed fire")
        finally:
            sched.stop(background)
        newest_jan1 = datetime(datetime.now(UTC).year, 1, 1, tzinfo=UTC).isoformat()
        assert overlap[0]["status"] == "skipped" and other in overlap[0]["reason"]
        assert overlap[0]["scheduled_for"] == newest_jan1 and overlap[0]["coalesced"] >= 3
        assert missed[0]["status"] == "missed" and missed[0]["scheduled_for"] == newest_jan1
        assert missed[0]["coalesced"] >= 3 and "misfire: skip" in missed[0]["reason"]
    finally:
        client.stop_job(other)
        _wait_state(client, other, ray_jobs.TERMINAL)
    tagged = [(j.metadata or {}).get(ray_jobs.PIPELINE_KEY) for j in client.list_jobs()]
    assert tagged.count("sched-overlap") == 1 and "sched-missed" not in tagged  # nothing was submitted


def test_failed_run_is_retried_then_recorded_failed(head, tmp_path):
    storage = tmp_path / "storage"
    schedule = json.dumps({"cron": "0 2 * * *", "on_failure": {"retries": 1, "retry_delay_s": 0.5}})
    result = CliRunner().invoke(
        main,
        ["--storage", str(storage), "scheduler", "clean", "--once", "--address", head, "--poll-s", "0.5",
         "--set", "name=sched-fail", "--set", f"input.uri={tmp_path / 'missing'}", "--set", f"schedule={schedule}"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "sched-fail: failed sched-fail-manual-" in result.output and "2 attempt(s) failed" in result.output
    [entry] = History(str(storage)).runs("sched-fail")
    assert [a["status"] for a in entry["attempts"]] == ["FAILED", "FAILED"]
    first, retry = (a["submission_id"] for a in entry["attempts"])
    assert retry == f"{first}-retry1" and first == entry["id"]
    client = ray_jobs.client(head)
    assert {str(client.get_job_status(j).value) for j in (first, retry)} == {"FAILED"}
    assert "missing" in client.get_job_logs(retry)  # the job failed for the reason we gave it
    shown = CliRunner().invoke(
        main, ["--storage", str(storage), "scheduler", "clean", "--set", "name=sched-fail", "--history", "5"]
    )
    assert shown.exit_code == 0 and f"failed     for now  jobs {first},{retry}" in shown.output, shown.output


def test_apscheduler_fires_a_real_run_and_skips_fires_while_it_runs(head, dataset, tmp_path):
    """APScheduler's own loop (a trigger every 2 s for 6 s) fires the pipeline: the first fire submits a job that
    runs the pipeline to success; fires while it runs are skipped by max_instances=1 and recorded."""
    spec = _scheduled("sched-loop", str(dataset))
    job_storage = tmp_path / "jobs"
    start = datetime.now(UTC)
    trigger = CronTrigger(second="*/2", start_date=start, end_date=start + timedelta(seconds=6), timezone=UTC)
    sched = Scheduler([spec], head, storage=str(tmp_path), job_storage=str(job_storage), poll_s=0.5,
                      triggers={"sched-loop": trigger})  # fmt: skip
    background = sched.build(BackgroundScheduler)
    background.start()
    try:
        done = _wait_for(
            lambda: [r for r in History(str(tmp_path)).runs("sched-loop") if r["status"] in ("succeeded", "failed")],
            180, "a finished run",
        )  # fmt: skip
    finally:
        sched.stop(background)
    runs = History(str(tmp_path)).runs("sched-loop")
    assert [r["status"] for r in done] == ["succeeded"], runs
    run = done[0]
    assert (
        run["scheduled_for"]
        and run["id"] == f"sched-loop-{datetime.fromisoformat(run['scheduled_for']):%Y%m%dT%H%M%SZ}"
    )
    skipped = [r for r in runs if r["status"] == "skipped"]
    assert skipped and all("still going (this scheduler)" in r["reason"] for r in skipped)
    assert all(r["scheduled_for"] > run["scheduled_for"] for r in skipped)
    assert len([r for r in runs if r["attempts"]]) == 1  # one job for all those fires
    info = ray_jobs.status(head, run["attempts"][0]["submission_id"])
    assert info["status"] == "SUCCEEDED" and info["pipeline"] == "sched-loop"
    [manifest] = job_storage.glob("runs/*/manifest.json")
    record = json.loads(manifest.read_text())
    assert record["pipeline"] == "sched-loop" and record["accounting"]["ok"]
    assert (record["accounting"]["inputs"], record["accounting"]["accepted"]) == (3, 3)


def test_a_fire_another_scheduler_took_is_not_run_again(tmp_path):
    """Two schedulers on one storage: the second to reach a fire finds it in the history and submits nothing
    (before, it fell back to a manual run with a fresh id, which the shared-id guard could not catch)."""
    spec = pipeline.load("bilingual")
    every_minute = CronTrigger.from_crontab("* * * * *", timezone="UTC")
    first = Scheduler([spec], "http://127.0.0.1:9", storage=str(tmp_path), triggers={spec.name: every_minute})
    now = datetime.now(UTC)
    latest = latest_fire_time(every_minute, now - timedelta(minutes=5), now)
    first.history.record(spec.name, first._entry(spec.name, latest, "running"))  # A took this fire
    second = Scheduler([spec], "http://127.0.0.1:9", storage=str(tmp_path), triggers={spec.name: every_minute})
    second.started = now - timedelta(minutes=5)
    second.on_fire(spec.name)  # nothing due: returns without asking the (unreachable) cluster anything
    assert [r["status"] for r in second.history.runs(spec.name)] == ["running"]
