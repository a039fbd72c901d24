"""Turning one raw annotation object into a working row (shared by the JSONL, meta and Parquet readers)."""

from __future__ import annotations

import json
import re
from typing import Any

from dataengine.core.ids import sample_id
from dataengine.core.rows import new_row, reject

STAGE = "ingest"


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_json(text: str) -> Any:
    """`json.loads` for untrusted text: too deep a nesting and lone surrogates (which no Parquet string can
    hold) raise ValueError, as any other malformed JSON does, instead of crashing the read."""
    try:
        obj = json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):  # a surrogate pair decodes to one character; a lone half cannot encode
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("JSON string holds a lone UTF-16 surrogate (\\ud800-\\udfff)") from None
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
    return obj


def base_row(source: str, location: str, record: str | None) -> dict[str, Any]:
    return new_row(
        id=sample_id(source, location), source=source, source_key=location, location=location, record=record
    )


def fill_text(row: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """Copy caption or conversations from an annotation object, rejecting malformed shapes."""
    caption, conversations = obj.get("caption"), obj.get("conversations")
    if caption is None and conversations is None:
        caption = obj.get("text", obj.get("txt"))
    if caption is not None and conversations is not None:
        return reject(row, STAGE, "ambiguous_text", "record has both caption and conversations")
    if conversations is not None:
        if isinstance(conversations, str):
            try:
                conversations = load_json(conversations)
            except ValueError:
                return reject(row, STAGE, "invalid_conversation", "conversations is a string but not JSON")
        turns = _turns(conversations)
        if turns is None:
            return reject(row, STAGE, "invalid_conversation", "conversations must be a list of {from, value} strings")
        row["conversations"] = turns
    elif caption is not None:
        if not isinstance(caption, str):
            return reject(row, STAGE, "invalid_caption", f"caption is {type(caption).__name__}, not a string")
        row["caption"] = caption
        zh = obj.get("caption_zh")
        if zh is not None and not isinstance(zh, str):
            return reject(row, STAGE, "invalid_caption", f"caption_zh is {type(zh).__name__}, not a string")
        row["caption_zh"] = zh or None  # a bilingual source's own Chinese caption (kept, not re-translated)
    else:
        return reject(row, STAGE, "missing_text", "no caption or conversations")
    return row


def _turns(value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list) or not value:
        return None
    turns = []
    for turn in value:
        if not isinstance(turn, dict):
            return None
        who, text = turn.get("from"), turn.get("value")
        if not isinstance(who, str) or not isinstance(text, str):
            return None
        turns.append({"from": who, "value": text})
    return turns


def original_key(obj: dict[str, Any]) -> str | None:
    key = obj.get("id")
    if isinstance(key, (str, int)) and not isinstance(key, bool):
        return str(key)
    return None


def parse_annotation(line: bytes, *, source: str, location: str, root: str) -> dict[str, Any]:
    """One JSONL line -> a row (or a rejected row with the reason the line is unusable)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        row = base_row(source, location, line.decode("utf-8", "backslashreplace"))
        return reject(row, STAGE, "invalid_utf8", str(exc))
    row = base_row(source, location, text)
    try:
        obj = load_json(text)
    except ValueError as exc:
        return reject(row, STAGE, "invalid_json", str(exc)[:200])
    if not isinstance(obj, dict):
        return reject(row, STAGE, "invalid_record", f"line is a JSON {type(obj).__name__}, not an object")
    key = original_key(obj)
    if key is not None:
        row["source_key"] = key
    image = obj.get("image")
    if isinstance(image, list):
        if len(image) != 1:
            return reject(row, STAGE, "multi_image_unsupported", f"{len(image)} images in one record")
        image = image[0]
    if not isinstance(image, str) or not image:
        return reject(row, STAGE, "missing_image", "record has no image path")
    row["image_root"], row["image_path"] = root, image
    return fill_text(row, obj)
