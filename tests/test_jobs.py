"""Pipeline runs as Ray jobs on a real local cluster started by the test (`ray start --head` on 127.0.0.1),
through the Jobs API with Ray 2.60's token authentication."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import encode, textured, write_jsonl

from dataengine import jobs, pipeline
from dataengine.cli import main

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("head")
    port, dash = _free_port(), _free_port()
    # every port of the head's own: the session's local Ray (other tests) holds the defaults
    ports = {
        f"--{name}={_free_port()}"
        for name in (
            "dashboard-agent-listen-port",
            "dashboard-agent-grpc-port",
            "runtime-env-agent-port",
            "metrics-export-port",
            "ray-client-server-port",
            "node-manager-port",
            "object-manager-port",
        )
    }
    # the job's entrypoint runs `python` from the head's PATH: this environment's
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--num-cpus=2", "--include-dashboard=true",
         f"--temp-dir={tmp}/ray", "--disable-usage-stats", *sorted(ports)],
        env=env, stdout=open(tmp / "head.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    address = f"http://127.0.0.1:{dash}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            jobs.client(address).list_jobs()
            break
        except Exception:
            time.sleep(2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"head did not come up: {(tmp / 'head.log').read_text()[-2000:]}")
    yield address, tmp
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_submit_runs_the_pipeline_as_a_ray_job(head, tmp_path):
    address, _ = head
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    recs = []
    for i in range(4):
        (data / "img" / f"{i}.jpg").write_bytes(encode(textured(900 + i)))
        recs.append({"image": f"img/{i}.jpg", "caption": f"A smooth colourful texture, sample number {i}."})
    recs.append({"image": "img/none.jpg", "caption": "A file that does not exist."})
    write_jsonl(data / "a.jsonl", recs)
    storage = tmp_path / "storage"
    result = CliRunner().invoke(
        main,
        ["submit", "clean", "--address", address, "--input", str(data), "--job-storage", str(storage),
         "--set", "ray.progress=false", "--set", "stages.language.keep=[en]", "--submission-id", "de-test-1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "submitted de-test-1" in result.output and "accepted 4  rejected 1" in result.output
    manifests = list(storage.glob("runs/*/manifest.json"))
    assert len(manifests) == 1
    record = json.loads(manifests[0].read_text())
    assert record["accounting"]["ok"] and record["config"]["stages"][3]["keep"] == ["en"]
    state = CliRunner().invoke(main, ["status", "de-test-1", "--address", address])
    info = json.loads(state.output)
    assert info["status"] == "SUCCEEDED" and info["pipeline"] == "clean"


def test_jobs_api_requires_the_token(head):
    address, _ = head
    if not jobs.auth_token():
        pytest.skip("token authentication is disabled here (RAY_AUTH_MODE=disabled)")
    req = urllib.request.Request(f"{address}/api/jobs/", headers={"Authorization": "Bearer wrong-token"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code in (401, 403)
    with urllib.request.urlopen(
        urllib.request.Request(f"{address}/api/jobs/", headers={"Authorization": f"Bearer {jobs.auth_token()}"}),
        timeout=10,
    ) as resp:
        assert resp.status == 200


def test_entrypoint_and_spec_travel_with_the_job():
    cmd = jobs.entrypoint("s3://b/in dir", None, "/data root")
    assert cmd.split(" run ")[0] == "python -m dataengine.cli --storage '/data root'"
    assert cmd.endswith("run .dataengine-job-spec.yaml --address auto --input 's3://b/in dir'")
    spec = pipeline.load("clean", ["stages.image.min_side=99"])
    assert spec.stage("image").min_side == 99
