"""Benchmarks: `dataengine bench clean` times pipelines/clean.yaml on the scaled sample dataset and samples the
memory of the driver plus every Ray process it started (PSS, so shared object-store pages count once)."""

from __future__ import annotations

import os
import platform
import threading
import time
from typing import Any

import psutil


class MemorySampler:
    """Background thread: peak summed PSS (falling back to RSS) of this process and all its descendants, and how
    that peak split between the driver, Ray's workers and Ray's own processes (raylet, GCS, dashboard...), and
    when it came (seconds from the start)."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self.peak_parts: dict[str, int] = {}
        self.peak_at = 0.0
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _part(proc: psutil.Process, me: psutil.Process) -> str:
        if proc.pid == me.pid:
            return "driver"
        name = proc.name()
        if name.startswith("ray::") and name not in ("ray::DashboardAgent", "ray::RuntimeEnvAgent"):
            return "ray_workers"
        return "ray_system"

    def _sample(self) -> tuple[int, dict[str, int]]:
        me = psutil.Process()
        parts: dict[str, int] = {}
        for proc in [me, *me.children(recursive=True)]:
            try:
                mem = proc.memory_full_info()
                part = self._part(proc, me)
                parts[part] = parts.get(part, 0) + getattr(mem, "pss", mem.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return sum(parts.values()), parts

    def _loop(self) -> None:
        start = time.perf_counter()
        while not self._stop.is_set():
            total, parts = self._sample()
            if total > self.peak:
                self.peak, self.peak_parts, self.peak_at = total, parts, time.perf_counter() - start
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def spilled_bytes() -> int | None:
    """Bytes Ray's object store has spilled to disk since it started (all nodes); None where this Ray version's
    internal API differs."""
    try:
        import ray
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        state = get_state_from_address(ray.get_runtime_context().gcs_address)  # this run's Ray, not another's
        return int(get_memory_info_reply(state).store_stats.spilled_bytes_total)
    except Exception:  # noqa: BLE001 - a statistic, not the benchmark's result
        return None


def bench_clean(data: str, storage: str, num_cpus: int | None = None, sets: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the clean pipeline once on `data` (with `sets` overrides); return throughput, peak memory (PSS of the
    driver and every Ray process), the object store's spilled bytes and the machine."""
    from dataengine import pipeline, runner

    overrides = ["ray.progress=false", *([f"ray.num_cpus={num_cpus}"] if num_cpus else []), *sets]
    spec = pipeline.load("clean", overrides)
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        record = runner.run(spec, input_uri=data, storage=storage)
        wall = time.perf_counter() - t0
    spilled = spilled_bytes()
    acc = record["accounting"]
    return {
        "run_id": record["run_id"],
        "overrides": " ".join(sets) or "none",
        "inputs": acc["inputs"],
        "accepted": acc["accepted"],
        "rejected": acc["rejected"],
        "wall_s": round(wall, 1),
        "samples_per_s": round(acc["inputs"] / wall, 1),
        "peak_memory_gib": round(mem.peak / 2**30, 2),
        "peak_memory_by_process_gib": {k: round(v / 2**30, 2) for k, v in sorted(mem.peak_parts.items())},
        "peak_memory_at_s": round(mem.peak_at, 1),
        "object_store_spilled_mib": None if spilled is None else round(spilled / 2**20, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Ray num_cpus={num_cpus or os.cpu_count()}",
    }
