"""InternVL/LLaVA-style JSONL annotations: one JSON object a line with `image` and `caption`|`conversations`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dataengine.core.rows import reject
from dataengine.core.storage import resolve
from dataengine.readers.annotations import STAGE, base_row, parse_annotation

CHUNK = 1 << 20
BOM = b"\xef\xbb\xbf"


def iter_lines(uri: str, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, bytes) for every non-blank line, less a leading UTF-8 BOM; bytes is None for a line
    over the size limit."""
    fs, path = resolve(uri)
    lineno, buf, overflow = 0, bytearray(), False
    with fs.open_input_stream(path) as f:
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                piece = chunk[start:] if nl < 0 else chunk[start:nl]
                if not overflow:
                    buf += piece
                    overflow = len(buf) > max_line_bytes
                    if overflow:
                        buf.clear()
                if nl < 0:
                    break
                lineno += 1
                yield from _emit(lineno, buf, overflow)
                buf, overflow, start = bytearray(), False, nl + 1
    if buf or overflow:
        yield from _emit(lineno + 1, buf, overflow)


def _emit(lineno: int, buf: bytearray, overflow: bool) -> Iterator[tuple[int, bytes | None]]:
    if overflow:
        yield lineno, None
        return
    line = bytes(buf).removeprefix(BOM)  # Windows editors start a file (or each concatenated part) with one
    if line.strip():
        yield lineno, line.rstrip(b"\r")


def read_jsonl(task: dict[str, Any], max_line_bytes: int) -> Iterator[dict[str, Any]]:
    """Rows for one annotation file; task has uri, relpath (for locations), source and root (image root). With
    `reason` and `detail` set, every line is rejected with them. A file that cannot be read is one
    `unreadable_file` reject for the lines not yet read."""
    lineno = 0
    try:
        for lineno, line in iter_lines(task["uri"], max_line_bytes):
            yield _line_row(task, lineno, line, max_line_bytes)
    except OSError as exc:
        location = f"{task['relpath']}:" + (f"after:{lineno}" if lineno else "*")
        yield reject(
            base_row(task["source"], location, None), STAGE, "unreadable_file", f"{type(exc).__name__}: {exc}"[:300]
        )


def _line_row(task: dict[str, Any], lineno: int, line: bytes | None, max_line_bytes: int) -> dict[str, Any]:
    location = f"{task['relpath']}:{lineno}"
    if task.get("reason"):
        record = None if line is None else line.decode("utf-8", "backslashreplace")
        return reject(base_row(task["source"], location, record), STAGE, task["reason"], task["detail"])
    if line is None:
        row = base_row(task["source"], location, None)
        return reject(row, STAGE, "record_too_large", f"line longer than {max_line_bytes} bytes")
    return parse_annotation(line, source=task["source"], location=location, root=task["root"])
