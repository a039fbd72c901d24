"""A real local Ray cluster on one machine: `ray start --head` (and optionally worker nodes) on 127.0.0.1, for the
tests (`tests/ray_head.py`) and `dataengine bench cluster`.

Every port is the cluster's own: another local Ray on the machine (a test session's, a benchmark's) keeps Ray's
defaults. Nodes run in their own process groups, so `stop()` kills everything the cluster started and nothing else
(never `ray stop`, which would end every Ray on the machine).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
NODE_PORTS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "ray-client-server-port",
    "node-manager-port",
    "object-manager-port",
)


_GIVEN: set[int] = set()


def free_port() -> int:
    """A free port, never the same twice in this process (seen: two components of one node given the same
    port), drawn from 20000-32767: above Ray's worker ports (10002-19999) and below the kernel's ephemeral
    range, where any process's outgoing connection could take it between our pick and Ray's bind."""
    while True:
        port = random.randint(20000, 32767)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port


def _env() -> dict[str, str]:
    # the job's entrypoint runs `python` from the node's PATH: this environment's
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    # a head turns token auth on when a token exists; nodes joining by address only when told (Ray 2.60)
    from dataengine.jobs.ray_jobs import auth_token

    if "RAY_AUTH_MODE" not in env and auth_token():
        env["RAY_AUTH_MODE"] = "token"
    return env


@dataclass
class LocalCluster:
    """Handles of a started cluster: GCS address, dashboard URL, each node's metrics port and processes."""

    tmp: Path
    gcs: str
    dashboard: str
    metrics_ports: list[int] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def add_node(self, num_cpus: int, resources: dict[str, float] | None = None) -> int:
        """Join a worker node with `num_cpus` and custom `resources`; returns its metrics export port."""
        ports = {name: free_port() for name in NODE_PORTS}
        i = len(self.procs)
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--block", f"--address={self.gcs}", "--node-ip-address=127.0.0.1",
             f"--num-cpus={num_cpus}", f"--resources={json.dumps(resources or {})}",
             "--disable-usage-stats", *(f"--{k}={v}" for k, v in ports.items())],
            env=_env(), stdout=open(self.tmp / f"node{i}.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs.append(proc)
        self.metrics_ports.append(ports["metrics-export-port"])
        return ports["metrics-export-port"]

    def wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        """Block until `n` nodes are alive, as the head's GCS sees them."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run(
                [str(BIN / "ray"), "list", "nodes", f"--address={self.dashboard}", "--format=json"],
                capture_output=True, text=True, env=_env(),
            )  # fmt: skip
            try:
                if sum(node["state"] == "ALIVE" for node in json.loads(out.stdout)) >= n:
                    return
            except (json.JSONDecodeError, KeyError, TypeError):
                pass
            time.sleep(2)
        raise TimeoutError(f"{n} nodes did not come up:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self.procs:  # `ray start --block` lingers after SIGTERM: kill what is left of its group
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def start_head(tmp: Path, num_cpus: int = 2, resources: dict[str, float] | None = None) -> LocalCluster:
    """Start a head node with its dashboard (Jobs API) on 127.0.0.1 and wait until the Jobs API answers. Ray's
    temp dir is a short /tmp path: its unix sockets must stay under 107 bytes."""
    from dataengine.jobs import ray_jobs

    port, dash = free_port(), free_port()
    ports = {name: free_port() for name in NODE_PORTS}
    short_tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--num-cpus={num_cpus}",
         f"--resources={json.dumps(resources or {})}", "--include-dashboard=true",
         f"--temp-dir={short_tmp}", "--disable-usage-stats", *(f"--{k}={v}" for k, v in ports.items())],
        env=_env(), stdout=open(tmp / "head.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    cluster = LocalCluster(
        tmp, f"127.0.0.1:{port}", f"http://127.0.0.1:{dash}", [ports["metrics-export-port"]], [proc]
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            ray_jobs.client(cluster.dashboard).list_jobs()
            return cluster
        except Exception:
            time.sleep(2)
    cluster.stop()
    raise TimeoutError(f"head did not come up: {cluster.logs()}")
