"""A pipeline on a real local multi-node Ray cluster (`ray start` three times on 127.0.0.1), its stages placed by
custom resources as on ray_cluster.yaml's node types: the head carries none, one worker `cpu_worker`, one
`gpu_worker` (a logical resource: no GPU here). Ray's state API then says on which node every task and actor ran."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import encode, textured, write_jsonl
from ray.util.state.api import StateApiClient
from ray.util.state.common import ListApiOptions, StateResource
from ray_head import start_head

from dataengine.jobs import ray_jobs

CPU = {"cpu_worker": 0.001}  # what pipelines/bilingual.yaml's CPU stages ask for
GPU = {"gpu_worker": 0.001}
# the Ray Data functions of the CPU stages: the row ops (fused), dedup's own tasks, export
CPU_STAGE_FUNCTIONS = {  # Ray Data operator names: our stages (runner names them stage_<op>) and dedup's own tasks
    "stage_resolve",
    "stage_image",
    "stage_text",
    "stage_language",
    "keys_of",
    "pick_exact",
    "exact_rows",
    "group_rows",
    "group_links",
    "final_rows",
    "stage_dedup",
    "stage_export",
}
SPEC = {
    "version": 1,
    "name": "multinode",
    "ray": {"progress": False},
    "stages": [
        {"op": "resolve", "resources": {"num_cpus": 0.5, "custom": CPU}},
        {"op": "image", "min_side": 32, "resources": {"num_cpus": 0.5, "custom": CPU}},
        {"op": "text", "resources": {"num_cpus": 0.5, "custom": CPU}},
        {"op": "language", "keep": ["en"], "resources": {"num_cpus": 0.5, "custom": CPU}},
        {"op": "dedup", "num_partitions": 2, "resources": {"num_cpus": 0.5, "custom": CPU}},
        {
            "op": "tile",
            "max_tiles": 2,
            "resources": {"num_cpus": 1, "custom": GPU},
            "compute": {"kind": "actors", "size": 1},
        },
        {"op": "export", "resources": {"num_cpus": 0.5, "custom": CPU}},
    ],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_head(tmp_path_factory.mktemp("multinode"), num_cpus=1)
    try:
        # one at a time: nodes starting together on one machine pick the same socket names and one dies
        c.add_node(num_cpus=2, resources={"cpu_worker": 1})
        c.wait_for_nodes(2)
        c.add_node(num_cpus=1, resources={"gpu_worker": 1})
        c.wait_for_nodes(3)
        yield c
    finally:
        c.stop()


def dataset(root: Path) -> Path:
    """Five distinct images, one exact duplicate and one missing file: 7 inputs, 5 accepted."""
    (root / "img").mkdir(parents=True)
    recs = []
    for i in range(5):
        (root / "img" / f"{i}.jpg").write_bytes(encode(textured(700 + i)))
        recs.append({"image": f"img/{i}.jpg", "caption": f"A smooth colourful texture, sample number {i}."})
    recs.append({"image": "img/0.jpg", "caption": "The first texture again, listed a second time."})
    recs.append({"image": "img/missing.jpg", "caption": "A file that does not exist anywhere."})
    write_jsonl(root / "a.jsonl", recs)
    return root


def test_stages_run_on_the_nodes_carrying_their_resources(cluster, tmp_path):
    spec = tmp_path / "multinode.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    storage = tmp_path / "storage"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "1"}
    env.pop("RAY_ADDRESS", None)
    if "RAY_AUTH_MODE" not in env and ray_jobs.auth_token():  # a driver given an address must be told
        env["RAY_AUTH_MODE"] = "token"
    proc = subprocess.run(
        [sys.executable, "-m", "dataengine.cli", "--storage", str(storage), "run", str(spec),
         "--address", cluster.gcs, "--input", str(dataset(tmp_path / "data"))],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + cluster.logs()

    (manifest,) = storage.glob("runs/*/manifest.json")
    record = json.loads(manifest.read_text())
    acc = record["accounting"]
    assert acc["ok"] and (acc["inputs"], acc["accepted"], acc["rejected"]) == (7, 5, 2), acc
    out = manifest.parent
    reasons = pl.read_parquet(out / "rejects" / "*.parquet").sort("reason")["reason"].to_list()
    assert reasons == ["duplicate_exact", "missing_file"]
    assert pl.read_parquet(out / "samples" / "*.parquet")["num_tiles"].min() >= 1
    assert record["config"]["stages"][5]["resources"]["custom"] == GPU  # the spec reached the run as written

    token = ray_jobs.auth_token()
    state = StateApiClient(cluster.dashboard, headers={"Authorization": f"Bearer {token}"} if token else None)

    def listed(resource: StateResource) -> list:
        return state.list(resource, ListApiOptions(limit=10000, detail=True), raise_on_missing_output=False)

    nodes = {n.node_id: n for n in listed(StateResource.NODES)}
    home = {r: i for i, n in nodes.items() for r in ("cpu_worker", "gpu_worker") if r in n.resources_total}
    assert len(nodes) == 3 and len(set(home.values())) == 2 and not any(nodes[i].is_head_node for i in home.values())

    deadline = time.time() + 30
    while True:  # task events reach the GCS asynchronously: wait until every stage's tasks are listed
        tasks = [t for t in listed(StateResource.TASKS) if t.type in ("NORMAL_TASK", "ACTOR_TASK")]
        placed = {r: [t for t in tasks if r in (t.required_resources or {})] for r in home}
        ran = {fn for t in placed["cpu_worker"] for fn in re.findall(r"MapBatches\((\w+)\)", t.name)}
        tile_batches = [t for t in tasks if t.name.startswith("MapWorker(MapBatches(stage_tile)).submit")]
        if (ran >= CPU_STAGE_FUNCTIONS and tile_batches) or time.time() > deadline:
            break
        time.sleep(2)
    # resolve/image/text/language (fused), dedup's own tasks and export: on the cpu_worker node only
    assert ran >= CPU_STAGE_FUNCTIONS, sorted(ran)
    for resource, tasks_of in placed.items():
        assert {t.node_id for t in tasks_of} <= {home[resource]}, (resource, [(t.name, t.node_id) for t in tasks_of])
    # the tile stage's actor pool: its actor, and every batch it processed, on the gpu_worker node
    tilers = [a for a in listed(StateResource.ACTORS) if "stage_tile" in a.class_name]
    assert tilers and all(a.required_resources.get("gpu_worker") == 0.001 for a in tilers)
    assert {a.node_id for a in tilers} == {home["gpu_worker"]}
    assert tile_batches and {t.node_id for t in tile_batches} == {home["gpu_worker"]}
