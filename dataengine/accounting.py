"""The accounting invariant: inputs = accepted + rejected, every input id in exactly one of the two.

Checked with polars over the written Parquet files (streaming scans, id column only).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from dataengine.core.storage import list_files


class AccountingError(RuntimeError):
    """A run's outputs do not account for its inputs; the message says by how much and where the run's files are."""

    def __init__(self, check: dict[str, Any], run_id: str | None = None, output: str | None = None):
        where = f" in run {run_id}" if run_id else ""
        files = f"; its files are in {output}, nothing committed (`dataengine inspect {run_id}`)" if output else ""
        super().__init__(
            f"accounting invariant violated{where}: {check.get('inputs')} inputs, {check.get('accepted')} accepted + "
            f"{check.get('rejected')} rejected, {check.get('missing')} missing, {check.get('ids_in_both_or_twice')} "
            f"in both tables or twice, {check.get('duplicate_input_ids')} duplicate input ids{files}"
        )
        self.check = check


def _ids(files: list[str]) -> pl.LazyFrame:
    if not files:
        return pl.LazyFrame({"id": []}, schema={"id": pl.String})
    return pl.scan_parquet(files).select("id")


def ids(files: list[str]) -> set[str]:
    """The sample ids in some Parquet files."""
    return set(_ids(files).collect()["id"].to_list())


def empty() -> dict[str, Any]:
    """The verdict of a run that had nothing to read (an incremental run with no new shards)."""
    keys = ("inputs", "accepted", "rejected", "duplicate_input_ids", "ids_in_both_or_twice", "missing", "unexpected")
    return {"ok": True, **dict.fromkeys(keys, 0)}


def check(input_ids_dir: str, samples: list[str], rejects: list[str]) -> dict[str, Any]:
    inputs = _ids(list_files(input_ids_dir, (".parquet",)))
    outputs = pl.concat([_ids(samples), _ids(rejects)])
    n_in, n_samples, n_rejects = (
        lf.select(pl.len()).collect().item() for lf in (inputs, _ids(samples), _ids(rejects))
    )
    dup_out = outputs.group_by("id").len().filter(pl.col("len") > 1).select(pl.len()).collect().item()
    dup_in = inputs.group_by("id").len().filter(pl.col("len") > 1).select(pl.len()).collect().item()
    missing = inputs.join(outputs, on="id", how="anti").select(pl.len()).collect().item()
    extra = outputs.join(inputs, on="id", how="anti").select(pl.len()).collect().item()
    ok = n_in == n_samples + n_rejects and dup_out == 0 and dup_in == 0 and missing == 0 and extra == 0
    return {
        "ok": ok,
        "inputs": n_in,
        "accepted": n_samples,
        "rejected": n_rejects,
        "duplicate_input_ids": dup_in,
        "ids_in_both_or_twice": dup_out,
        "missing": missing,
        "unexpected": extra,
    }
