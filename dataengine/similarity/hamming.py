"""Every pair of 64-bit hashes within a Hamming threshold, with exact recall and near-linear cost
(multi-index hashing).

A hash is cut into `m` bands; two hashes within `t` bits differ by at most `r = t // m` bits in some band
(pigeonhole). Each band is cut again into `r + 1` parts; two bands within `r` bits agree exactly on some part. So
every pair within `t` meets in some *group* (band j, part p, the part's value), and inside a group only the
members whose band is within `r` bits are looked up (the other bits of the band, sorted, searched for every
value within `r` bit flips), never all pairs of the group. A pair is emitted only from the first group it meets
in, so it is emitted once, and only when its full distance is within `t`.

Cost per hash: `m * (r + 1)` group rows (the shuffle), `m * (r + 1) * V` lookups and about
`m * (r + 1) * V * n / 2**(64 / m)` candidate checks, with V the number of values within `r` flips of the free
bits. `choose_bands` picks `m` from n: many narrow bands while n is small, fewer wider ones as n grows, so the
candidates per hash stay bounded and the cost stays near-linear in n.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

BITS = 64
# rough cost of one group row through a shuffle, one lookup and one candidate check, in the same unit
_ROW, _LOOKUP, _CHECK = 2000.0, 100.0, 20.0


@dataclass(frozen=True)
class Bands:
    """How hashes are cut: `bands[j] = (shift, width)`; `parts[j][p] = (shift, width)` inside the 64 bits."""

    threshold: int
    r: int
    bands: tuple[tuple[int, int], ...]
    parts: tuple[tuple[tuple[int, int], ...], ...]

    @property
    def groups_per_hash(self) -> int:
        return len(self.bands) * (self.r + 1)


def _cut(shift: int, width: int, n: int) -> list[tuple[int, int]]:
    """`width` bits starting at bit `shift + width - 1` (most significant first) cut into n near-equal pieces."""
    sizes = [width // n + (1 if i < width % n else 0) for i in range(n)]
    out, top = [], shift + width
    for s in sizes:
        top -= s
        out.append((top, s))
    return out


def bands_for(threshold: int, m: int) -> Bands:
    r = threshold // m
    bands = tuple(_cut(0, BITS, m))
    parts = tuple(tuple(_cut(s, w, r + 1)) for s, w in bands)
    return Bands(threshold, r, bands, parts)


def estimated_cost(n: int, threshold: int, m: int) -> float:
    """Relative cost per hash of cutting into `m` bands, for n hashes spread uniformly."""
    r, width = threshold // m, BITS / m
    free = width - width / (r + 1)
    lookups = sum(comb(round(free), k) for k in range(r + 1))
    rows = m * (r + 1)
    return rows * _ROW + rows * lookups * _LOOKUP + rows * lookups * n / 2**width * _CHECK


def choose_bands(n: int, threshold: int) -> Bands:
    """The cut with the lowest estimated cost for n hashes (m from 1 to threshold + 1)."""
    m = min(range(1, threshold + 2), key=lambda k: estimated_cost(max(n, 1), threshold, k))
    return bands_for(threshold, m)


def _field(h: np.ndarray, shift: int, width: int) -> np.ndarray:
    mask = np.uint64((1 << width) - 1) if width < BITS else np.uint64(0xFFFFFFFFFFFFFFFF)
    return (h >> np.uint64(shift)) & mask


def group_keys(h: np.ndarray, cut: Bands, bands: range | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item index, group number, part value) for every group each hash falls in (`r + 1` rows a hash per band,
    for every band or those in `bands`). The group number is `band * (r + 1) + part`; the value is the part's
    bits (as int64)."""
    idx, grp, val = [], [], []
    n = len(h)
    for j in bands if bands is not None else range(len(cut.parts)):
        parts = cut.parts[j]
        for p, (shift, width) in enumerate(parts):
            idx.append(np.arange(n, dtype=np.int64))
            grp.append(np.full(n, j * (cut.r + 1) + p, dtype=np.int16))
            val.append(_field(h, shift, width).view(np.int64))
    return np.concatenate(idx), np.concatenate(grp), np.concatenate(val)


def _flip_masks(positions: list[int], r: int) -> np.ndarray:
    masks = [0]
    for k in range(1, r + 1):
        masks.extend(sum(1 << b for b in c) for c in combinations(positions, k))
    return np.array(masks, dtype=np.uint64)


def pairs_in_group(h: np.ndarray, group: int, cut: Bands) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members of one group (their full hashes) -> (i, j, distance) with i < j for every pair within the
    threshold that meets first in this group (all of `iter_pairs_in_group`'s chunks at once)."""
    chunks = list(iter_pairs_in_group(h, group, cut))
    if not chunks:
        empty = np.array([], dtype=np.int64)
        return empty, empty, empty
    return tuple(np.concatenate(c) for c in zip(*chunks, strict=True))  # type: ignore[return-value]


def iter_pairs_in_group(
    h: np.ndarray, group: int, cut: Bands, max_pairs: int = 1 << 20
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Members of one group (their full hashes) -> chunks of (i, j, distance), i < j, for every pair within the
    threshold that meets first in this group. Work: one sort and (values within r flips) lookups a member; memory:
    about `max_pairs` candidate pairs at a time, so a dense group (thousands of hashes within the threshold of
    each other, millions of pairs) streams instead of filling memory."""
    if len(h) < 2:
        return
    j, p = divmod(group, cut.r + 1)
    band_shift, band_width = cut.bands[j]
    part_shift, part_width = cut.parts[j][p]
    free_bits = [
        b for b in range(band_shift, band_shift + band_width) if not part_shift <= b < part_shift + part_width
    ]
    free_mask = np.uint64(sum(1 << b for b in free_bits))
    x = h & free_mask  # the band's bits outside the shared part
    order = np.argsort(x, kind="stable")
    values, first, sizes = np.unique(x[order], return_index=True, return_counts=True)
    masks = _flip_masks(free_bits, cut.r)
    # a pair whose free bits differ by mask M is looked up only from the member holding M's highest bit (the
    # larger value), so each pair is met once; pairs with equal free bits (M = 0) are met from both sides
    tops = np.array([1 << (int(m).bit_length() - 1) if m else 0 for m in masks], dtype=np.uint64)
    active = (x[:, None] & tops[None, :]) != 0
    active[:, 0] = True
    src_probe, k = np.nonzero(active)
    probes = x[src_probe] ^ masks[k]
    at = np.minimum(np.searchsorted(values, probes), len(values) - 1)  # one search over the distinct values
    counts = np.where(values[at] == probes, sizes[at], 0)
    hits = np.flatnonzero(counts)
    if len(hits) == 0:
        return
    src_probe, k, at, counts = src_probe[hits], k[hits], at[hits], counts[hits]
    # cut the probes into runs of about max_pairs candidates (a probe's matches are never split)
    cum = np.cumsum(counts)
    cuts = np.unique(np.searchsorted(cum, np.arange(max_pairs, int(cum[-1]), max_pairs), side="right"))
    for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(counts)], strict=True):
        if hi > lo:
            out = _pairs_of(h, src_probe[lo:hi], k[lo:hi], first[at[lo:hi]], counts[lo:hi], order, cut, j, p)
            if len(out[0]):
                yield out


def _pairs_of(
    h: np.ndarray,
    src_probe: np.ndarray,
    k: np.ndarray,
    start: np.ndarray,
    counts: np.ndarray,
    order: np.ndarray,
    cut: Bands,
    j: int,
    p: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matched probes (source member, flip mask index, first match in sorted order, matches) -> the pairs within
    the threshold that meet first in group (band j, part p)."""
    total = int(counts.sum())
    src = np.repeat(src_probe, counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    dst = order[np.repeat(start, counts) + offsets]
    keep = (np.repeat(k, counts) != 0) | (src < dst)
    src, dst = src[keep], dst[keep]
    xor = h[src] ^ h[dst]
    dist = np.bitwise_count(xor).astype(np.int64)
    keep = dist <= cut.threshold
    src, dst, xor, dist = src[keep], dst[keep], xor[keep], dist[keep]
    keep = np.ones(len(src), dtype=bool)
    for earlier in range(j):  # met already in an earlier band?
        s, w = cut.bands[earlier]
        keep &= np.bitwise_count(_field(xor, s, w)) > cut.r
    for q in range(p):  # or in an earlier part of this band?
        s, w = cut.parts[j][q]
        keep &= _field(xor, s, w) != 0
    a, b = src[keep], dst[keep]
    return np.minimum(a, b), np.maximum(a, b), dist[keep]


def brute_force_pairs(h: np.ndarray, threshold: int) -> set[tuple[int, int]]:
    """All pairs (i < j) within the threshold by comparing every pair: the reference for tests and benchmarks."""
    out = set()
    for i in range(len(h) - 1):
        d = np.bitwise_count(h[i] ^ h[i + 1 :])
        out.update((i, i + 1 + int(k)) for k in np.nonzero(d <= threshold)[0])
    return out


def all_pairs(h: np.ndarray, threshold: int, cut: Bands | None = None) -> set[tuple[int, int]]:
    """Every pair within the threshold, in one process (groups formed with numpy): the algorithm without Ray,
    for tests and for checking the distributed version."""
    cut = cut or choose_bands(len(h), threshold)
    idx, grp, val = group_keys(h, cut)
    order = np.lexsort((val, grp))
    idx, grp, val = idx[order], grp[order], val[order]
    bounds = np.flatnonzero((np.diff(grp) != 0) | (np.diff(val) != 0)) + 1
    out: set[tuple[int, int]] = set()
    for members, g in zip(np.split(idx, bounds), np.split(grp, bounds), strict=True):
        a, b, _ = pairs_in_group(h[members], int(g[0]), cut)
        out.update(zip(members[a].tolist(), members[b].tolist(), strict=True))
    return {(min(a, b), max(a, b)) for a, b in out}
