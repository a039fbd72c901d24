"""Pipeline runs as Ray jobs on a real local cluster started by the test (`ray start --head` on 127.0.0.1),
through the Jobs API with Ray 2.60's token authentication."""

from __future__ import annotations

import json
import urllib.request

import pytest
from click.testing import CliRunner
from conftest import encode, textured, write_jsonl
from ray_head import start_head

from dataengine import pipeline
from dataengine.cli import main
from dataengine.jobs import ray_jobs


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    cluster = start_head(tmp_path_factory.mktemp("head"))
    yield cluster.dashboard, cluster.tmp
    cluster.stop()


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
    # ordinary mistakes are one clear line, not a traceback
    typo = CliRunner().invoke(main, ["status", "raysubmit_typo", "--address", address])
    assert typo.exit_code == 1 and typo.output.startswith(f"Error: {address}:") and "Traceback" not in typo.output


def test_jobs_api_requires_the_token(head):
    address, _ = head
    if not ray_jobs.auth_token():
        pytest.skip("token authentication is disabled here (RAY_AUTH_MODE=disabled)")
    req = urllib.request.Request(f"{address}/api/jobs/", headers={"Authorization": "Bearer wrong-token"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code in (401, 403)
    with urllib.request.urlopen(
        urllib.request.Request(f"{address}/api/jobs/", headers={"Authorization": f"Bearer {ray_jobs.auth_token()}"}),
        timeout=10,
    ) as resp:
        assert resp.status == 200


def test_entrypoint_and_spec_travel_with_the_job():
    cmd = ray_jobs.entrypoint("s3://b/in dir", None, "/data root")
    assert cmd.split(" run ")[0] == "python -m dataengine.cli --storage '/data root'"
    assert cmd.endswith("run .dataengine-job-spec.yaml --address auto --input 's3://b/in dir'")
    spec = pipeline.load("clean", ["stages.image.min_side=99"])
    assert spec.stage("image").min_side == 99
