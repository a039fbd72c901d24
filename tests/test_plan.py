"""The capacity planner's arithmetic on a hand-written costs file and cluster config (no Ray), its commands' errors,
and the costs `bench stages` measures, on the 79-row sample dataset in one process (no Ray either)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dataengine import pipeline, plan
from dataengine.cli import main

ROOT = Path(__file__).resolve().parents[1]
COSTS = {
    "version": 1,
    "measured": {"date": "2026-12-02", "machine": "by hand"},
    "stages": {
        "read": {"unit": "input row", "core_s": 0.001},
        "resolve": {"unit": "row", "core_s": 0.002},
        "image": {"unit": "row", "core_s": 0.01},
        "text": {"unit": "row", "core_s": 0.001},
        "blocklist": {"unit": "row", "core_s": 0.001},
        "language": {"unit": "row", "core_s": 0.002},
        "dedup": {"unit": "signature", "core_s": 0.004},
        "translate": {"unit": "1k tokens", "gpu_s": 0.1, "estimate": True, "core_s": 30.0},
        "tile": {"unit": "image", "core_s": 0.05},
        "score": {"unit": "tile", "gpu_s": 0.01, "estimate": True},
        "filter": {"unit": "row", "core_s": 0.001},
        "export": {"unit": "row", "core_s": 0.003},
    },
    "flow": {
        "pass": {"resolve": 1.0, "image": 0.9, "text": 1.0, "language": 0.8, "dedup": 0.5},
        "english": 0.5,
        "tiles_per_image": 7,
        "scored_tiles_per_sample": 4,
        "tokens_per_translation": 200,
    },
    "ray": {"efficiency": 0.5, "fixed_s": 10.0, "cold_start_s": 5.0, "gpu_busy": 0.8},
}
CLUSTER = {
    "available_node_types": {
        "head": {"resources": {"CPU": 0}, "max_workers": 0},
        "cpu_worker": {"resources": {"CPU": 32, "cpu_worker": 1}, "max_workers": 4},
        "gpu_worker": {"resources": {"CPU": 8, "GPU": 1, "gpu_worker": 1}, "max_workers": 2},
    }
}
DAY = 86400.0
# clean.yaml at 10^6 pairs: read 1e6 x 1 ms, resolve 1e6 x 2 ms, image 1e6 x 10 ms, text 9e5 x 1 ms,
# language 9e5 x 2 ms, dedup 7.2e5 x 4 ms, export 1e6 x 3 ms
CLEAN_CORE_S = 1000 + 2000 + 10000 + 900 + 1800 + 2880 + 3000


@pytest.fixture
def files(tmp_path):
    costs, cluster = tmp_path / "costs.json", tmp_path / "cluster.yaml"
    costs.write_text(json.dumps(COSTS))
    cluster.write_text(yaml.safe_dump(CLUSTER))
    return costs, cluster


def types(tmp_path) -> list[plan.NodeType]:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(CLUSTER))
    return plan.load_cluster(path)


def test_clean_pipeline_arithmetic(tmp_path):
    spec = pipeline.load("clean")
    loads = {s.stage: s for s in plan.stage_loads(spec, COSTS, 1e6)}
    assert list(loads) == ["read", "resolve", "image", "text", "language", "dedup", "export"]
    assert loads["text"].units == pytest.approx(9e5) and loads["dedup"].units == pytest.approx(7.2e5)
    assert loads["export"].units == 1e6  # rejects are written too
    assert sum(s.core_s for s in loads.values()) == pytest.approx(CLEAN_CORE_S)
    assert all(s.gpu_s == 0 for s in loads.values())

    day = plan.capacity(spec, COSTS, types(tmp_path), 1e6)
    (cpu,) = day.nodes
    assert cpu["node_type"] == "cpu_worker"  # no custom resources in clean.yaml: the CPU-only type
    assert cpu["nodes_by_cpu"] == pytest.approx(CLEAN_CORE_S / (DAY * 32 * 0.5)) and cpu["nodes"] == 1
    big = plan.capacity(spec, COSTS, types(tmp_path), 1e9, hours=12)
    assert big.nodes[0]["nodes_by_cpu"] == pytest.approx(CLEAN_CORE_S * 1000 / (DAY / 2 * 32 * 0.5))
    assert big.nodes[0]["nodes"] == 32
    assert any("max_workers is 4" in n for n in big.notes)


def test_bilingual_pipeline_places_gpu_work_and_holds_cpus(tmp_path):
    spec = pipeline.load("bilingual")
    loads = {s.stage: s for s in plan.stage_loads(spec, COSTS, 1e6)}
    alive = 1e6 * 0.9 * 0.8 * 0.5  # after image, language, dedup
    # translate: English rows x tokens per translation / 1000, GPU-s; 1 CPU held per GPU (num_cpus 1, num_gpus 1)
    assert loads["translate"].units == pytest.approx(alive * 0.5 * 0.2)
    assert loads["translate"].gpu_s == pytest.approx(alive * 0.5 * 0.2 * 0.1)
    assert loads["translate"].core_s == pytest.approx(loads["translate"].gpu_s)
    assert loads["translate"].estimate
    assert loads["tile"].core_s == pytest.approx(alive * 0.05 * 2)  # tile declares num_cpus 2
    assert loads["score"].units == pytest.approx(alive * 4)
    assert loads["score"].core_s == pytest.approx(loads["score"].gpu_s * 2 / 0.5)  # 2 CPUs per half GPU
    assert loads["filter"].units == pytest.approx(alive)
    assert loads["export"].units == 1e6

    day = plan.capacity(spec, COSTS, types(tmp_path), 1e6)
    by_type = {n["node_type"]: n for n in day.nodes}
    assert set(by_type) == {"cpu_worker", "gpu_worker"}
    gpu = by_type["gpu_worker"]
    assert gpu["stages"] == ["translate", "score"] and gpu["gpu_estimate"]
    assert gpu["gpu_s"] == pytest.approx(alive * 0.5 * 0.2 * 0.1 + alive * 4 * 0.01)
    assert gpu["nodes_by_gpu"] == pytest.approx(gpu["gpu_s"] / (DAY * 0.8))
    assert gpu["nodes_by_cpu"] == pytest.approx(gpu["core_s"] / (DAY * 8 * 0.5))
    assert gpu["nodes"] == 1
    assert any("estimates until measured on a GPU" in n for n in day.notes)


def test_filter_keeps_its_top_fraction():
    spec = pipeline.load("bilingual", ["stages.filter.keep_top_fraction=0.5"])
    loads = plan.stage_loads(spec, COSTS, 1000)
    assert [s.stage for s in loads][-2:] == ["filter", "export"]  # export's units are every input row
    assert plan._pass(COSTS, spec, "filter") == 0.5


def test_predict_wall():
    spec = pipeline.load("clean")
    cold = plan.predict_wall(spec, COSTS, 1000, 2)
    assert cold["core_s"] == pytest.approx(CLEAN_CORE_S / 1000)
    assert cold["wall_s"] == pytest.approx(10 + 5 + CLEAN_CORE_S / 1000 / (2 * 0.5))
    warm = plan.predict_wall(spec, COSTS, 1000, 2, cold=False)
    assert warm["wall_s"] == pytest.approx(cold["wall_s"] - 5)
    with pytest.raises(plan.PlanError, match="translate, score ask for GPUs"):
        plan.predict_wall(pipeline.load("bilingual"), COSTS, 1000, 2)


def test_assumptions_and_bad_costs():
    changed = plan.assume(COSTS, ["pass.dedup=1", "english=0.25", "ray.efficiency=1"])
    assert changed["flow"]["pass"]["dedup"] == 1 and changed["flow"]["english"] == 0.25
    assert changed["ray"]["efficiency"] == 1 and COSTS["ray"]["efficiency"] == 0.5  # a copy
    for bad in ("dedup", "pass.dedup=x", "ray.efficiency=2", "english=-1"):
        with pytest.raises(plan.PlanError):
            plan.assume(COSTS, [bad])
    partial = json.loads(json.dumps(COSTS))
    del partial["stages"]["dedup"]
    with pytest.raises(plan.PlanError, match="no unit cost for stage 'dedup'"):
        plan.stage_loads(pipeline.load("clean"), partial, 10)
    with pytest.raises(plan.PlanError, match="version 1"):
        plan.check_costs({"version": 99}, "x")


def test_the_repository_cluster_config_and_shipped_costs():
    found = {t.name: t for t in plan.load_cluster(ROOT / "ray_cluster.yaml")}
    assert (found["head"].cpus, found["cpu_worker"].cpus, found["gpu_worker"].gpus) == (0, 32, 1)
    costs, origin = plan.load_costs(None, None)
    assert origin == str(plan.DEFAULT_COSTS)
    assert costs["measured"]["date"] and costs["measured"]["machine"]
    for name in ("translate", "score"):
        assert costs["stages"][name]["estimate"] is True and costs["stages"][name]["gpu_s"] > 0
    for name in ("read", "resolve", "image", "text", "language", "dedup", "tile", "export"):
        assert costs["stages"][name]["core_s"] > 0 and not costs["stages"][name].get("estimate")
    result = plan.capacity(pipeline.load("bilingual"), costs, list(found.values()), 1e9)
    assert {n["node_type"] for n in result.nodes} == {"cpu_worker", "gpu_worker"}


def invoke(tmp_path, *args):
    return CliRunner().invoke(main, ["--storage", str(tmp_path / "storage"), "plan", *args], catch_exceptions=False)


def one_line_error(res, *words):
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for word in words:
        assert word in res.output, res.output


def test_capacity_command(tmp_path, files):
    costs, cluster = files
    res = invoke(tmp_path, "capacity", "--pairs-per-day", "1e9", "--costs", str(costs), "--cluster", str(cluster))
    assert res.exit_code == 0, res.output
    assert "cpu_worker" in res.output and "efficiency 0.50" in res.output and "max_workers is 4" in res.output
    res = invoke(
        tmp_path, "capacity", "--pairs-per-day", "1e6", "--costs", str(costs), "--cluster", str(cluster),
        "--pipeline", "bilingual", "--json", "--assume", "scored_tiles_per_sample=8",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    score = next(s for s in out["stages"] if s["stage"] == "score")
    assert score["units"] == pytest.approx(1e6 * 0.9 * 0.8 * 0.5 * 8) and score["estimate"]
    assert {n["node_type"] for n in out["nodes"]} == {"cpu_worker", "gpu_worker"}


def test_wall_command(tmp_path, files):
    costs, _ = files
    res = invoke(tmp_path, "wall", "--inputs", "1000", "--cpus", "2", "--costs", str(costs), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["wall_s"] == pytest.approx(15 + CLEAN_CORE_S / 1000)


def test_commands_fail_in_one_line(tmp_path, files):
    costs, cluster = files
    base = ["--costs", str(costs), "--cluster", str(cluster)]
    one_line_error(invoke(tmp_path, "capacity", "--pairs-per-day", "1e6", *base, "--pipeline", "nope"), "nope")
    one_line_error(
        invoke(tmp_path, "capacity", "--pairs-per-day", "1e6", "--costs", str(tmp_path / "none.json")),
        "costs file not found",
    )
    one_line_error(
        invoke(tmp_path, "capacity", "--pairs-per-day", "1e6", "--costs", str(costs), "--cluster", "no.yaml"),
        "cluster config not found: no.yaml",
    )
    one_line_error(invoke(tmp_path, "capacity", "--pairs-per-day", "1e6", *base, "--assume", "x"), "--assume")
    one_line_error(invoke(tmp_path, "capacity", "--pairs-per-day", "0", *base), "positive")
    (tmp_path / "bad.json").write_text("{")
    one_line_error(invoke(tmp_path, "wall", "--inputs", "10", "--cpus", "2", "--costs", str(tmp_path / "bad.json")))
    one_line_error(
        invoke(tmp_path, "wall", "--inputs", "10", "--cpus", "2", "--costs", str(costs), "--pipeline", "bilingual"),
        "ask for GPUs",
    )


def test_gpu_estimates_are_positive_and_explained():
    from dataengine.bench.stages import score_gpu_estimate, translate_gpu_estimate

    for value, basis in (translate_gpu_estimate(), score_gpu_estimate()):
        assert 0 < value < 10 and basis.startswith("estimate")


def test_bench_stages_costs_on_the_sample_dataset(tmp_path):
    """The in-process part of `bench stages` on the 79-row sample: every CPU stage costs something, the flow is
    fractions, and the planner takes the result."""
    from dataengine import sample_data
    from dataengine.bench.stages import measure_costs

    data = sample_data.ensure(str(tmp_path / "demo"))
    work = tmp_path / "work"
    work.mkdir()
    stages, flow = measure_costs(data, 60, str(work))
    for name in ("read", "resolve", "image", "text", "blocklist", "language", "dedup", "filter", "tile", "export"):
        assert stages[name]["core_s"] > 0, name
    assert all(0 <= v <= 1 for v in flow["pass"].values()) and 0 < flow["english"] <= 1
    assert flow["tiles_per_image"] >= 2  # a grid of at least one tile, plus the thumbnail
    costs = {"version": 1, "stages": stages, "flow": flow, "ray": {"efficiency": 1.0}}
    plan.check_costs(costs, "measured")
    assert plan.predict_wall(pipeline.load("clean"), costs, 100, 2)["wall_s"] > 0
