"""`dataengine bench dedup`: the dedup decision on synthetic signatures (no images), with planted duplicates whose
answer is known: exact copies, near copies at distances 1..threshold, a dense cluster (every member within the
threshold of every other) and a chain (each link within the threshold, the ends far apart). Reports wall, peak
memory of all processes, the pairs found within the threshold, and recall and precision: every planted pair
decided, every rejection within the threshold of the sample it names, and on a brute-forced sample every pair
within the threshold in one component and never both kept."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import numpy as np
import psutil
import pyarrow as pa

from dataengine.bench.clean import MemorySampler

SEED = 0x5EED
_OFFSET = np.uint64((SEED * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)  # in Python ints: numpy warns on the overflow


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64: index -> a well-spread 64-bit value."""
    z = x.astype(np.uint64) + _OFFSET
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class Plant:
    """Where the planted items sit: indices [0, exact) copy item n-1-k exactly; [exact, exact+near) are near
    copies of item n-1-k at distance 1 + k % threshold; then `dense` items around one centre (at most
    threshold // 2 bits each from it); then `chain` items 0, 0xF, 0xFF, ... (4 bits a link) from a base."""

    def __init__(self, n: int, threshold: int, dense: int = 1000, chain: int = 12):
        self.n, self.t = n, threshold
        self.exact = self.near = max(1, n // 200)
        self.dense, self.chain = min(dense, n // 10), chain
        self.end = self.exact + self.near + self.dense + self.chain
        if 2 * self.end > n:
            raise ValueError(f"--n {n} is too small for the planted duplicates; use at least {2 * self.end}")

    def hashes(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pHash, pixel key) for item indices."""
        h = mix(idx)
        pixel = idx.copy()
        partner = self.n - 1 - idx
        ex = idx < self.exact
        h[ex], pixel[ex] = mix(partner[ex]), partner[ex]
        nr = (idx >= self.exact) & (idx < self.exact + self.near)
        dist = 1 + (idx[nr] - self.exact) % max(self.t, 1) if self.t else np.zeros(nr.sum(), np.int64)
        h[nr] = mix(partner[nr]) ^ _low_bits(dist, idx[nr])
        start = self.exact + self.near
        dn = (idx >= start) & (idx < start + self.dense)
        h[dn] = mix(np.array([self.n + 1])) ^ _low_bits(np.full(dn.sum(), self.t // 2), idx[dn])
        start += self.dense
        ch = (idx >= start) & (idx < start + self.chain)
        links = (idx[ch] - start).astype(np.uint64)
        h[ch] = mix(np.array([self.n + 2])) ^ ((np.uint64(1) << (np.uint64(4) * links)) - np.uint64(1))
        return h, pixel


def _low_bits(count: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """A mask of `count` distinct bits per item, chosen from `salt`."""
    out = np.zeros(len(count), np.uint64)
    for k, (c, s) in enumerate(zip(count.tolist(), salt.tolist(), strict=True)):
        bits = np.random.default_rng(s).choice(64, size=c, replace=False)
        out[k] = np.uint64(sum(1 << int(b) for b in bits))
    return out


def signatures(batch: dict[str, np.ndarray], plant: Plant) -> pa.Table:
    """`ray.data.range` rows -> dedup signature rows (the columns `Dedup.signature` reads)."""
    idx = batch["id"].astype(np.int64)
    h, pixel = plant.hashes(idx)
    side = 200 + (mix(idx + plant.n * 7) % np.uint64(800)).astype(np.int64)
    side[idx < plant.exact] = 100  # an exact copy is smaller than its original, so the original survives
    return pa.table(
        {
            "id": pa.array([f"s{i:011d}" for i in idx.tolist()]),
            "reason": pa.nulls(len(idx), pa.string()),
            "pixel_hash": pa.array([f"p{p:x}" for p in pixel.tolist()]),
            "phash": pa.array([f"{v:016x}" for v in h.tolist()]),
            "text_key": pa.nulls(len(idx), pa.string()),
            "width": pa.array(side),
            "height": pa.array(side),
        }
    )


def bench_dedup(
    n: int,
    threshold: int = 4,
    num_cpus: int | None = None,
    partitions: int | None = None,
    sample: int = 3000,
    local_edges: int | None = None,
) -> dict[str, Any]:
    """Run dedup's decision over n synthetic signatures on a local Ray; return the figures and the machine."""
    import ray

    from dataengine.ops.dedup import DedupConfig, collect, duplicates

    plant = Plant(n, threshold)
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        trace: dict[str, Any] = {}
        cfg = DedupConfig(hamming_threshold=threshold, num_partitions=partitions)
        if local_edges is not None:
            cfg = cfg.model_copy(update={"local_edges": local_edges})
        with MemorySampler() as mem:
            t0 = time.perf_counter()
            sigs = ray.data.range(n).map_batches(signatures, fn_kwargs={"plant": plant}, batch_format="numpy")
            dups = collect(duplicates(sigs, cfg, trace=trace, rows=n))
            wall = time.perf_counter() - t0
        checked = check(plant, dups, trace, sample)
    finally:
        ray.shutdown()
    cut = trace.get("cut")
    return {
        "n": n,
        "threshold": threshold,
        "bands": None if cut is None else f"{len(cut.bands)} bands, r={cut.r}, {cut.groups_per_hash} rows a hash",
        "wall_s": round(wall, 1),
        "peak_memory_gib": round(mem.peak / 2**30, 2),
        "candidate_pairs": checked.pop("candidate_pairs"),
        **checked,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Ray num_cpus={num_cpus or os.cpu_count()}",
    }


def check(plant: Plant, dups: pa.Table, trace: dict[str, Any], sample: int) -> dict[str, Any]:
    """Planted answers and brute force on a sample (the planted items, their partners and `sample` others)."""
    t = plant.t
    rejected = dict(zip(dups.column("id").to_pylist(), dups.column("dup_of").to_pylist(), strict=True))
    reasons = dict(zip(dups.column("id").to_pylist(), dups.column("dup_reason").to_pylist(), strict=True))

    def index(sid: str) -> int:
        return int(sid[1:])

    # every rejected sample is within the threshold of the one it names (exact: the same pixels)
    ids = np.array([index(s) for s in rejected], np.int64)
    of = np.array([index(s) for s in rejected.values()], np.int64)
    ha, pa_ = plant.hashes(ids) if len(ids) else (np.array([], np.uint64), ids)
    hb, pb = plant.hashes(of) if len(of) else (np.array([], np.uint64), of)
    near = np.array([reasons[s] == "duplicate_near" for s in rejected], bool)
    within = np.where(near, np.bitwise_count(ha ^ hb) <= t, pa_ == pb) if len(ids) else np.array([], bool)
    # planted: every exact and near copy is decided (one of each pair rejected), the dense cluster keeps one
    planted_pairs = [(k, plant.n - 1 - k) for k in range(plant.exact + plant.near)]
    found = sum(1 for a, b in planted_pairs if f"s{a:011d}" in rejected or f"s{b:011d}" in rejected)
    dense0 = plant.exact + plant.near
    dense_kept = sum(1 for k in range(dense0, dense0 + plant.dense) if f"s{k:011d}" not in rejected)
    # brute force on a sample of exact survivors vs the edges the search found among them
    rng = np.random.default_rng(1)
    others = rng.choice(
        np.arange(plant.end, plant.n - plant.end), size=min(sample, plant.n - 2 * plant.end), replace=False
    )
    members = np.unique(
        np.concatenate([np.arange(plant.exact, plant.end), plant.n - 1 - np.arange(plant.exact + plant.near), others])
    )
    h, _ = plant.hashes(members)
    truth = set()
    for i in range(len(members) - 1):
        close = np.nonzero(np.bitwise_count(h[i] ^ h[i + 1 :]) <= t)[0]
        truth.update((int(members[i]), int(members[i + 1 + c])) for c in close)
    # the search's links must put both ends of every sampled pair in one component
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    links = trace.get("links")
    if links is not None:
        for b in links.select_columns(["id", "root"]).iter_batches(batch_format="pyarrow", batch_size=None):
            for a, c in zip(b.column("id").to_pylist(), b.column("root").to_pylist(), strict=True):
                ra, rc = find(index(a)), find(index(c))
                if ra != rc:
                    parent[max(ra, rc)] = min(ra, rc)
    joined = sum(1 for a, b in truth if find(a) == find(b))
    both_kept = sum(1 for a, b in truth if f"s{a:011d}" not in rejected and f"s{b:011d}" not in rejected)
    return {
        "rejected": len(rejected),
        "candidate_pairs": int(trace.get("pairs", 0)),
        "planted_recall": round(found / len(planted_pairs), 4),
        "rejections_within_threshold": round(float(within.mean()) if len(within) else 1.0, 4),
        "dense_cluster_kept": dense_kept,
        "sample_size": len(members),
        "sample_recall": round(joined / len(truth), 4) if truth else 1.0,
        "sample_pairs_decided": round(1 - both_kept / len(truth), 4) if truth else 1.0,
    }
