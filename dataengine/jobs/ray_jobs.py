"""Submit pipeline runs to a Ray cluster through the Ray Jobs API, and read their status and logs.

The job's runtime_env carries the installed `dataengine` package (working_dir: the package with its pipelines and
schemas, nothing else of the checkout or of site-packages) and the pipeline spec as validated here, so what runs is
what was checked. Ray 2.60 turns on token authentication for the
dashboard by default: the client sends `Authorization: Bearer <token>` from `--token`, $RAY_AUTH_TOKEN or the
token file Ray writes (`~/.ray/auth_token`), in that order.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import yaml

from dataengine.core.storage import PACKAGE_DIR
from dataengine.pipeline import PipelineSpec

EXCLUDES = ["**/__pycache__/", "*.parquet"]
SPEC_FILE = ".dataengine-job-spec.yaml"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
PIPELINE_KEY = "dataengine.pipeline"  # job metadata naming the pipeline a job runs (the scheduler's overlap guard)


def auth_token(explicit: str | None = None) -> str | None:
    """The dashboard token: the one given, $RAY_AUTH_TOKEN, or Ray's token file; None when there is none."""
    if explicit:
        return explicit
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    path = os.path.expanduser(os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token"))
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    return None


def client(address: str, token: str | None = None) -> Any:
    """A JobSubmissionClient for the dashboard at `address` (http://HEAD:8265), authenticated when a token exists."""
    from ray.job_submission import JobSubmissionClient

    token = auth_token(token)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return JobSubmissionClient(address, headers=headers)


def entrypoint(input_uri: str | None, output: str | None, storage: str | None) -> str:
    """The command the job runs on the head node: our CLI, on the cluster it is already connected to."""
    args = ["python", "-m", "dataengine.cli"]
    if storage:
        args += ["--storage", storage]
    args += ["run", SPEC_FILE, "--address", "auto"]
    if input_uri:
        args += ["--input", input_uri]
    if output:
        args += ["--output", output]
    return " ".join(shlex.quote(a) for a in args)


def submit(
    spec: PipelineSpec,
    address: str,
    *,
    input_uri: str | None = None,
    output: str | None = None,
    storage: str | None = None,
    token: str | None = None,
    submission_id: str | None = None,
    agent_wait_s: float = 120.0,
) -> str:
    """Submit one run of `spec`; returns the submission id. The validated spec travels as a file in the
    working_dir, so `--set` overrides made here are what the job runs. A head that is still starting its job
    agent is retried for up to `agent_wait_s`."""
    with tempfile.TemporaryDirectory() as tmp:
        # the package as it is here, plus the spec; uploaded by Ray as the job's working_dir
        work = os.path.join(tmp, "project")
        shutil.copytree(
            PACKAGE_DIR, os.path.join(work, "dataengine"), ignore=shutil.ignore_patterns("__pycache__", "*.parquet")
        )
        with open(os.path.join(work, SPEC_FILE), "w", encoding="utf-8") as f:
            yaml.safe_dump(spec.model_dump(mode="json", exclude_none=False), f, sort_keys=False, allow_unicode=True)
        runtime_env = {"working_dir": work, "excludes": EXCLUDES, "env_vars": {"RAY_DEDUP_LOGS": "1"}}
        c = client(address, token)
        deadline = time.monotonic() + agent_wait_s
        while True:
            try:
                return c.submit_job(
                    entrypoint=entrypoint(input_uri, output, storage),
                    runtime_env=runtime_env,
                    submission_id=submission_id,
                    metadata={PIPELINE_KEY: spec.name},
                )
            except RuntimeError as exc:  # a head that has just started has no job agent yet
                if "No available agent" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)


def status(address: str, job_id: str, token: str | None = None) -> dict[str, Any]:
    """Status of a submitted job: status, message, entrypoint, start/end times, pipeline name."""
    info = client(address, token).get_job_info(job_id)
    return {
        "job_id": job_id,
        "status": str(info.status.value if hasattr(info.status, "value") else info.status),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "pipeline": (info.metadata or {}).get(PIPELINE_KEY),
        "start_time": info.start_time,
        "end_time": info.end_time,
    }


def follow(address: str, job_id: str, token: str | None = None, poll_s: float = 1.0) -> Iterator[str]:
    """Yield new log text until the job ends (polling, so it works through proxies that cut websockets)."""
    c = client(address, token)
    seen = 0
    while True:
        logs = c.get_job_logs(job_id)
        if len(logs) > seen:
            yield logs[seen:]
            seen = len(logs)
        state = str(c.get_job_status(job_id).value)
        if state in TERMINAL:
            logs = c.get_job_logs(job_id)
            if len(logs) > seen:
                yield logs[seen:]
            return
        time.sleep(poll_s)
