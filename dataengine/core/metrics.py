"""Per-stage Prometheus metrics, recorded through `ray.util.metrics`: every name, kind, tag and bucket in one place.

Each metric carries the tags `pipeline`, `run` and `stage` (the stage's op name, as in the rejects table's `stage`
column; `ingest` for the readers), plus `reason`, `kind` or `table` where listed. The Ray metric objects are
created lazily, once per worker process (a metric object records for the process that made it); recording is a no-op
when Ray is not initialised or a stage got no labels (ops called directly in unit tests, `dataengine translate`).

Ray's metrics agent on each node serves them at `http://NODE:<metrics_export_port>/metrics` with its `ray_`
namespace in front and `_total` after counters (`dataengine_rows_in` -> `ray_dataengine_rows_in_total`; a
histogram gives `_bucket`, `_sum`, `_count`), plus Ray's own labels (SessionName, NodeAddress, WorkerId...).
Workers report every `RAY_metrics_report_interval_ms` (10 s by default) and once more when they exit.
`METRICS` below documents each metric (its help text is also Prometheus' HELP).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

NAMESPACE = "ray"  # Ray's metrics agent puts this in front of every application metric
LABELS = ("pipeline", "run", "stage")
BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True)
class Metric:
    """One metric's definition: name, kind, help text, tags beyond pipeline/run/stage, histogram buckets."""

    name: str
    kind: Literal["counter", "histogram"]
    help: str
    tags: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def exported(self) -> list[str]:
        """The series names Ray's Prometheus endpoint serves for this metric."""
        base = f"{NAMESPACE}_{self.name}"
        if self.kind == "counter":
            return [f"{base}_total"]
        return [f"{base}_bucket", f"{base}_sum", f"{base}_count"]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("dataengine_rows_in", "counter", "Rows a stage received, rows rejected upstream included."),
        Metric("dataengine_rows_out", "counter", "Rows leaving a stage still accepted."),
        Metric(
            "dataengine_rejects", "counter", "Rows this stage rejected, by reason (not those rejected upstream).",
            ("reason",),
        ),
        Metric(
            "dataengine_batch_seconds", "histogram",
            "Wall time of one batch in a stage (the _sum is approximate: Ray records bucket midpoints).",
            (), BATCH_BUCKETS,
        ),
        Metric(
            "dataengine_translate_tokens", "counter",
            "Tokens the translation engine reported (kind: prompt|generated).", ("kind",),
        ),
        Metric("dataengine_translate_requests", "counter", "Segments sent to the translation engine (with retries)."),
        Metric("dataengine_translate_cache_lookups", "counter", "Translation cache look-ups."),
        Metric("dataengine_translate_cache_hits", "counter", "Translation cache look-ups answered (no LLM call)."),
        Metric("dataengine_quality_requests", "counter", "Texts and pairs sent to the quality stage's LLM."),
        Metric("dataengine_quality_cache_hits", "counter", "Quality scores answered from the cache (no LLM call)."),
        Metric("dataengine_score_samples", "counter", "Samples the scorer scored."),
        Metric(
            "dataengine_score_seconds", "counter",
            "Seconds spent in the scorer, model or endpoint (samples / seconds = throughput per replica).",
        ),
        Metric("dataengine_tiles_written", "counter", "Tiles written to shards, thumbnails included."),
        Metric("dataengine_tile_shards_written", "counter", "Tile shards written."),
        Metric("dataengine_tile_bytes_written", "counter", "JPEG bytes of the tiles written."),
        Metric("dataengine_export_rows", "counter", "Rows exported (table: samples|rejects).", ("table",)),
    )
}  # fmt: skip

_made: dict[str, Any] = {}  # name -> ray.util.metrics object, this process only


def _instrument(name: str) -> Any:
    """The Ray metric object for `name`, created on first use in this process."""
    if name not in _made:
        from ray.util import metrics as ray_metrics

        m = METRICS[name]
        keys = LABELS + m.tags
        if m.kind == "counter":
            _made[name] = ray_metrics.Counter(name, description=m.help, tag_keys=keys)
        else:
            _made[name] = ray_metrics.Histogram(name, description=m.help, boundaries=list(m.buckets), tag_keys=keys)
    return _made[name]


def stage_labels(labels: Mapping[str, str] | None, stage: str) -> dict[str, str] | None:
    """Run labels ({pipeline, run}) plus the stage's name; None (metrics off) when the run gave none."""
    return None if labels is None else {**labels, "stage": stage}


class StageMetrics:
    """Records one stage's metrics in the current worker; every method is a no-op without labels or Ray."""

    def __init__(self, labels: Mapping[str, str] | None):
        if labels is not None and (set(labels) != set(LABELS) or not all(isinstance(v, str) for v in labels.values())):
            raise ValueError(f"metric labels must be strings for exactly {LABELS}, got {dict(labels)}")
        self.tags = dict(labels) if labels is not None else None

    @property
    def enabled(self) -> bool:
        """Whether records go anywhere: labels given and Ray initialised in this process."""
        if self.tags is None:
            return False
        import ray

        return ray.is_initialized()

    def inc(self, name: str, value: float, **tags: str) -> None:
        """Add `value` (> 0; zero is skipped) to counter `name` with this stage's tags plus `tags`."""
        if value > 0 and self.enabled:
            _instrument(name).inc(float(value), tags={**self.tags, **tags})

    def observe(self, name: str, value: float, **tags: str) -> None:
        """Add one observation to histogram `name` with this stage's tags plus `tags`."""
        if self.enabled:
            _instrument(name).observe(float(value), tags={**self.tags, **tags})

    def batch(self, before: pa.Table | None, after: pa.Table, seconds: float) -> None:
        """The generic counts of one batch: rows in/out, rows newly rejected here by reason, latency.
        `before` is the batch as the stage received it (None for readers: every row is new)."""
        if not self.enabled:
            return
        reason = after.column("reason")
        rejected = pc.is_valid(reason)
        if before is not None:
            seen = before.filter(pc.is_valid(before.column("reason"))).column("id")
            rejected = pc.and_(rejected, pc.invert(pc.is_in(after.column("id"), value_set=seen.combine_chunks())))
        rows_in = len(after) if before is None else len(before)
        self.inc("dataengine_rows_in", rows_in)
        self.inc("dataengine_rows_out", len(after) - pc.count(reason).as_py())
        for item in pc.value_counts(reason.filter(rejected)).to_pylist():
            self.inc("dataengine_rejects", item["counts"], reason=item["values"])
        self.observe("dataengine_batch_seconds", seconds)
        board = _board(self.tags["run"])
        if board is not None:  # fire and forget: the run's progress view, one small message a batch
            board.add.remote(self.tags["stage"], rows_in, pc.sum(rejected).as_py())


# Live progress: a small actor per run that every stage's batch reports to (rows in, rows it rejected), and that
# the driver polls to draw one progress view. It holds one counter pair per stage, whatever the run's size.
PROGRESS_ACTOR = "dataengine-progress-{run}"
_boards: dict[str, Any] = {}


class _Board:
    def __init__(self) -> None:
        self.counts: dict[str, list[int]] = {}

    def add(self, stage: str, rows: int, rejected: int) -> None:
        c = self.counts.setdefault(stage, [0, 0])
        c[0] += rows
        c[1] += rejected or 0

    def snapshot(self) -> dict[str, tuple[int, int]]:
        return {k: (v[0], v[1]) for k, v in self.counts.items()}


def _board(run: str) -> Any:
    """The run's progress actor, looked up once per worker process; None where the run has none."""
    if run not in _boards:
        import ray

        try:
            _boards[run] = ray.get_actor(PROGRESS_ACTOR.format(run=run))
        except ValueError:
            _boards[run] = None
    return _boards[run]


@contextmanager
def live_progress(
    run: str, show: Callable[[dict[str, tuple[int, int]]], None], every_s: float = 0.5
) -> Iterator[None]:
    """While the block runs, call `show({stage: (rows in, rows rejected there)})` every `every_s` seconds from a
    driver thread, and once more at the end."""
    import ray

    board = ray.remote(num_cpus=0)(_Board).options(name=PROGRESS_ACTOR.format(run=run)).remote()
    stop = threading.Event()

    def refresh() -> None:
        try:
            show(ray.get(board.snapshot.remote(), timeout=30))
        except Exception:  # noqa: BLE001 - the view is cosmetic: a lost update must never fail or mask the run
            pass

    def poll() -> None:
        while not stop.wait(every_s):
            refresh()

    thread = threading.Thread(target=poll, name="dataengine-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        refresh()
        try:
            ray.kill(board)
        except Exception:  # noqa: BLE001 - Ray may be gone already (the run failed for that reason)
            pass
