"""Parquet with image bytes and caption/conversation columns (img2dataset and HF `datasets` layouts)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq

from dataengine.core.rows import reject
from dataengine.core.storage import resolve
from dataengine.readers.annotations import STAGE, base_row, fill_text, original_key

IMAGE_COLUMNS = ("image", "image_bytes", "jpg", "png", "webp", "img")


def _image_bytes(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict):  # HF datasets Image feature: {bytes, path}
        return _image_bytes(value.get("bytes"))
    return None


def _record_json(row: dict[str, Any], image_col: str | None) -> str:
    kept = {k: v for k, v in row.items() if k != image_col and not isinstance(v, (bytes, bytearray))}
    return json.dumps(kept, ensure_ascii=False, default=str)


def read_parquet(
    task: dict[str, Any], max_record_bytes: int | None = None, batch_rows: int = 256
) -> Iterator[dict[str, Any]]:
    """Rows of one Parquet file; rows that cannot be read are rejected one by one with their row index, and
    images over `max_record_bytes` (the cap a JSONL line or a tar member has) as record_too_large. A split read's
    task (`readers.split`) has `row_groups`, `first_row` (the file's row index of its first row) and `rows`: it
    reads those row groups only, and rejects only its own rows when they cannot be read."""
    fs, path = resolve(task["uri"])
    relpath, source = task["relpath"], task["source"]
    groups = task.get("row_groups")
    done = task.get("first_row", 0)
    end = None if groups is None else done + task["rows"]  # the file's row index past the last row read
    try:
        pf = pq.ParquetFile(fs.open_input_file(path))
        if end is None:
            end = pf.metadata.num_rows
        elif sum(pf.metadata.row_group(g).num_rows for g in groups) != task["rows"]:
            raise ValueError("the file's row groups changed since its read was split")
        names = pf.schema_arrow.names
        image_col = next((c for c in IMAGE_COLUMNS if c in names), None)
        for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups):
            for obj in batch.to_pylist():
                yield _row(obj, image_col, source, f"{relpath}:{done}", max_record_bytes)
                done += 1
    except Exception as exc:  # corrupt file or page: account for every row we could not read
        detail = f"{type(exc).__name__}: {exc}"[:300]
        if end is None:
            yield reject(base_row(source, f"{relpath}:*", None), STAGE, "unreadable_file", detail)
        for idx in range(done, end or 0):
            yield reject(base_row(source, f"{relpath}:{idx}", None), STAGE, "unreadable_row", detail)


def _row(
    obj: dict[str, Any], image_col: str | None, source: str, location: str, max_bytes: int | None = None
) -> dict[str, Any]:
    row = base_row(source, location, _record_json(obj, image_col))
    key = original_key(obj)
    if key is not None:
        row["source_key"] = key
    data = _image_bytes(obj.get(image_col)) if image_col else None
    if data is None:
        return reject(row, STAGE, "missing_image", f"no image bytes in column {image_col or IMAGE_COLUMNS}")
    if max_bytes is not None and len(data) > max_bytes:
        return reject(row, STAGE, "record_too_large", f"image is {len(data)} bytes > {max_bytes}")
    row["image"], row["image_inline"] = data, True
    return fill_text(row, obj)
