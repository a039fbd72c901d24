"""Near-duplicate groups on Ray Data: connected components of the near-duplicate graph, then, inside each
component, survivors picked in rank order.

Input: link rows (`LINK`), one per sample the search put in a group with another within the threshold: the
sample, the root it was linked to inside one search task (a spanning star of that task's local component), and
what the survivor rule needs (the 64-bit hash, image area, prior flag, text key). A search task emits at most one
link per group row instead of every pair, so a dense cluster of k samples costs about k links, not k^2/2 edges.

Components: up to `local_edges` links, in one task (scipy's connected components); above it, by min-label
propagation: every node starts labelled with its own id; each round, a node takes the smallest label among its
own and its neighbours' (one Ray Data join of the arcs with the labels and one hash aggregate), until no label
changes. Rounds: the largest component's diameter in links (stars: a few). Memory: links and labels live in Ray
Data blocks; the driver holds one count a round. Scales with the linked samples, not the run.

Survivors: the members of a component, best rank first (`rank`: earlier commits, then the largest image, then the
smallest id); a member is rejected when its hash is within the threshold of a survivor picked before it (and, in
`image+text` mode, its text key is the same), naming the best-ranked such survivor, and becomes a survivor
otherwise. Samples earlier commits exported always survive (they are in the dataset already), so a new sample
near any of them is rejected. A chain a~b~c whose ends are far apart keeps both ends. One component is decided in
one task from its members' hashes: k members and s survivors cost k*s popcounts, k rows of memory.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from dataengine.core.shuffle import by_key, join

NODE = pa.schema(
    [
        ("id", pa.string()),
        ("h", pa.int64()),  # the 64-bit pHash, its bits as int64
        ("area", pa.int64()),
        ("prior", pa.bool_()),
        ("text_key", pa.string()),
    ]
)
LINK = pa.schema([*NODE, pa.field("root", pa.string()), pa.field("pairs", pa.int64())])
NEAR_DUP = pa.schema([("id", pa.string()), ("dup_of", pa.string()), ("dist", pa.int64())])


class Forest:
    """Connected components of one task's rows, merged a chunk of pairs at a time (scipy): memory is the rows
    and one chunk, however many pairs the task finds."""

    def __init__(self, n: int, chunk: int = 1 << 20):
        self.n, self.chunk, self.pairs = n, chunk, 0
        self.root = np.arange(n, dtype=np.int64)
        self._a: list[np.ndarray] = []
        self._b: list[np.ndarray] = []
        self._held = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        self._a.append(a)
        self._b.append(b)
        self._held += len(a)
        self.pairs += len(a)
        if self._held >= self.chunk:
            self._merge()

    def roots(self) -> np.ndarray:
        """Each row's root: the first row of its component."""
        self._merge()
        return self.root

    def _merge(self) -> None:
        if not self._a:
            return
        every = np.arange(self.n, dtype=np.int64)
        a, b = np.concatenate([*self._a, every]), np.concatenate([*self._b, self.root])
        graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(self.n, self.n))
        _, label = connected_components(graph, directed=False)
        _, first = np.unique(label, return_index=True)  # labels are 0..k-1: the first row of each
        self.root = first[label].astype(np.int64)
        self._a, self._b, self._held = [], [], 0


def rank(area: int, sid: str, prior: bool = False) -> tuple[bool, int, str]:
    """Survivor order: samples committed by earlier runs of an incremental dataset first (they are exported
    already), then the largest image, then the smallest id."""
    return (not prior, -area, sid)


def ranked(block: pa.Table, group: str) -> tuple[pa.Table, np.ndarray]:
    """Rows (with `prior`, `area`, `id`) sorted by `group`, then in `rank` order inside each group; and a mask of
    each group's first row (its best-ranked member). Vectorised: one sort a block."""
    block = block.append_column("not_prior", pc.invert(block.column("prior"))).append_column(
        "neg_area", pc.negate(block.column("area"))
    )
    block = block.sort_by([(c, "ascending") for c in (group, "not_prior", "neg_area", "id")])
    key = block.column(group).combine_chunks()
    first = np.ones(len(block), dtype=bool)
    first[1:] = pc.not_equal(key.slice(1), key.slice(0, len(key) - 1)).to_numpy(zero_copy_only=False)
    return block, first


def _s(col: Any) -> pa.Array:
    """One string array (joins and shuffles may hand back chunked or large_string columns)."""
    return col.combine_chunks().cast(pa.string())


def _arcs(batch: pa.Table) -> pa.Table:
    """Links (a sample, its root) -> arcs both ways."""
    batch = batch.filter(pc.not_equal(batch.column("a"), batch.column("b")))
    return pa.table(
        {
            "src": pa.concat_arrays([_s(batch.column("a")), _s(batch.column("b"))]),
            "dst": pa.concat_arrays([_s(batch.column("b")), _s(batch.column("a"))]),
        }
    )


def _offers(batch: pa.Table) -> pa.Table:
    """Joined (src, dst, label of src) -> the label src offers dst; plus src's own label kept for itself."""
    label = _s(batch.column("label"))
    return pa.table(
        {
            "id": pa.concat_arrays([_s(batch.column("dst")), _s(batch.column("src"))]),
            "label": pa.concat_arrays([label, label]),
            "own": pa.concat_arrays([pa.nulls(len(batch), pa.string()), label]),
        }
    )


def _lowest(group: pa.Table) -> pa.Table:
    """All offers to some ids (each id's offers in this block) -> (id, label, changed) per id."""
    if len(group) == 0:
        return pa.table({"id": pa.array([], pa.string()), "label": pa.array([], pa.string()),
                         "changed": pa.array([], pa.bool_())})  # fmt: skip
    agg = group.group_by("id").aggregate([("label", "min"), ("own", "max")])
    label, own = agg.column("label_min"), agg.column("own_max")
    return pa.table({"id": agg.column("id"), "label": label, "changed": pc.fill_null(pc.not_equal(label, own), True)})


def component_labels(edges: Any, num_partitions: int, max_rounds: int = 10_000, **res: Any) -> Any:
    """Edges (a, b, ...) -> a materialized Ray Dataset of (id, label): label = the smallest id of the node's
    component. Round k labels every node with the smallest id within k hops."""
    from ray.data.expressions import col

    arcs = edges.select_columns(["a", "b"]).map_batches(_arcs, batch_format="pyarrow", **res).materialize()
    first = arcs.map_batches(_first_offers, batch_format="pyarrow", **res)
    labels = by_key(first, ["id"], _lowest, num_partitions, **res).materialize()
    for _ in range(max_rounds):
        own = labels.select_columns(["id", "label"])
        offered = join(arcs, own, "src", "inner", num_partitions, right_on="id", **res)
        offers = offered.map_batches(_offers, batch_format="pyarrow", **res)
        nxt = by_key(offers, ["id"], _lowest, num_partitions, **res).materialize()
        changed = nxt.filter(expr=col("changed")).count()
        labels = nxt
        if changed == 0:
            return labels.select_columns(["id", "label"])
    raise RuntimeError(f"near-duplicate components did not settle in {max_rounds} rounds")


def _first_offers(batch: pa.Table) -> pa.Table:
    """Arcs -> each node's first label offers: its own id and its neighbour's, whichever is smaller."""
    src = _s(batch.column("src"))
    return pa.table(
        {
            "id": src,
            "label": pc.min_element_wise(src, _s(batch.column("dst"))),
            "own": pa.nulls(len(batch), pa.string()),
        }
    )


def near_duplicates(links: Any, threshold: int, num_partitions: int, local_edges: int = 0, **res: Any) -> Any:
    """Link rows (`LINK`, a materialized Ray Dataset) -> a Ray Dataset of (id, dup_of, dist): every member of a
    component within the threshold of a better-ranked survivor, naming the best-ranked one. Up to `local_edges`
    links, the components are found in one task (memory bounded by that cap); above it, by label propagation."""
    pick = partial(survivors, threshold=threshold)
    if links.count() <= local_edges:
        return links.repartition(1).map_batches(_local, fn_kwargs={"pick": pick}, batch_size=None,
                                                batch_format="pyarrow", **res)  # fmt: skip
    edges = links.select_columns(["id", "root"]).rename_columns({"id": "a", "root": "b"})
    labels = component_labels(edges, num_partitions, **res)
    nodes = by_key(links.select_columns(NODE.names), ["id"], _nodes, num_partitions, **res)
    labelled = join(nodes, labels, "id", "inner", num_partitions, **res)
    return by_key(labelled, ["label"], pick, num_partitions, **res)


def _nodes(links: pa.Table) -> pa.Table:
    """Link rows (every row of each id present) -> one `NODE` row per id."""
    agg = links.group_by("id", use_threads=False).aggregate([(c, "first") for c in NODE.names[1:]])
    return agg.rename_columns([c.removesuffix("_first") for c in agg.column_names]).select(NODE.names).cast(NODE)


def _local(links: pa.Table, pick: Any) -> pa.Table:
    """All the links in one block -> components (scipy) -> `survivors`."""
    nodes = _nodes(links)
    a = pc.index_in(links.column("id"), value_set=nodes.column("id")).to_numpy()
    b = pc.index_in(links.column("root"), value_set=nodes.column("id")).to_numpy()
    n = len(nodes)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    return pick(nodes.append_column("label", pa.array(label.astype(np.int64))))


def survivors(block: pa.Table, threshold: int) -> pa.Table:
    """Members of whole components (`NODE` columns and `label`) -> (id, dup_of, dist) for each member rejected
    in its component: members in rank order, each checked against the survivors picked before it."""
    if len(block) == 0:
        return NEAR_DUP.empty_table()
    block, start = ranked(block, "label")
    h = block.column("h").to_numpy().view(np.uint64)
    prior = block.column("prior").to_numpy(zero_copy_only=False)
    text = pc.fill_null(block.column("text_key"), "").combine_chunks().dictionary_encode().indices.to_numpy()
    ids = block.column("id").to_pylist()
    out: dict[str, list[Any]] = {"id": [], "dup_of": [], "dist": []}
    bounds = [*np.flatnonzero(start).tolist(), len(block)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        kept = np.empty(hi - lo, dtype=np.int64)
        n_kept = 0
        for i in range(lo, hi):
            if n_kept and not prior[i]:
                them = kept[:n_kept]
                dist = np.bitwise_count(h[them] ^ h[i])
                near = np.flatnonzero((dist <= threshold) & (text[them] == text[i]))
                if len(near):  # the survivors are in rank order: the first is the best-ranked
                    out["id"].append(ids[i])
                    out["dup_of"].append(ids[them[near[0]]])
                    out["dist"].append(int(dist[near[0]]))
                    continue
            kept[n_kept] = i
            n_kept += 1
    return pa.Table.from_pydict(out, schema=NEAR_DUP)
