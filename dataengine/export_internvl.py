"""Export a run as an InternVL fine-tuning set: meta JSON + annotation JSONL per language + images.

Captions become one-turn conversations (`<image>\\n` + a describe prompt in the caption's language, the
caption as the answer); conversations are kept as cleaned. Paths in the meta JSON are absolute for local
outputs, because InternVL resolves them from its own working directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
from typing import Any

import pyarrow.parquet as pq

from dataengine import manifest
from dataengine.core.storage import atomic_write, is_remote, join, read_bytes, resolve, write_bytes_atomic

PROMPTS = {
    "en": ["Describe this image.", "What does this image show?", "Write a short caption for this picture."],
    "zh": ["请描述这张图片。", "这张图片展示了什么？", "请为这张图片写一句简短的说明。"],
}
EXT = {"JPEG": "jpg", "PNG": "png"}


def to_conversations(sample: dict[str, Any], language: str) -> list[dict[str, str]]:
    """InternVL turns for a sample: its conversation, or its caption after a prompt picked stably by id."""
    if sample.get("conversations"):
        return [{"from": t["from"], "value": t["value"]} for t in sample["conversations"]]
    prompts = PROMPTS.get(language, PROMPTS["en"])
    prompt = prompts[int(hashlib.sha1(sample["id"].encode()).hexdigest(), 16) % len(prompts)]
    return [{"from": "human", "value": f"<image>\n{prompt}"}, {"from": "gpt", "value": sample["caption"]}]


def texts_by_language(sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{language: sample with that language's text}: the source language, plus Chinese when translated."""
    out = {sample.get("language") or "en": sample}
    if sample.get("caption_zh") or sample.get("conversations_zh"):
        out["zh"] = {**sample, "caption": sample.get("caption_zh"), "conversations": sample.get("conversations_zh")}
    return out


def image_name(sample: dict[str, Any]) -> str:
    """Where a sample's image goes under OUT: normalised bytes are named by their format; a referenced source
    file (`images: reference`) is copied as it is, so it keeps its own extension."""
    if sample.get("image") is not None:
        return f"images/{sample['id']}.{EXT.get(sample['image_format'], 'jpg')}"
    return f"images/{sample['id']}{posixpath.splitext(sample['image_path'])[1].lower() or '.jpg'}"


def _image_bytes(sample: dict[str, Any]) -> bytes:
    if sample.get("image") is not None:
        return sample["image"]
    return read_bytes(join(sample["image_root"], sample["image_path"]))


def export_internvl(run_id: str, out: str, storage: str | None = None) -> dict[str, Any]:
    """Write OUT/images/, OUT/<name>_<lang>.jsonl and OUT/meta.json for a completed run; returns the meta."""
    record = manifest.load(run_id, storage)
    if record.get("status") != "complete":
        raise ValueError(f"run {run_id} is {record.get('status')}: only complete runs can be exported")
    out = out if is_remote(out) else os.path.abspath(out)
    lines: dict[str, list[str]] = {}
    columns = [
        "id",
        "image",
        "image_format",
        "image_root",
        "image_path",
        "width",
        "height",
        "caption",
        "conversations",
        "language",
        "caption_zh",
        "conversations_zh",
    ]
    for path in record["files"]["samples"]:
        fs, p = resolve(path)
        with fs.open_input_file(p) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=64, columns=columns):
                for sample in batch.to_pylist():
                    rel = image_name(sample)
                    write_bytes_atomic(join(out, rel), _image_bytes(sample))
                    for lang, s in texts_by_language(sample).items():
                        rec = {
                            "id": f"{sample['id']}_{lang}" if lang != sample.get("language") else sample["id"],
                            "image": rel,
                            "width": sample["width"],
                            "height": sample["height"],
                            "conversations": to_conversations(s, lang),
                        }
                        lines.setdefault(lang, []).append(json.dumps(rec, ensure_ascii=False))
    max_patch = next((s.get("max_tiles") for s in record["config"]["stages"] if s["op"] == "tile"), None)
    meta = {}
    for lang, recs in sorted(lines.items()):
        name = f"{record['pipeline']}_{lang}"
        ann = join(out, f"{name}.jsonl")
        atomic_write(ann, lambda f, recs=recs: _write_lines(f, recs))
        meta[name] = {
            "root": out,
            "annotation": ann,
            "data_augment": False,
            "repeat_time": 1,
            "length": len(recs),
            **({"max_dynamic_patch": max_patch} if max_patch else {}),
        }
    write_bytes_atomic(join(out, "meta.json"), json.dumps(meta, indent=2, ensure_ascii=False).encode())
    return meta


def _write_lines(f: Any, recs: list[str]) -> None:
    buf = io.BytesIO()
    for line in recs:
        buf.write(line.encode() + b"\n")
    f.write(buf.getvalue())
