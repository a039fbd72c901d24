"""Global exact and near-duplicate removal over the whole run, on Ray Data shuffles (never all-pairs).

1. Exact: group by the decoded-pixel hash (plus the normalised-text hash in `image+text` mode); the survivor of
   a group is a sample an earlier commit exported, else the largest image, ties broken by smallest id, so the
   choice is deterministic.
2. Near: every pair of exact survivors whose 64-bit pHashes are within `hamming_threshold` bits is found by
   multi-index hashing (`similarity.hamming`: exact recall, near-linear cost, the search groups hash-partitioned
   over Ray Data). Each search task merges the pairs it finds into link rows (a spanning star of its local
   components: about one row a linked sample, however many pairs), and the links give the connected components
   (`similarity.components`). In each component, survivors are picked in rank order (earlier commits, largest
   image, smallest id) and a member is rejected only against a survivor within the threshold of it (checked on
   the hashes), so a chain whose ends are far apart keeps both ends.
3. Every non-survivor becomes a `dedup` reject naming its survivor (an exact copy of a near duplicate names that
   one's survivor): the rows were spilled to the run's `_work/` before the decision (a signature stage,
   `ops.base.SignatureStage`) and are marked block by block.

Scale: the exact groups and the near search shuffle compact rows (id, hashes, area: tens of bytes, `m * (r + 1)`
rows a sample for the search); components hold only the links. The duplicates (one row per rejected sample) are
routed to the spill file holding each (`SignatureStage.per_row`); no process holds them all. Each shuffle
partition is one task's block, so partitions grow with the rows shuffled (`partition_rows` each, unless
`num_partitions` fixes them); a shuffle of at most `partition_rows` rows is one task, without a hash shuffle.

Dedup's own tasks (key extraction, group picks, band links, the final marking) run with the stage's declared
`resources` (CPUs, GPUs, memory, custom resources), so a cluster can place them; the shuffles' aggregators are
sized and placed by Ray Data.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from dataengine.core.shuffle import by_key, join, partitions
from dataengine.core.text import text_key
from dataengine.ops.base import RunContext, SignatureStage, StageConfig
from dataengine.similarity import components, hamming

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
    num_partitions: int | None = Field(
        None, ge=1, description="hash partitions for every shuffle; unset: one per `partition_rows` rows shuffled"
    )
    partition_rows: int = Field(
        1_000_000, ge=1, description="rows a shuffle partition holds when num_partitions is unset (one task each)"
    )
    search_rows: int = Field(
        20_000_000,
        ge=1,
        description="near search rows one shuffle holds (r + 1 a sample a band); more: the bands "
        "are searched in several passes, one shuffle each",
    )
    local_edges: int = Field(
        2_000_000,
        ge=0,
        description="search links (one to m*(r+1) a near-duplicate sample) up to which components are found in one "
        "task; above it, by rounds of label propagation over Ray Data joins",
    )


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


def pick_exact(block: pa.Table) -> pa.Table:
    """Whole exact-duplicate groups (hash-partitioned by `exact_key`) -> every member, with `exact_of` set to its
    group's survivor (best `components.rank`) for the others. Vectorised: one sort a block (`components.ranked`)."""
    if len(block) == 0:
        return EXACT_SCHEMA.empty_table()
    block, first = components.ranked(block, "exact_key")
    survivor_at = np.maximum.accumulate(np.where(first, np.arange(len(block)), 0))
    survivor = block.column("id").take(pa.array(survivor_at))
    exact_of = pc.if_else(pa.array(first), pa.nulls(len(block), pa.string()), survivor)
    cols = {c: block.column(c) for c in ("id", "phash", "text_key", "area", "prior")}
    return pa.table({**cols, "exact_of": exact_of}).cast(EXACT_SCHEMA)


def group_rows(batch: pa.Table, cut: hamming.Bands, bands: range | None = None) -> pa.Table:
    """Exact survivors -> one row per near-duplicate search group each falls in (`hamming.group_keys`; those of
    `bands` only, when given), carrying what a link needs; in `image+text` mode the text key is part of the
    group, so only same-text pairs meet."""
    reps = batch.filter(pc.is_null(batch.column("exact_of")))
    h = hashes(reps.column("phash"))
    idx, grp, val = hamming.group_keys(h, cut, bands)
    take = pa.array(idx)
    return pa.table(
        {
            "g": pa.array(grp),
            "v": pa.array(val),
            "text_key": pc.fill_null(reps.column("text_key"), "").take(take),
            "id": reps.column("id").take(take),
            "h": pa.array(h.view(np.int64)[idx]),
            "area": reps.column("area").take(take),
            "prior": reps.column("prior").take(take),
        }
    )


def hashes(phash: Any) -> np.ndarray:
    """Hex pHash strings (16 digits: imagehash's 8x8 pHash) -> uint64."""
    col = pc.utf8_lpad(phash.combine_chunks() if hasattr(phash, "combine_chunks") else phash, 16, "0")
    return np.frombuffer(bytes.fromhex("".join(col.to_pylist())), dtype=">u8").astype(np.uint64)


def group_links(block: pa.Table, cut: hamming.Bands, max_pairs: int = 1 << 20) -> pa.Table:
    """Whole search groups (hash-partitioned by group key) -> link rows (`components.LINK`): the pairs first met
    in each group (`hamming`) are merged into this task's connected rows, chunk by chunk, and each row of a
    component links to its root (the component's first row). The pairs never leave the task: a dense group of k
    hashes costs k links, and about `max_pairs` pairs of memory at a time."""
    if len(block) == 0:
        return components.LINK.empty_table()
    block = block.sort_by([("g", "ascending"), ("v", "ascending"), ("text_key", "ascending")])
    g, v = block.column("g").to_numpy(), block.column("v").to_numpy()
    t = block.column("text_key").combine_chunks()
    h = block.column("h").to_numpy().view(np.uint64)
    new = np.ones(len(block), dtype=bool)
    other_text = pc.not_equal(t.slice(1), t.slice(0, len(t) - 1)).to_numpy(zero_copy_only=False)
    new[1:] = (g[1:] != g[:-1]) | (v[1:] != v[:-1]) | other_text
    starts = np.flatnonzero(new)
    forest = components.Forest(len(block), max_pairs)
    for lo, hi in zip(starts, [*starts[1:], len(block)], strict=True):
        for a, b, _ in hamming.iter_pairs_in_group(h[lo:hi], int(g[lo]), cut, max_pairs):
            forest.add(a + lo, b + lo)
    root = forest.roots()
    linked = np.flatnonzero(np.bincount(root, minlength=len(block))[root] > 1)
    pairs = np.zeros(len(linked), dtype=np.int64)
    pairs[:1] = forest.pairs  # the task's pair count, on its first link (summed for the run's count)
    take = pa.array(linked)
    return pa.table(
        {
            "id": block.column("id").take(take),
            "h": block.column("h").take(take),
            "area": block.column("area").take(take),
            "prior": block.column("prior").take(take),
            "text_key": block.column("text_key").take(take),
            "root": block.column("id").take(pa.array(root[linked])),
            "pairs": pa.array(pairs),
        }
    ).cast(components.LINK)


def exact_rows(batch: pa.Table) -> pa.Table:
    """Exact-stage rows -> (id, exact_of) of each exact duplicate."""
    dup = batch.filter(pc.is_valid(batch.column("exact_of")))
    return pa.table({"id": dup.column("id"), "exact_of": dup.column("exact_of")})


def final_rows(batch: pa.Table) -> pa.Table:
    """Exact duplicates joined with the near verdict on their survivor, or near duplicates -> `DUP_SCHEMA`."""
    out = []
    for r in batch.to_pylist():
        if r.get("exact_of") is not None:
            final = r.get("dup_of") or r["exact_of"]
            via = f"; {r['exact_of']} is a near duplicate of {final}" if final != r["exact_of"] else ""
            out.append(
                {"id": r["id"], "dup_of": final, "dup_reason": "duplicate_exact",
                 "dup_detail": f"same pixels as {r['exact_of']}{via}"}
            )  # fmt: skip
        else:
            out.append(
                {"id": r["id"], "dup_of": r["dup_of"], "dup_reason": "duplicate_near",
                 "dup_detail": f"pHash Hamming distance {r['dist']} to {r['dup_of']}"}
            )  # fmt: skip
    return pa.Table.from_pylist(out, schema=DUP_SCHEMA)


class Dedup(SignatureStage):
    """Exact and near duplicates over the whole run, decided from compact signatures (ids, hashes, image area);
    the decision is the table of duplicates (one row per rejected sample), applied to each block by id."""

    name = STAGE
    Config = DedupConfig
    signature = ("id", "reason", *KEY_COLS[1:])
    per_row = True

    @classmethod
    def decide(cls, signatures: Any, config: StageConfig, ctx: RunContext) -> Any:
        return duplicates(signatures, config, list(ctx.prior))  # type: ignore[arg-type]

    @staticmethod
    def apply(batch: pa.Table, decision: Any, config: StageConfig, ctx: RunContext) -> pa.Table:
        return batch if decision is None else mark_duplicates(batch, decision)


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


def duplicates(
    signatures: Any,
    cfg: DedupConfig,
    prior: list[str] | None = None,
    trace: dict[str, Any] | None = None,
    rows: int | None = None,
) -> Any:
    """The run's duplicates: a materialized Ray Dataset of one row (id, dup_of, dup_reason, dup_detail) per
    sample to reject. `signatures`: a Ray Dataset of the signature columns (`rows` of them, counted when not
    given); `prior`: samples files an incremental dataset committed before, whose samples always survive (they
    are exported already). Memory: Ray Data blocks of compact rows; the driver holds counts. `trace`, when
    given, receives the search's cut, its materialized links and the pairs it found (for `bench dedup`)."""
    import ray

    if not (cfg.exact or cfg.near):
        return ray.data.from_arrow(DUP_SCHEMA.empty_table())
    res = remote_args(cfg)

    def parts(n: int) -> int:
        return partitions(n, cfg.num_partitions, cfg.partition_rows)

    keys = signatures.map_batches(keys_of, fn_kwargs={"key": cfg.key}, batch_format="pyarrow", **res)
    n = signatures.count() if rows is None else rows
    if prior:
        cols = ["id", "pixel_hash", "phash", "width", "height", "caption", "conversations"]
        earlier = ray.data.read_parquet(prior).select_columns(cols)
        n += earlier.count()
        keys = keys.union(
            earlier.map_batches(keys_of, fn_kwargs={"key": cfg.key, "prior": True}, batch_format="pyarrow", **res)
        )
    if cfg.exact:
        exact = by_key(keys, ["exact_key"], pick_exact, parts(n), **res)
    else:
        exact = keys.map_batches(
            lambda b: b.drop_columns(["exact_key"]).append_column("exact_of", pa.nulls(len(b), pa.string())),
            batch_format="pyarrow",
            **res,
        )
    exact = exact.materialize()
    exact_dups = exact.map_batches(exact_rows, batch_format="pyarrow", **res).materialize()
    if not cfg.near:
        return _finished(exact_dups.map_batches(final_rows, batch_format="pyarrow", **res))
    survivors = exact.count() - exact_dups.count()
    cut = hamming.choose_bands(survivors, cfg.hamming_threshold)
    links = search(exact, cut, survivors, cfg, res)
    n_links = links.count()
    if trace is not None:
        pairs = links.sum("pairs") if n_links else 0
        trace.update(cut=cut, links=links, pairs=int(pairs or 0), exact_survivors=survivors)
    if n_links == 0:
        return _finished(exact_dups.map_batches(final_rows, batch_format="pyarrow", **res))
    near = components.near_duplicates(links, cfg.hamming_threshold, parts(2 * n_links), cfg.local_edges, **res)
    near = near.materialize()
    if exact_dups.count() == 0:
        return _finished(near.map_batches(final_rows, batch_format="pyarrow", **res))
    # an exact duplicate of a sample rejected as a near duplicate names that one's survivor
    survivor_of = near.select_columns(["id", "dup_of"]).rename_columns({"id": "exact_of"})
    via = join(exact_dups, survivor_of, "exact_of", "left outer", parts(exact_dups.count() + near.count()), **res)
    return _finished(via.union(near).map_batches(final_rows, batch_format="pyarrow", **res))


def search(exact: Any, cut: hamming.Bands, survivors: int, cfg: DedupConfig, res: dict[str, Any]) -> Any:
    """Link rows (`components.LINK`) joining every near-duplicate pair among the exact survivors. The bands are
    searched in passes of about `search_rows` group rows (`r + 1` rows a survivor a band; one band at least), one
    shuffle a pass, so a shuffle holds one pass's rows rather than the whole search's. A pair is kept only by the
    first band and part it meets in, so each pair is counted once."""
    m, per_band = len(cut.bands), survivors * (cut.r + 1)
    passes = min(m, max(1, -(-per_band * m // cfg.search_rows)))
    found = []
    for k in range(passes):
        bands = range(m * k // passes, m * (k + 1) // passes)
        rows = exact.map_batches(group_rows, fn_kwargs={"cut": cut, "bands": bands}, batch_format="pyarrow", **res)
        n_parts = partitions(per_band * len(bands), cfg.num_partitions, cfg.partition_rows)
        found.append(by_key(rows, ["g", "v", "text_key"], partial(group_links, cut=cut), n_parts, **res).materialize())
    return found[0].union(*found[1:]).materialize() if len(found) > 1 else found[0]


def _finished(dups: Any) -> Any:
    return dups.map_batches(lambda b: b.cast(DUP_SCHEMA), batch_format="pyarrow").materialize()


def collect(dups: Any) -> pa.Table:
    """A duplicates dataset as one table (tests and benchmarks: it is as large as the run's duplicates)."""
    parts = [t for t in dups.iter_batches(batch_format="pyarrow", batch_size=None) if len(t)]
    return pa.concat_tables(parts).cast(DUP_SCHEMA).combine_chunks() if parts else DUP_SCHEMA.empty_table()
