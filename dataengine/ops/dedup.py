"""Global exact and near-duplicate removal over the whole run, with Ray Data groupby (never all-pairs).

1. Exact: group by the decoded-pixel hash (plus the normalised-text hash in `image+text` mode); the survivor of
   a group is the largest image, ties broken by smallest id, so the choice is deterministic.
2. Near: each exact survivor's 64-bit pHash is cut into `hamming_threshold + 1` bands; by pigeonhole, two hashes
   within the threshold share a band, so only members of a (band, value) bucket are compared. Candidate pairs
   within the threshold become edges; connected components (union-find over edges only, a small set) pick one
   survivor each by the same rule.
3. Every non-survivor becomes a `dedup` reject naming its final survivor: the rows were spilled to the run's
   `_work/` before the decision (a signature stage, `ops.base.SignatureStage`) and are marked block by block.

Dedup's own tasks (key extraction, group picks, band edges, the final marking) run with the stage's declared
`resources` (CPUs, GPUs, memory, custom resources), so a cluster can place them; the shuffles' aggregators are
sized and placed by Ray Data.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from dataengine.core.text import text_key
from dataengine.ops.base import RunContext, SignatureStage, StageConfig

STAGE = "dedup"
KEY_COLS = ["id", "pixel_hash", "phash", "text_key", "width", "height"]
EXACT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("phash", pa.string()),
        ("text_key", pa.string()),
        ("area", pa.int64()),
        ("prior", pa.bool_()),
        ("exact_of", pa.string()),
    ]
)
BAND_SCHEMA = pa.schema(
    [("band", pa.string()), ("id", pa.string()), ("phash", pa.string()), ("area", pa.int64()), ("prior", pa.bool_())]
)
EDGE_SCHEMA = pa.schema(
    [
        ("a", pa.string()),
        ("b", pa.string()),
        ("a_phash", pa.string()),
        ("b_phash", pa.string()),
        ("a_area", pa.int64()),
        ("b_area", pa.int64()),
        ("a_prior", pa.bool_()),
        ("b_prior", pa.bool_()),
    ]
)
DUP_SCHEMA = pa.schema(
    [("id", pa.string()), ("dup_of", pa.string()), ("dup_reason", pa.string()), ("dup_detail", pa.string())]
)


class DedupConfig(StageConfig):
    needs = frozenset({"image"})

    op: Literal["dedup"] = "dedup"
    key: Literal["image", "image+text"] = Field(
        "image", description="image: web pairs; image+text: several captions/questions per image stay distinct"
    )
    exact: bool = True
    near: bool = True
    hamming_threshold: int = Field(4, ge=0, le=16, description="max pHash bit distance for a near duplicate")
    num_partitions: int = Field(8, ge=1, description="hash partitions for the groupby/join shuffles")


def _rank(area: int, sid: str, prior: bool = False) -> tuple[bool, int, str]:
    """Survivor order: samples committed by earlier runs of an incremental dataset first (they are exported
    already), then the largest image, then the smallest id."""
    return (not prior, -area, sid)


def keys_of(batch: pa.Table, key: str, prior: bool = False) -> pa.Table:
    """Accepted rows only, reduced to the dedup key columns. `prior`: rows are an earlier commit's samples
    (no reason column; their text key is recomputed from the exported, already normalised text)."""
    ok = batch.filter(pc.is_null(batch.column("reason"))) if "reason" in batch.column_names else batch
    if key != "image+text":
        text = pa.nulls(len(ok), pa.string())
    elif prior:
        text = pa.array([_prior_text_key(r) for r in ok.select(["caption", "conversations"]).to_pylist()], pa.string())
    else:
        text = ok.column("text_key")
    area = pc.multiply(ok.column("width").cast(pa.int64()), ok.column("height").cast(pa.int64()))
    exact = ok.column("pixel_hash")
    if key == "image+text":
        exact = pc.binary_join_element_wise(exact, pc.fill_null(text, ""), "|")
    flag = pa.array([prior] * len(ok), pa.bool_())
    return pa.table(
        {
            "id": ok.column("id"),
            "phash": ok.column("phash"),
            "text_key": text,
            "area": area,
            "prior": flag,
            "exact_key": exact,
        }
    )


def _prior_text_key(row: dict[str, Any]) -> str:
    if row.get("conversations"):
        return text_key([t["value"] for t in row["conversations"]])
    return text_key([row.get("caption") or ""])


def pick_exact(group: pa.Table) -> pa.Table:
    """One exact-duplicate group -> every member, with `exact_of` set to the survivor for the others."""
    rows = sorted(group.to_pylist(), key=lambda r: _rank(r["area"], r["id"], r["prior"]))
    survivor = rows[0]["id"]
    out = [
        {**{k: r[k] for k in ("id", "phash", "text_key", "area", "prior")}, "exact_of": None if i == 0 else survivor}
        for i, r in enumerate(rows)
    ]
    return pa.Table.from_pylist(out, schema=EXACT_SCHEMA)


def bands_of(batch: pa.Table, threshold: int) -> pa.Table:
    """Exact survivors -> one row per (band index, band bits[, text]) bucket they fall in."""
    reps = batch.filter(pc.is_null(batch.column("exact_of"))).to_pylist()
    nb = threshold + 1
    widths = [64 // nb + (1 if i < 64 % nb else 0) for i in range(nb)]
    out = []
    for r in reps:
        h, shift = int(r["phash"], 16), 64
        for i, w in enumerate(widths):
            shift -= w
            out.append(
                {
                    "band": f"{i}:{(h >> shift) & ((1 << w) - 1):x}:{r['text_key'] or ''}",
                    "id": r["id"],
                    "phash": r["phash"],
                    "area": r["area"],
                    "prior": r["prior"],
                }
            )
    return pa.Table.from_pylist(out, schema=BAND_SCHEMA)


def bucket_edges(group: pa.Table, threshold: int) -> pa.Table:
    """Pairs in one bucket whose pHashes are within the threshold (vectorised popcount per member)."""
    if len(group) < 2:
        return EDGE_SCHEMA.empty_table()
    rows = group.to_pylist()
    hashes = np.array([int(r["phash"], 16) for r in rows], dtype=np.uint64)
    out = []
    for i in range(len(rows) - 1):
        dist = np.bitwise_count(hashes[i] ^ hashes[i + 1 :])
        for j in np.nonzero(dist <= threshold)[0]:
            a, b = rows[i], rows[i + 1 + int(j)]
            out.append(
                {
                    "a": a["id"],
                    "b": b["id"],
                    "a_phash": a["phash"],
                    "b_phash": b["phash"],
                    "a_area": a["area"],
                    "b_area": b["area"],
                    "a_prior": a["prior"],
                    "b_prior": b["prior"],
                }
            )
    return pa.Table.from_pylist(out, schema=EDGE_SCHEMA)


def near_survivors(edges: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """Union-find over near-duplicate edges -> {non-survivor id: (survivor id, hamming distance to it)}."""
    parent: dict[str, str] = {}
    info: dict[str, tuple[int, str, bool]] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in edges:
        for side in ("a", "b"):
            sid = e[side]
            parent.setdefault(sid, sid)
            info[sid] = (e[f"{side}_area"], e[f"{side}_phash"], e[f"{side}_prior"])
        ra, rb = find(e["a"]), find(e["b"])
        if ra != rb:
            # the root is always the best-ranked member, so it is the component's survivor
            if _rank(info[ra][0], ra, info[ra][2]) <= _rank(info[rb][0], rb, info[rb][2]):
                parent[rb] = ra
            else:
                parent[ra] = rb
    out = {}
    for sid in parent:
        root = find(sid)
        if root != sid:
            dist = int(np.bitwise_count(np.uint64(int(info[sid][1], 16) ^ int(info[root][1], 16))))
            out[sid] = (root, dist)
    return out


def dup_rows(batch: pa.Table, near: dict[str, tuple[str, int]]) -> pa.Table:
    """Exact-stage rows + the near map -> one row per non-survivor with its final survivor and reason."""
    out = []
    for r in batch.to_pylist():
        sid, exact_of = r["id"], r["exact_of"]
        if exact_of is not None:
            final = near.get(exact_of, (exact_of, 0))[0]
            via = f"; {exact_of} is a near duplicate of {final}" if final != exact_of else ""
            out.append(
                {
                    "id": sid,
                    "dup_of": final,
                    "dup_reason": "duplicate_exact",
                    "dup_detail": f"same pixels as {exact_of}{via}",
                }
            )
        elif sid in near:
            final, dist = near[sid]
            out.append(
                {
                    "id": sid,
                    "dup_of": final,
                    "dup_reason": "duplicate_near",
                    "dup_detail": f"pHash Hamming distance {dist} to {final}",
                }
            )
    return pa.Table.from_pylist(out, schema=DUP_SCHEMA)


class Dedup(SignatureStage):
    """Exact and near duplicates over the whole run, decided from compact signatures (ids, hashes, image area);
    the decision is the table of duplicates (one row per rejected sample), applied to each block by id."""

    name = STAGE
    Config = DedupConfig
    signature = ("id", "reason", *KEY_COLS[1:])

    @classmethod
    def decide(cls, signatures: Any, config: StageConfig, ctx: RunContext) -> pa.Table:
        return duplicates(signatures, config, list(ctx.prior))  # type: ignore[arg-type]

    @staticmethod
    def apply(batch: pa.Table, decision: Any, config: StageConfig, ctx: RunContext) -> pa.Table:
        return mark_duplicates(batch, decision)


def mark_duplicates(batch: pa.Table, dups: pa.Table) -> pa.Table:
    """Working rows -> the same rows, those in `dups` rejected as duplicates naming their survivor."""
    at = pc.index_in(batch.column("id"), value_set=dups.column("id"))
    is_dup = pc.is_valid(at)
    if not pc.any(is_dup).as_py():
        return batch
    cols = {
        "stage": pc.if_else(is_dup, pa.scalar(STAGE), batch.column("stage")),
        "reason": pc.if_else(is_dup, pc.take(dups.column("dup_reason"), at), batch.column("reason")),
        "detail": pc.if_else(is_dup, pc.take(dups.column("dup_detail"), at), batch.column("detail")),
        "duplicate_of": pc.if_else(is_dup, pc.take(dups.column("dup_of"), at), batch.column("duplicate_of")),
    }
    for name, col in cols.items():
        batch = batch.set_column(batch.schema.get_field_index(name), name, col)
    return batch


def remote_args(cfg: DedupConfig) -> dict[str, Any]:
    """The stage's declared resources (num_cpus, num_gpus, memory, custom) for each of dedup's own tasks."""
    return cfg.task_args()


def duplicates(signatures: Any, cfg: DedupConfig, prior: list[str] | None = None) -> pa.Table:
    """The run's duplicates: one row (id, dup_of, dup_reason, dup_detail) per sample to reject. `signatures`: a
    Ray Dataset of the signature columns; `prior`: samples files an incremental dataset committed before, whose
    samples always survive (they are exported already). Memory: the duplicates table and the near-duplicate
    edges on the driver (tens of bytes each); the rows never leave the spill."""
    import ray

    if not (cfg.exact or cfg.near):
        return DUP_SCHEMA.empty_table()
    res = remote_args(cfg)
    keys = signatures.map_batches(keys_of, fn_kwargs={"key": cfg.key}, batch_format="pyarrow", **res)
    if prior:
        cols = ["id", "pixel_hash", "phash", "width", "height", "caption", "conversations"]
        earlier = (
            ray.data.read_parquet(prior)
            .select_columns(cols)
            .map_batches(keys_of, fn_kwargs={"key": cfg.key, "prior": True}, batch_format="pyarrow", **res)
        )
        keys = keys.union(earlier)
    if cfg.exact:
        exact = keys.groupby("exact_key", num_partitions=cfg.num_partitions).map_groups(
            pick_exact, batch_format="pyarrow", **res
        )
    else:
        exact = keys.map_batches(
            lambda b: b.drop_columns(["exact_key"]).append_column("exact_of", pa.nulls(len(b), pa.string())),
            batch_format="pyarrow",
            **res,
        )
    exact = exact.materialize()
    near: dict[str, tuple[str, int]] = {}
    if cfg.near:
        threshold = {"threshold": cfg.hamming_threshold}
        bands = exact.map_batches(bands_of, fn_kwargs=threshold, batch_format="pyarrow", **res)
        edges = bands.groupby("band", num_partitions=cfg.num_partitions).map_groups(
            bucket_edges, fn_kwargs=threshold, batch_format="pyarrow", **res
        )
        near = near_survivors(edges.take_all())
    dups = exact.map_batches(dup_rows, fn_kwargs={"near": near}, batch_format="pyarrow", **res)
    parts = [t for t in dups.iter_batches(batch_format="pyarrow", batch_size=None) if len(t)]
    return pa.concat_tables(parts).combine_chunks() if parts else DUP_SCHEMA.empty_table()
