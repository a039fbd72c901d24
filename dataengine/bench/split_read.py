"""`dataengine bench split-read`: a large JSONL annotation file read whole by one task and in split pieces by Ray
tasks (`readers.split`): the pieces must yield the same records with the same line locations, and there must be at
least one piece per CPU. The file has what breaks naive byte-range reads: a BOM, CRLF lines, blank lines, Chinese
text (multi-byte characters at piece boundaries), a malformed line and no final newline."""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

import numpy as np

from dataengine.core.storage import join

CAPTIONS = [
    "A red bicycle leans against a brick wall beside a blue door, with ivy climbing over the frame.",
    "一只橘色的猫趴在木制窗台上晒太阳，窗外是一片绿色的花园。",
    "Chart: quarterly revenue rose from 1.2M to 3.4M (2019-2021); see https://example.com/report for details.",
    "两位老人在公园的长椅上下棋，旁边站着几个围观的人，天气晴朗。",
]


def write_jsonl(path: str, size: int) -> int:
    """A JSONL file of about `size` bytes; returns the number of lines written."""
    lines = 0
    with open(path, "w+b") as f:
        f.write(b"\xef\xbb\xbf")
        while f.tell() < size:
            block = []
            for k in range(lines, lines + 10_000):
                caption = f"{CAPTIONS[k % 4]} #{k} " + "细节描述。" * (k % 7) + "more words " * (k % 5)
                line = json.dumps({"image": f"images/{k % 977:04d}.jpg", "caption": caption}, ensure_ascii=False)
                if k % 1_000 == 17:
                    line = line[: len(line) // 2]  # malformed: the reader rejects it with its location
                block.append(line.encode() + (b"\r\n" if k % 3 == 0 else b"\n") + (b"\n" if k % 501 == 0 else b""))
            f.write(b"".join(block))
            lines += 10_000
        f.seek(-2, os.SEEK_END)
        tail = f.read(2)
        f.truncate(f.tell() - (2 if tail == b"\r\n" else 1 if tail.endswith(b"\n") else 0))  # no final newline
    return lines


def digest(task: dict[str, Any], max_record_bytes: int) -> tuple[int, int, int]:
    """(rows, rejected rows, order-free checksum of every row's id, location, caption and reason) of one read
    task; the checksum is a sum of 64-bit hashes modulo 2**64, so pieces add up to the whole file's."""
    from dataengine.readers import read_task

    rows = rejected = 0
    total = np.uint64(0)
    for row in read_task(task, max_record_bytes=max_record_bytes):
        key = "\x1f".join(str(row.get(c)) for c in ("id", "location", "caption", "reason"))
        total += np.frombuffer(hashlib.blake2b(key.encode(), digest_size=8).digest(), np.uint64)[0]
        rows += 1
        rejected += row.get("reason") is not None
    return rows, rejected, int(total)


def bench_split_read(storage: str, size_mb: int, num_cpus: int | None, split_mb: int = 4) -> dict[str, Any]:
    """Build (once) a JSONL file of `size_mb` MiB under the storage root, read it by one task and split, compare."""
    import ray

    from dataengine.readers import plan_tasks
    from dataengine.readers.split import split_tasks

    folder = join(storage, "bench", "split-read")
    os.makedirs(folder, exist_ok=True)
    path = join(folder, f"annotations-{size_mb}mb.jsonl")
    if not os.path.exists(path):
        write_jsonl(path + ".tmp", size_mb << 20)
        os.replace(path + ".tmp", path)
    ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        tasks = plan_tasks(path)
        started = time.perf_counter()
        pieces = split_tasks(tasks, split_mb << 20, cpus)
        plan_s = time.perf_counter() - started
        remote = ray.remote(num_cpus=1)(digest)
        started = time.perf_counter()
        split = ray.get([remote.remote(t, 1 << 20) for t in pieces])
        split_s = time.perf_counter() - started
        started = time.perf_counter()
        (whole,) = ray.get([remote.remote(t, 1 << 20) for t in tasks])
        whole_s = time.perf_counter() - started
    finally:
        ray.shutdown()
    rows = sum(s[0] for s in split)
    checksum = sum(s[2] for s in split) % 2**64  # the pieces' checksums add up modulo 2**64
    return {
        "file_mib": round(os.path.getsize(path) / 2**20),
        "cpus": cpus,
        "pieces": len(pieces),
        "rows_one_task": whole[0],
        "rows_split": rows,
        "rejected_one_task": whole[1],
        "rejected_split": sum(s[1] for s in split),
        "same_rows_and_locations": rows == whole[0] and checksum == whole[2],
        "split_plan_s": round(plan_s, 1),
        "read_one_task_s": round(whole_s, 1),
        "read_split_s": round(split_s, 1),
    }
