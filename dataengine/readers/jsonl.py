"""InternVL/LLaVA-style JSONL annotations: one JSON object a line with `image` and `caption`|`conversations`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dataengine.core.rows import reject
from dataengine.core.storage import resolve
from dataengine.readers.annotations import STAGE, base_row, parse_annotation

CHUNK = 1 << 20
BOM = b"\xef\xbb\xbf"


def iter_lines(
    uri: str, max_line_bytes: int, start: int = 0, end: int | None = None, first_line: int = 1
) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, bytes) for every non-blank line, less a leading UTF-8 BOM and a trailing CR; bytes is
    None for a line over the size limit. Reads the bytes [start, end) (`end` None: to the end of the file), which
    a split read (`readers.split`) aligns to line starts: `start` is 0 or just past a b"\n", `end` is just past one,
    and the line at `start` is line `first_line`. Streams CHUNK bytes at a time, holding one line at most."""
    fs, path = resolve(uri)
    lineno, buf, overflow = first_line - 1, bytearray(), False
    left = None if end is None else end - start
    with fs.open_input_stream(path) if start == 0 else fs.open_input_file(path) as f:
        if start:
            f.seek(start)
        while left is None or left > 0:
            chunk = f.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            at = 0
            while True:
                nl = chunk.find(b"\n", at)
                piece = chunk[at:] if nl < 0 else chunk[at:nl]
                if not overflow:
                    buf += piece
                    overflow = len(buf) > max_line_bytes
                    if overflow:
                        buf.clear()
                if nl < 0:
                    break
                lineno += 1
                yield from _emit(lineno, buf, overflow)
                buf, overflow, at = bytearray(), False, nl + 1
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
    `unreadable_file` reject for the lines not yet read. A split read's task (`readers.split`) also has `range`
    (line-aligned bytes [start, end or None]) and `first_line`: it reads those lines only, and its reject, if any,
    names the last line it read (`after:N`), or the line before its first, so every range's is a distinct row."""
    start, end = task.get("range") or (0, None)
    first = task.get("first_line", 1)
    lineno = first - 1  # the last line read: the reject of a failed read names it
    try:
        for lineno, line in iter_lines(task["uri"], max_line_bytes, start, end, first):
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
