"""Split reads: a large JSONL file is read by several tasks in line-aligned byte ranges, a large Parquet file by
runs of row groups, so that one big input keeps every CPU of the cluster busy. "Large" is over `split_bytes`, or,
where the run's inputs would otherwise be fewer pieces than the cluster has CPUs, over `MIN_PIECE` (the rows of a
read task go through the row stages in that task, on one CPU).

Splitting happens on the driver after planning (the ledger plans and records whole files) and before the read
tasks become a Ray Dataset. Every piece yields exactly the rows, locations and ids a one-task read of its file
would: a JSONL range knows its first line's number from a newline count run as parallel Ray tasks, a Parquet
piece the row index of its first row from the file's footer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from dataengine.core.storage import resolve

CHUNK = 1 << 20
# the smallest piece the CPU floor cuts (a file is cut smaller only by a smaller split_bytes): some hundreds of
# records, seconds of image work, so a small input still keeps every CPU busy without a task per few lines
MIN_PIECE = 64 << 10
IO_THREADS = 16  # the driver's concurrent file stats and Parquet footer reads (I/O waits on object stores)
# what scan_range says of a byte range: its newline count and where its first line starts, or None (unreadable)
Scan = tuple[int, int | None] | None
Scanner = Callable[[list[tuple[str, int, int]]], list[Scan]]


def piece_count(size: int, total: int, split_bytes: int, cpus: int, min_piece: int = MIN_PIECE) -> int:
    """How many pieces a file of `size` bytes is read in, in a run whose JSONL and Parquet inputs are `total`
    bytes: pieces of at most `split_bytes`, and at least one per CPU for the run's inputs together (a lone file
    makes one per CPU at least, two files half as many each), though never more than the pieces of `min_piece`
    bytes that fit in the file for that; at most one per byte."""
    by_size = -(-size // split_bytes)
    by_cpus = min(-(-size * max(cpus, 1) // max(total, size, 1)), size // max(min_piece, 1))
    return max(1, min(size, max(by_size, by_cpus)))


def byte_spans(size: int, n: int) -> list[tuple[int, int]]:
    """`n` [start, end) spans of equal size (give or take a byte) covering `size` bytes."""
    bounds = [size * k // n for k in range(n + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def scan_range(uri: str, start: int, end: int) -> Scan:
    """(number of b"\\n" in [start, end), offset of the first b"\\n" in [start - 1, end - 1) or None): the first
    tells the driver how many lines come before the next span, the second where the first line that starts in this
    span starts (just past that newline; None: no line starts in it). None when the file cannot be read. Streams
    CHUNK bytes at a time; a UTF-8 multi-byte character never holds a b"\\n" byte, so spans may cut anywhere."""
    lo = max(start - 1, 0)
    count, first, pos = 0, None, lo
    try:
        fs, path = resolve(uri)
        with fs.open_input_file(path) as f:
            f.seek(lo)
            while pos < end:
                chunk = f.read(min(CHUNK, end - pos))
                if not chunk:
                    break
                if first is None and (at := chunk.find(b"\n")) >= 0:
                    first = pos + at
                count += chunk.count(b"\n")
                pos += len(chunk)
    except OSError:
        return None
    if start > 0 and first == start - 1:
        count -= 1  # the byte before the span was read to find line starts, not counted
    return count, (first if first is not None and first < end - 1 else None)


@cache
def _remote_scan() -> Any:
    import ray

    return ray.remote(num_cpus=1)(scan_range)


def scan_on_ray(jobs: list[tuple[str, int, int]]) -> list[Scan]:
    """`scan_range(uri, start, end)` for every job, as parallel Ray tasks; results in job order."""
    import ray

    scan = _remote_scan()
    return ray.get([scan.remote(*job) for job in jobs])


def split_tasks(
    tasks: list[dict[str, Any]], split_bytes: int, cpus: int, scan: Scanner | None = None
) -> list[dict[str, Any]]:
    """The read tasks with every JSONL or Parquet file that `piece_count` cuts in several replaced by its pieces,
    in file order where its task was: files over `split_bytes` in pieces of at most that, and as many as make a
    piece per CPU for the run's inputs together (of at least `MIN_PIECE` bytes each), so that a lone file is read
    by at least one task per CPU and many large files by about size / split_bytes tasks each. A JSONL file ends
    up with fewer where whole pieces fall inside one line, a Parquet file where row groups are larger than a
    piece. Other tasks, and files that cannot be split (unreadable, one line, one row group), stay as they are.
    `scan` counts newlines (default: parallel Ray tasks, `scan_on_ray`, one full pass over each split JSONL file
    before it is read). Cost on the driver: a stat per JSONL and Parquet file, a footer per split Parquet file."""
    sized = [i for i, t in enumerate(tasks) if t["kind"] in ("jsonl", "parquet") and t.get("uri")]
    with ThreadPoolExecutor(IO_THREADS) as pool:
        sizes = dict(zip(sized, pool.map(lambda i: _size(tasks[i]["uri"]), sized), strict=True))
    total = sum(s or 0 for s in sizes.values())
    count = {i: n for i, s in sizes.items() if s and (n := piece_count(s, total, split_bytes, cpus)) > 1}
    pieces: dict[int, list[dict[str, Any]] | None] = {}
    spans = {i: byte_spans(sizes[i] or 0, n) for i, n in count.items() if tasks[i]["kind"] == "jsonl"}
    jobs = [(tasks[i]["uri"], start, end) for i, ss in spans.items() for start, end in ss]
    scans = iter((scan or scan_on_ray)(jobs) if jobs else [])
    for i, ss in spans.items():
        pieces[i] = line_ranges(tasks[i], ss, [next(scans) for _ in ss])
    parquet = [i for i in count if tasks[i]["kind"] == "parquet"]
    with ThreadPoolExecutor(IO_THREADS) as pool:
        found = pool.map(lambda i: row_group_pieces(tasks[i], (sizes[i] or 0) / count[i]), parquet)
        pieces.update(zip(parquet, found, strict=True))
    return [part for i, task in enumerate(tasks) for part in (pieces.get(i) or [task])]


def _size(uri: str) -> int | None:
    try:
        fs, path = resolve(uri)
        info = fs.get_file_info(path)
    except (OSError, ValueError):
        return None
    return info.size if info.type == pafs.FileType.File else None


def line_ranges(task: dict[str, Any], spans: list[tuple[int, int]], scans: list[Scan]) -> list[dict[str, Any]] | None:
    """A JSONL task's pieces from its byte spans and their scans: one per span in which a line starts, reading the
    lines that start in it ([`range` start, end), both line starts; the last piece's end is None: to the end of the
    file, as a one-task read), the first of them numbered `first_line` = 1 + newlines before it. None when a span
    could not be scanned or the file is one piece (one long line): the file is read by one task."""
    scanned = [s for s in scans if s is not None]
    if len(scanned) < len(spans) or not spans:
        return None
    starts, before = [(0, 1)], 0  # (line start, its line number); newlines before the current span
    for (start, _), (count, first) in zip(spans, scanned, strict=True):
        if start > 0 and first is not None:
            # the line starts just past `first`: newlines before it are those before the span, plus `first`
            # itself when it lies inside the span rather than just before it
            starts.append((first + 1, 1 + before + int(first >= start)))
        before += count
    if len(starts) == 1:
        return None
    ends = [s for s, _ in starts[1:]] + [None]
    return [
        {**task, "range": [start, end], "first_line": line} for (start, line), end in zip(starts, ends, strict=True)
    ]


def row_group_pieces(task: dict[str, Any], piece: float) -> list[dict[str, Any]] | None:
    """A Parquet task's pieces: runs of consecutive row groups of `piece` compressed bytes or a little more, each
    with its `row_groups`, `first_row` (the file's row index of its first row) and `rows`. None when the footer
    cannot be read (the one-task read rejects the file) or the file is one piece."""
    try:
        fs, path = resolve(task["uri"])
        with fs.open_input_file(path) as f:
            meta = pq.read_metadata(f)
    except Exception:  # a corrupt or vanished file: read, and rejected, by one task as before
        return None
    out: list[dict[str, Any]] = []
    groups: list[int] = []
    first = rows = size = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        groups.append(g)
        rows += rg.num_rows
        size += sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
        if size >= piece or g == meta.num_row_groups - 1:
            out.append({**task, "row_groups": groups, "first_row": first, "rows": rows})
            first, groups, rows, size = first + rows, [], 0, 0
    return out if len(out) > 1 else None
