"""The top-fraction cut-off by histogram passes equals numpy's quantile over every surviving sample's score."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dataengine.ops.filter import FilterConfig, order_keys, top_cutoff, top_value


def test_order_keys_keep_float_order():
    v = np.array([-np.inf, -3.5, -1e-300, -0.0, 0.0, 1e-300, 0.25, 0.2500000001, 7.0, np.inf])
    k = order_keys(v)
    assert np.all(k[1:] >= k[:-1]) and np.all(np.diff(k[[0, 1, 2, 5, 6, 7, 8, 9]]) > 0)


def test_cutoff_matches_numpy_quantile(ray_local):
    rng = np.random.default_rng(3)
    n = 5000
    en = rng.random(n)
    en[:400] = 0.5  # ties at the cut
    zh = np.where(rng.random(n) < 0.2, np.nan, rng.random(n))
    reason = np.where(rng.random(n) < 0.1, "low_match_en", None)
    rows = [
        {"reason": r, "match_en": None if i % 97 == 0 else float(e), "match_zh": None if np.isnan(z) else float(z)}
        for i, (r, e, z) in enumerate(zip(reason, en, zh, strict=True))
    ]
    table = pa.Table.from_pylist(rows)
    ds = ray_local.data.from_arrow([table.slice(k, 700) for k in range(0, n, 700)])
    cases = [("match_en", 0.01), ("match_zh", 0.3), ("match_min", 0.5), ("match_mean", 0.92), ("match_en", 1.0)]
    for by, fraction in cases:
        cfg = FilterConfig(keep_top_fraction=fraction, top_by=by)
        values = [v for r in rows if r["reason"] is None and (v := top_value(r, by)) is not None]
        expected = float(np.quantile(np.asarray(values), 1 - fraction, method="higher"))
        assert top_cutoff(ds, cfg) == expected, (by, fraction)
    empty = ray_local.data.from_arrow(table.slice(0, 0))
    assert top_cutoff(empty, FilterConfig(keep_top_fraction=0.5)) is None
