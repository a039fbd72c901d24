"""`dataengine bench cluster`, small: the planner's prediction and a real run of pipelines/clean.yaml on a local
3-node cluster (`ray start` three times on 127.0.0.1: a head without CPUs, two 1-CPU workers) of the 79-row sample
dataset; the cluster's processes are gone afterwards. The prediction's accuracy is BENCHMARKS.md's business (a
79-row run is mostly fixed costs on a shared machine); here the figures must be there and consistent."""

from __future__ import annotations

import json

import psutil
import pytest

from dataengine import plan, sample_data
from dataengine.bench.cluster import bench_cluster, count_inputs

COSTS = json.loads(plan.DEFAULT_COSTS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return sample_data.ensure(str(tmp_path_factory.mktemp("demo") / "demo"))


def test_count_inputs(demo):
    assert count_inputs(demo) == 79


def test_bench_cluster_predicts_runs_and_compares(demo, tmp_path):
    before = {p.pid for p in psutil.process_iter()}
    lines: list[str] = []
    result = bench_cluster(demo, str(tmp_path / "storage"), COSTS, nodes=3, log=lines.append)
    assert lines[0].startswith("predicted:") and "cluster up" in lines[1]
    assert (result["inputs"], result["nodes"], result["cpus"], result["cores_used_for_prediction"]) == (79, 3, 2, 2)
    assert result["accepted"] > 0 and result["read_tasks"] >= 1
    assert result["predicted_wall_s"] > 0 and result["measured_wall_s"] > 0
    expected = 100 * (result["predicted_wall_s"] - result["measured_wall_s"]) / result["measured_wall_s"]
    assert result["error_pct"] == pytest.approx(expected, abs=0.2)
    assert result["prediction"]["inputs"] == 79
    left = [p for p in psutil.process_iter(["pid", "cmdline"]) if p.pid not in before]
    assert not [p for p in left if "raylet" in " ".join(p.info["cmdline"] or [])], "the cluster's nodes are still up"
