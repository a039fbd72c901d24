"""Gallery cards for the report: a spread of accepted and rejected samples with thumbnails and EN/ZH text."""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

import polars as pl

from dataengine.core.storage import is_remote, join
from dataengine.core.text import script_counts
from dataengine.report import thumbs
from dataengine.report.data import SCORE_COLUMNS, scan, stage_setting

MAX_CHARS = 600
SAMPLE_COLUMNS = ["id", "source", "location", "image", "image_path", "image_root", "width", "height", "caption",
                  "conversations", "caption_zh", "conversations_zh", "language", "translation_status", "grid_cols",
                  "grid_rows", "num_tiles", *SCORE_COLUMNS]  # fmt: skip
REJECT_COLUMNS = ["id", "source", "location", "stage", "reason", "detail", "record", "image", *SCORE_COLUMNS]


def spread(lf: pl.LazyFrame, by: str, n: int) -> list[str]:
    """Up to n ids taken round-robin across the values of `by` (each ordered by id): every kind shows up."""
    ranked = lf.select("id", by).with_columns(rank=pl.col("id").rank("ordinal").over(by))
    return ranked.sort("rank", by, "id", nulls_last=True).head(n).collect()["id"].to_list()


def pick(files: list[str], wanted: list[str], by: str, n: int) -> list[dict[str, Any]]:
    """The chosen rows in full; image bytes are read for those rows only."""
    lf = scan(files, wanted)
    if lf is None or n <= 0:
        return []
    ids = spread(lf, by, n)
    rows = lf.filter(pl.col("id").is_in(ids)).collect().rows_by_key("id", named=True, unique=True, include_key=True)
    return [rows[i] for i in ids]


def clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_CHARS else text[:MAX_CHARS] + "…"


def turns(conv: list[dict[str, Any]] | None) -> list[dict[str, str]] | None:
    """Conversation turns as {who, text} (clipped), or None."""
    if not conv:
        return None
    return [{"who": str(t.get("from", "")), "text": clip(str(t.get("value", ""))) or ""} for t in conv[:6]]


def is_chinese(text: str) -> bool:
    counts = script_counts(text)
    letters = sum(counts.values())
    return bool(letters) and counts["han"] / letters >= 0.3


def sample_card(row: dict[str, Any], thumb: str | None) -> dict[str, Any]:
    zh_source = row.get("language") == "zh"
    en = None if zh_source else {"caption": clip(row.get("caption")), "turns": turns(row.get("conversations"))}
    zh = (
        {"caption": clip(row.get("caption")), "turns": turns(row.get("conversations"))}
        if zh_source
        else {"caption": clip(row.get("caption_zh")), "turns": turns(row.get("conversations_zh"))}
    )
    grid = f"{row['grid_cols']}×{row['grid_rows']}" if row.get("grid_cols") else None
    return {
        **_common(row, thumb),
        "size": f"{row.get('width')}×{row.get('height')}",
        "language": row.get("language"),
        "grid": grid,
        "translation": row.get("translation_status"),
        "en": en if en and (en["caption"] or en["turns"]) else None,
        "zh": zh if zh["caption"] or zh["turns"] else None,
    }


def reject_card(row: dict[str, Any], thumb: str | None) -> dict[str, Any]:
    """A reject with the text of its original record, put in the EN or ZH column by its script."""
    rec, raw = parse_record(row.get("record"))
    en, zh = None, None
    text = rec.get("caption") if isinstance(rec.get("caption"), str) else None
    conv = rec.get("conversations") if isinstance(rec.get("conversations"), list) else None
    conv = [t for t in conv if isinstance(t, dict)] if conv else None
    if text or conv:
        body = {"caption": clip(text), "turns": turns(conv)}
        probe = text or " ".join(str(t.get("value", "")) for t in conv or [])
        zh, en = (body, None) if is_chinese(probe) else (None, body)
    if isinstance(rec.get("caption_zh"), str):
        zh = {"caption": clip(rec["caption_zh"]), "turns": None}
    return {
        **_common(row, thumb),
        "stage": row["stage"],
        "reason": row["reason"],
        "detail": clip(row.get("detail")),
        "raw": clip(raw) if not (en or zh) else None,
        "en": en,
        "zh": zh,
    }


def _common(row: dict[str, Any], thumb: str | None) -> dict[str, Any]:
    score_fields = {c: row[c] for c in SCORE_COLUMNS if row.get(c) is not None}
    return {
        "id": row["id"],
        "source": row.get("source"),
        "location": row.get("location"),
        "thumb": thumb,
        "scores": score_fields,
    }


def parse_record(text: str | None) -> tuple[dict[str, Any], str | None]:
    """(the original record as a dict when it is a JSON object, else {}; the raw text)."""
    if not text:
        return {}, None
    try:
        obj = json.loads(text)
    except ValueError:
        return {}, text
    return (obj, text) if isinstance(obj, dict) else ({}, text)


class SourceImages:
    """Reads path-based images from the run's input, confined to it; rejects find their root via their source."""

    def __init__(self, record: dict[str, Any], roots: dict[str, str]) -> None:
        self.input = record.get("input")
        try:
            self.root = thumbs.input_dir(self.input) if self.input else None
        except OSError:  # the input is gone or unreachable from here: no thumbnails from paths
            self.root = None
        self.roots = roots
        self.max_bytes = stage_setting(record, "resolve", "max_bytes") or thumbs.MAX_BYTES

    def read(self, image_root: str | None, image_path: str | None) -> bytes | None:
        if not (self.root and image_root and image_path):
            return None
        return thumbs.read_source(self.root, image_root, image_path, self.max_bytes)

    def reject_image(self, row: dict[str, Any], rec: dict[str, Any]) -> tuple[str, str] | None:
        """(image root, image path) named by a path-based reject's original record, or None."""
        path = rec.get("image")
        if not isinstance(path, str) or not self.root:
            return None
        root = self.roots.get(row.get("source") or "")
        if root is None:  # plain JSONL: paths are relative to the annotation file's folder
            rel = (row.get("location") or "").rsplit(":", 1)[0]
            root = join(self.root, (posixpath if is_remote(self.root) else os.path).dirname(rel))
        return root, path

    def for_reject(self, row: dict[str, Any], rec: dict[str, Any]) -> bytes | None:
        where = self.reject_image(row, rec)
        return self.read(*where) if where else None


def image_roots(files: list[str]) -> dict[str, str]:
    """source -> image root, as the accepted samples recorded it."""
    lf = scan(files, ["source", "image_root"])
    if lf is None or "image_root" not in lf.collect_schema():
        return {}
    df = lf.drop_nulls().unique("source").collect()
    return dict(zip(df["source"], df["image_root"], strict=True))


def cards(record: dict[str, Any], n: int) -> dict[str, list[dict[str, Any]]]:
    """n accepted and n rejected cards: accepted spread over sources, rejects over reasons."""
    files = record.get("files") or {}
    sources = SourceImages(record, image_roots(files.get("samples", [])))
    max_pixels = stage_setting(record, "image", "max_pixels") or thumbs.MAX_PIXELS

    def thumb(data: bytes | None) -> str | None:
        return thumbs.data_uri(data, max_pixels=max_pixels)

    accepted = [
        sample_card(r, thumb(r.get("image") or sources.read(r.get("image_root"), r.get("image_path"))))
        for r in pick(files.get("samples", []), SAMPLE_COLUMNS, "source", n)
    ]
    rejected = [
        reject_card(r, thumb(r.get("image") or sources.for_reject(r, parse_record(r.get("record"))[0])))
        for r in pick(files.get("rejects", []), REJECT_COLUMNS, "reason", n)
    ]
    return {"accepted": accepted, "rejected": rejected}
