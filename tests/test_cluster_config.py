"""ray_cluster.yaml validates against the cluster-launcher JSON schema shipped inside the ray package, and agrees
with pipelines/bilingual.yaml: every custom resource a stage requests is carried by a node type (GPU stages by
GPU node types), setup installs pinned torch then the project (`.[gpu]` on GPU nodes), and the ports are set."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import ray
import yaml

from dataengine import pipeline
from dataengine.core.config import Resources
from dataengine.translate import vllm

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
TYPES = CONFIG["available_node_types"]
SPEC = pipeline.load("bilingual")


def providers(name: str, amount: float) -> list[str]:
    """Node types that carry at least `amount` of resource `name`."""
    return [t for t, node in TYPES.items() if node["resources"].get(name, 0) >= amount]


def setup_commands(node_type: str) -> list[str]:
    """The setup commands Ray runs on a node of this type (a type's own list replaces the global ones)."""
    if node_type == CONFIG["head_node_type"]:
        return CONFIG.get("setup_commands", []) + CONFIG.get("head_setup_commands", [])
    own = TYPES[node_type].get("worker_setup_commands")
    return own if own is not None else CONFIG.get("setup_commands", []) + CONFIG.get("worker_setup_commands", [])


def test_ray_cluster_yaml_matches_ray_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(CONFIG, schema)
    head = TYPES[CONFIG["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and head["max_workers"] == 0  # the head does no data work


def test_every_stage_lands_on_a_node_type_that_carries_its_resources():
    head = CONFIG["head_node_type"]
    for stage in SPEC.stages:
        res = stage.resources
        assert res.custom, f"{stage.op}: requests no custom resource, so nothing places it"
        for name, amount in res.custom.items():
            nodes = providers(name, amount)
            assert nodes and head not in nodes, f"{stage.op}: no worker type carries {name}={amount}"
            for t in nodes:
                node = TYPES[t]["resources"]
                assert node.get("CPU", 0) >= res.num_cpus, f"{stage.op} needs {res.num_cpus} CPUs, {t} has fewer"
                if res.num_gpus:  # GPU stages on GPU node types only
                    assert node.get("GPU", 0) >= res.num_gpus, f"{stage.op} lands on {t}, which lacks GPUs"
                else:  # and CPU work never takes a GPU node's CPUs
                    assert not node.get("GPU"), f"{stage.op} is CPU work but may land on GPU node type {t}"
    assert {n for s in SPEC.stages if s.resources.num_gpus for n in s.resources.custom} == {"gpu_worker"}
    assert SPEC.stage("translate").resources.num_gpus == 1 and SPEC.stage("score").resources.num_gpus > 0


def test_gpu_stages_fit_the_gpu_fleet_and_its_accelerator_type():
    translate = SPEC.stage("translate")
    accel = f"accelerator_type:{translate.vllm_accelerator_type}"
    assert all(TYPES[t]["resources"].get(accel) for t in providers("gpu_worker", 0.001)), accel
    # the GPU stages' largest actor pools run side by side in a streaming run: the fleet must hold them all
    need = sum(
        (s.compute.size or s.compute.max_size or s.compute.min_size) * s.resources.num_gpus
        for s in SPEC.stages
        if s.resources.num_gpus
    )
    have = sum(n["resources"].get("GPU", 0) * n["max_workers"] for n in TYPES.values())
    assert have >= need == 8
    assert CONFIG["max_workers"] >= sum(n["max_workers"] for n in TYPES.values())


def test_setup_installs_pinned_torch_first_then_the_project():
    pin = next(
        d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"] if "torch" in d
    )
    assert CONFIG["file_mounts"]["~/dataengine"] == "." and ".venv" in CONFIG["rsync_exclude"]
    for t, node in TYPES.items():
        cmds = setup_commands(t)
        torch = next(i for i, c in enumerate(cmds) if pin in c)
        project = next(i for i, c in enumerate(cmds) if "cd ~/dataengine && pip install" in c and " -e " in c)
        assert torch < project, f"{t}: torch must be pinned before the project installs"
        if node["resources"].get("GPU"):
            assert '".[gpu]"' in cmds[project] and "whl/cpu" not in cmds[torch], t  # CUDA torch + vLLM
        else:
            assert "[gpu]" not in " ".join(cmds) and "whl/cpu" in cmds[torch], t  # the CPU wheel, no vLLM


def test_containers_match_the_pinned_ray_and_python():
    major_minor = ".".join(ray.__version__.split(".")[:2])
    images = {t: node.get("docker", {}).get("worker_image", CONFIG["docker"]["image"]) for t, node in TYPES.items()}
    for t, image in images.items():
        assert re.fullmatch(rf"rayproject/ray:{re.escape(major_minor)}\.\d+-py311-(cpu|gpu)", image), image
        assert image.endswith("-gpu") == bool(TYPES[t]["resources"].get("GPU")), (t, image)


def test_ports_dashboard_metrics_and_token_auth():
    head = " ".join(CONFIG["head_start_ray_commands"])
    worker = " ".join(CONFIG["worker_start_ray_commands"])
    # token auth on every node, with one token (this machine's) mounted everywhere
    assert "RAY_AUTH_MODE=token ray start --head" in head and "RAY_AUTH_MODE=token ray start --address" in worker
    assert CONFIG["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "--head --port=6379" in head and "--address=$RAY_HEAD_IP:6379" in worker
    assert "--dashboard-port=8265" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "--metrics-export-port=8080" in head and "--metrics-export-port=8080" in worker
    if "--dashboard-host=0.0.0.0" in head:  # reachable beyond localhost: the comment above it must say why
        lines = (ROOT / "ray_cluster.yaml").read_text().splitlines()
        comment: list[str] = []
        for line in reversed(lines[: lines.index("head_start_ray_commands:")]):
            if not line.startswith("#"):
                break
            comment.insert(0, line.lstrip("# "))
        why = " ".join(comment)
        assert "0.0.0.0" in why and "private network" in why and "security group" in why, why


def test_vllm_engine_replicas_request_the_gpu_worker_resource(ray_local, tmp_path):
    cfg = SPEC.stage("translate")
    assert vllm.placement(cfg) == {"bundle_per_worker": {"CPU": 1.0, "GPU": 1.0, "gpu_worker": 0.001}}
    assert vllm.placement(cfg.model_copy(update={"resources": Resources(num_gpus=1)})) is None  # Ray's default bundles
    # Ray Data LLM turns the bundle into the engine stage's map_batches resources (vLLM itself is not needed)
    engine = vllm.build_processor(cfg, str(tmp_path)).get_stage_by_name("vLLMEngineStage").map_batches_kwargs
    assert engine["resources"] == {"gpu_worker": 0.001} and engine["num_gpus"] == 1 and engine["num_cpus"] == 1
    assert engine["accelerator_type"] == "L40S" and engine["compute"].max_size == cfg.compute.size
