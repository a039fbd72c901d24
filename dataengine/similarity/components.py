"""Near-duplicate groups on Ray Data: connected components of the near-duplicate graph by min-label
propagation, then, inside each component, survivors picked in rank order.

Components: every node starts labelled with its own id; each round, a node takes the smallest label among its
own and its neighbours' (one Ray Data join of the arcs with the labels and one hash aggregate), until no label
changes. Rounds: the largest component's diameter. Memory: the arcs and labels live in Ray Data blocks; the
driver holds one count a round. Scales with the number of edges, not the run.

Survivors: the members of a component, best rank first (`rank`: earlier commits, then the largest image, then the
smallest id); a member is rejected when it is within the threshold (an edge) of a survivor picked before it,
naming the best-ranked such survivor, and becomes a survivor otherwise. Samples earlier commits exported always
survive (they are in the dataset already), so a new sample near any of them is rejected. A chain a~b~c whose
ends are far apart keeps both ends. One component is decided in one task (its edges: a dense cluster of
thousands fits).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dataengine.core.shuffle import by_key, join

NODE = pa.schema([("id", pa.string()), ("area", pa.int64()), ("prior", pa.bool_())])
EDGE = pa.schema(
    [
        ("a", pa.string()),
        ("b", pa.string()),
        ("dist", pa.int64()),
        ("a_area", pa.int64()),
        ("b_area", pa.int64()),
        ("a_prior", pa.bool_()),
        ("b_prior", pa.bool_()),
    ]
)
NEAR_DUP = pa.schema([("id", pa.string()), ("dup_of", pa.string()), ("dist", pa.int64())])


def rank(area: int, sid: str, prior: bool = False) -> tuple[bool, int, str]:
    """Survivor order: samples committed by earlier runs of an incremental dataset first (they are exported
    already), then the largest image, then the smallest id."""
    return (not prior, -area, sid)


def _s(col: Any) -> pa.Array:
    """One string array (joins and shuffles may hand back chunked or large_string columns)."""
    return col.combine_chunks().cast(pa.string())


def _arcs(batch: pa.Table) -> pa.Table:
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
    arcs = edges.select_columns(["a", "b"]).map_batches(_arcs, batch_format="pyarrow", **res).materialize()
    first = arcs.map_batches(_first_offers, batch_format="pyarrow", **res)
    labels = by_key(first, ["id"], _lowest, num_partitions, **res).materialize()
    for _ in range(max_rounds):
        own = labels.select_columns(["id", "label"])
        offered = join(arcs, own, "src", "inner", num_partitions, right_on="id", **res)
        offers = offered.map_batches(_offers, batch_format="pyarrow", **res)
        nxt = by_key(offers, ["id"], _lowest, num_partitions, **res).materialize()
        changed = nxt.filter(expr="changed").count()
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


def near_duplicates(edges: Any, num_partitions: int, local_edges: int = 0, **res: Any) -> Any:
    """Near-duplicate edges (`EDGE`, a materialized Ray Dataset) -> a Ray Dataset of (id, dup_of, dist): every
    member of a component within the threshold of a better-ranked survivor, naming the best-ranked one. Up to
    `local_edges` edges, the components are found in one task (union-find: memory bounded by that cap); above
    it, by label propagation."""
    if edges.count() <= local_edges:
        return edges.repartition(1).map_batches(_local, batch_size=None, batch_format="pyarrow", **res)
    labels = component_labels(edges, num_partitions, **res)
    labelled = join(edges, labels, "a", "inner", num_partitions, right_on="id", **res)
    return by_key(labelled, ["label"], survivors, num_partitions, **res)


def _local(edges: pa.Table) -> pa.Table:
    """All the edges in one block -> labelled by union-find -> `survivors`."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(edges.column("a").to_pylist(), edges.column("b").to_pylist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    labels = pa.array([find(a) for a in edges.column("a").to_pylist()], pa.string())
    return survivors(edges.append_column("label", labels))


def survivors(block: pa.Table) -> pa.Table:
    """Labelled edges of whole components -> (id, dup_of, dist) for each member rejected in its component."""
    out: dict[str, list[Any]] = {"id": [], "dup_of": [], "dist": []}
    if len(block) == 0:
        return pa.Table.from_pydict(out, schema=NEAR_DUP)
    block = block.sort_by("label")
    labels = block.column("label").to_pylist()
    cols = {c: block.column(c).to_pylist() for c in EDGE.names}
    start = 0
    for end in range(1, len(labels) + 1):
        if end < len(labels) and labels[end] == labels[start]:
            continue
        _pick(cols, start, end, out)
        start = end
    return pa.Table.from_pydict(out, schema=NEAR_DUP)


def _pick(cols: dict[str, list[Any]], start: int, end: int, out: dict[str, list[Any]]) -> None:
    """One component's edges (rows start..end) -> its rejected members appended to `out`."""
    info: dict[str, tuple[bool, int, str]] = {}
    near: dict[str, dict[str, int]] = {}
    for k in range(start, end):
        a, b, d = cols["a"][k], cols["b"][k], cols["dist"][k]
        info[a] = rank(cols["a_area"][k], a, cols["a_prior"][k])
        info[b] = rank(cols["b_area"][k], b, cols["b_prior"][k])
        near.setdefault(a, {})[b] = d
        near.setdefault(b, {})[a] = d
    kept: set[str] = set()
    for sid in sorted(info, key=info.__getitem__):
        committed = not info[sid][0]  # exported by an earlier commit: it stays, whatever is near it
        within = [s for s in near[sid] if s in kept]
        if committed or not within:
            kept.add(sid)
            continue
        best = min(within, key=info.__getitem__)
        out["id"].append(sid)
        out["dup_of"].append(best)
        out["dist"].append(near[sid][best])
