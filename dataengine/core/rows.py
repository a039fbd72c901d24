"""The working row that flows through every stage, and how a stage marks a row rejected.

Rows are never dropped mid-pipeline: a rejected row keeps flowing with `stage`/`reason`/`detail` set and
later stages pass it through, so export can account for every input record.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

CONVERSATION = pa.list_(pa.struct([pa.field("from", pa.string()), pa.field("value", pa.string())]))

WORK_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("source_key", pa.string()),
        ("location", pa.string()),
        ("record", pa.string()),  # original record text, kept for rejects
        ("image_root", pa.string()),  # dataset root URI for path-based images
        ("image_path", pa.string()),  # image path as written in the record
        ("image", pa.binary()),  # original inline bytes (Parquet/WebDataset) or bytes read by `resolve`
        ("image_inline", pa.bool_()),
        ("image_out", pa.binary()),  # normalised bytes written to samples (re-encoded, or the source kept)
        ("image_format", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("pixel_hash", pa.string()),
        ("phash", pa.string()),
        ("caption", pa.string()),
        ("conversations", CONVERSATION),
        ("language", pa.string()),
        ("language_score", pa.float32()),
        ("text_key", pa.string()),
        ("caption_zh", pa.string()),  # set by the translate stage
        ("conversations_zh", CONVERSATION),
        ("translation_model", pa.string()),
        ("translation_engine", pa.string()),
        ("translation_prompt", pa.string()),
        ("translation_attempts", pa.int32()),
        ("translation_status", pa.string()),
        ("translation_cache_hits", pa.int32()),
        ("grid_cols", pa.int32()),  # set by the tile stage
        ("grid_rows", pa.int32()),
        ("num_tiles", pa.int32()),
        ("tile_shard", pa.string()),
        ("match_en", pa.float32()),  # set by the score stage
        ("match_zh", pa.float32()),
        ("loglik_en", pa.float32()),
        ("loglik_zh", pa.float32()),
        ("translation_drift", pa.float32()),
        ("scorer_model", pa.string()),
        ("quality_en", pa.float32()),  # set by the quality stage
        ("quality_zh", pa.float32()),
        ("translation_qe", pa.float32()),
        ("translation_chrf", pa.float32()),
        ("quality_model", pa.string()),
        ("quality_rubric", pa.string()),
        ("stage", pa.string()),  # set when rejected
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("duplicate_of", pa.string()),
    ]
)
COLUMNS = WORK_SCHEMA.names


class Reject(Exception):
    """Raised by an op to reject the current row with a machine-readable reason."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def new_row(**values: Any) -> dict[str, Any]:
    """A working row with every column present (unset ones None)."""
    row = dict.fromkeys(COLUMNS)
    row["image_inline"] = False
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown columns {sorted(unknown)}")
    row.update(values)
    return row


def reject(row: dict[str, Any], stage: str, reason: str, detail: str = "") -> dict[str, Any]:
    """Mark a row rejected and drop bytes the rejects table will not keep (it keeps inline originals only)."""
    row["stage"], row["reason"], row["detail"] = stage, reason, (detail or None)
    row["image_out"] = None
    if not row.get("image_inline"):
        row["image"] = None
    return row


def is_rejected(row: dict[str, Any]) -> bool:
    return row.get("reason") is not None


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=WORK_SCHEMA)


_IMAGE_TAG = re.compile(r"<image>\s*")


def _answers(turns: list[dict[str, str]] | None) -> str | None:
    """The answer (gpt) turns of a conversation, joined: what the scorer checks against the image."""
    if not turns:
        return None
    text = " ".join(_IMAGE_TAG.sub("", t["value"]).strip() for t in turns if t["from"] == "gpt")
    return text or None


def texts_of(row: dict[str, Any]) -> dict[str, str | None]:
    """The English and Chinese text of a sample: the caption, or a conversation's answer turns."""
    own = row.get("caption") or _answers(row.get("conversations"))
    zh = row.get("caption_zh") or _answers(row.get("conversations_zh"))
    lang = row.get("language")
    if lang == "zh":
        return {"en": None, "zh": own}
    if lang in ("en", None):  # no language stage: the source text is taken as English
        return {"en": own, "zh": zh}
    return {"en": None, "zh": zh}
