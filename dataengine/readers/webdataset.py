"""WebDataset tar shards: members grouped by key (`key.jpg|png|webp` + `key.txt|json`), streamed, never extracted."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from typing import Any

from dataengine.core.rows import reject
from dataengine.core.storage import resolve
from dataengine.readers.annotations import STAGE, base_row, fill_text, load_json, original_key

IMAGE_EXTS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"}
TEXT_EXTS = {"txt", "json"}


def _split(name: str) -> tuple[str, str]:
    """WebDataset convention: the key is the path up to the first dot of the base name."""
    head, base = posixpath.split(name)
    stem, _, ext = base.partition(".")
    return posixpath.join(head, stem), ext.lower()


def read_webdataset(task: dict[str, Any], max_member_bytes: int) -> Iterator[dict[str, Any]]:
    fs, path = resolve(task["uri"])
    relpath, source = task["relpath"], task["source"]
    seen: dict[str, int] = {}
    key, members, last = None, {}, "start"
    try:
        with fs.open_input_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for info in tar:
                # a name that is not UTF-8 arrives with surrogate escapes, which no id or Parquet string can hold
                name = info.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                if info.isdir():  # a directory entry holds no record
                    continue
                k, ext = _split(name)
                if key is not None and (k != key or ext in members):  # a repeated member starts a new record
                    yield _group(key, members, relpath, source, seen)
                    members = {}
                key, last = k, name
                if not info.isfile():
                    members[ext] = ("error", f"member {name} is not a regular file")
                elif info.size > max_member_bytes:
                    members[ext] = ("error", f"member {name} is {info.size} bytes > {max_member_bytes}")
                else:
                    f = tar.extractfile(info)
                    members[ext] = ("ok", f.read() if f else b"")
            if key is not None:
                yield _group(key, members, relpath, source, seen)
    except Exception as exc:
        # tarfile and its decompressors raise TarError, OSError, EOFError, zlib.error, LZMAError, even TypeError
        # (a gzip header cut short): whatever the cause, what is left of the shard is this one reject
        location = f"{relpath}:after:{last}"
        row = base_row(source, location, None)
        yield reject(row, STAGE, "unreadable_shard", f"{type(exc).__name__}: {exc}"[:300])


def _group(key: str, members: dict, relpath: str, source: str, seen: dict[str, int]) -> dict[str, Any]:
    n = seen.get(key, 0)
    seen[key] = n + 1
    location = f"{relpath}:{key}" + (f"#{n}" if n else "")
    text_ext = next((e for e in ("json", "txt") if e in members), None)
    record = None
    if text_ext and members[text_ext][0] == "ok":
        record = members[text_ext][1].decode("utf-8", "backslashreplace")
    row = base_row(source, location, record)
    errors = [v[1] for v in members.values() if v[0] == "error"]
    if errors:
        return reject(row, STAGE, "invalid_member", "; ".join(errors))
    image_ext = next((e for e in members if e in IMAGE_EXTS), None)
    if image_ext is not None:
        row["image"], row["image_inline"] = members[image_ext][1], True
    if text_ext is None:
        return reject(row, STAGE, "missing_text", f"no .txt or .json for key {key}")
    if image_ext is None:
        return reject(row, STAGE, "missing_image", f"no image member for key {key}")
    data = members[text_ext][1]
    try:
        text = data.decode("utf-8-sig")  # a leading BOM (Windows editors write one) is not text
    except UnicodeDecodeError as exc:
        return reject(row, STAGE, "invalid_utf8", str(exc))
    if text_ext == "txt":
        return fill_text(row, {"caption": text})
    try:
        obj = load_json(text)
    except ValueError as exc:
        return reject(row, STAGE, "invalid_json", str(exc)[:200])
    if not isinstance(obj, dict):
        return reject(row, STAGE, "invalid_record", "json member is not an object")
    okey = original_key(obj)
    if okey is not None:
        row["source_key"] = okey
    return fill_text(row, obj)
