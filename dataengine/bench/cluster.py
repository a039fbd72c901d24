"""`dataengine bench cluster`: the capacity planner checked against a real multi-node run. It predicts the wall of a
pipeline run from the unit costs (`plan.predict_wall`) first, then starts a local Ray cluster (`ray start --head`
plus worker nodes on 127.0.0.1, as tests/test_multinode.py does), runs the pipeline on it with `dataengine run
--address` in its own process, and compares.

On one machine the nodes share its cores: the prediction uses min(the nodes' CPUs, the machine's cores). By default
the head carries no CPUs (as ray_cluster.yaml's head: it schedules and runs the driver) and each worker one, so
three nodes on a 2-core machine hold 2 CPUs in all. The cluster is stopped by killing the process groups it started
(never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from dataengine import pipeline, plan
from dataengine.readers import ReadTasks, plan_tasks

SPLIT_BYTES = 131072  # as the calibration's runs (bench stages): input files split so every CPU has work


def count_inputs(data: str) -> int:
    """Input rows of a dataset, read as the runner reads them (no images decoded)."""
    tasks = plan_tasks(data)
    reader = ReadTasks(pipeline.InputSpec().max_record_bytes)
    return sum(len(t) for t in reader(pa.table({"task": [json.dumps(t) for t in tasks]})))


def _driver_env() -> dict[str, str]:
    """The driver's environment: this interpreter's, token auth as the nodes have it (a driver given an address
    must be told), one BLAS thread per task as Ray gives its workers."""
    from dataengine.jobs import ray_jobs

    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "1"}
    env.pop("RAY_ADDRESS", None)
    if "RAY_AUTH_MODE" not in env and ray_jobs.auth_token():
        env["RAY_AUTH_MODE"] = "token"
    return env


def bench_cluster(
    data: str,
    storage: str,
    costs: dict[str, Any],
    pipeline_name: str = "clean",
    nodes: int = 3,
    head_cpus: int = 0,
    worker_cpus: int = 1,
    split_bytes: int = SPLIT_BYTES,
    timeout_s: float = 3600,
    log: Any = print,
) -> dict[str, Any]:
    """Predict, run on `nodes` local nodes (head + nodes - 1 workers), compare. Returns the figures."""
    from dataengine.bench.local_cluster import start_head

    if nodes < 2:
        raise ValueError("--nodes: at least 2 (a head and a worker)")
    overrides = ["ray.progress=false", f"input.split_bytes={split_bytes}"]
    spec = pipeline.load(pipeline_name, overrides)
    inputs = count_inputs(data)
    cpus = head_cpus + (nodes - 1) * worker_cpus
    cores = min(cpus, os.cpu_count() or cpus)
    predicted = plan.predict_wall(spec, costs, inputs, cores)
    log(
        f"predicted: {predicted['wall_s']:.1f} s for {inputs} inputs on {cores} cores "
        f"({predicted['core_s']:.1f} core-s at efficiency {predicted['efficiency']:.2f}, fixed "
        f"{predicted['fixed_s']:.1f} s + cold start {predicted['cold_start_s']:.1f} s)"
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        cluster = start_head(work, num_cpus=head_cpus)
        try:
            for i in range(nodes - 1):  # one at a time: nodes starting together on one machine clash
                cluster.add_node(num_cpus=worker_cpus)
                cluster.wait_for_nodes(i + 2)
            up_s = time.perf_counter() - started
            log(f"cluster up in {up_s:.1f} s: head {head_cpus} CPUs + {nodes - 1} workers x {worker_cpus} CPUs")
            out = work / "out"
            cmd = [
                sys.executable, "-m", "dataengine.cli", "--storage", storage, "run", pipeline_name,
                "--address", cluster.gcs, "--input", os.path.abspath(data), "--output", str(out),
                *(x for o in overrides for x in ("--set", o)),
            ]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_driver_env(), timeout=timeout_s)
            process_wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"the run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            record = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        finally:
            cluster.stop()
    measured = float(record["wall_s"])
    return {
        "pipeline": pipeline_name,
        "data": os.path.abspath(data),
        "run_id": record["run_id"],
        "nodes": nodes,
        "head_cpus": head_cpus,
        "worker_cpus": worker_cpus,
        "cpus": cpus,
        "cores_used_for_prediction": cores,
        "inputs": record["accounting"]["inputs"],
        "accepted": record["accounting"]["accepted"],
        "read_tasks": record.get("read_tasks"),
        "split_bytes": split_bytes,
        "predicted_wall_s": round(predicted["wall_s"], 1),
        "measured_wall_s": round(measured, 1),
        "error_pct": round(100 * (predicted["wall_s"] - measured) / measured, 1),
        "driver_process_wall_s": round(process_wall, 1),
        "cluster_start_s": round(up_s, 1),
        "prediction": predicted,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine_cores": os.cpu_count(),
    }
