"""Input readers: discover read tasks on the driver (one per input file or meta entry; `split_tasks` then cuts
large files into pieces), then expand each task into rows inside Ray tasks."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from dataengine.core.rows import reject, to_table
from dataengine.core.storage import is_remote, list_files, resolve
from dataengine.readers.annotations import STAGE, base_row
from dataengine.readers.jsonl import read_jsonl
from dataengine.readers.meta import _rel, meta_tasks, referenced_annotations
from dataengine.readers.parquet import read_parquet
from dataengine.readers.split import split_tasks
from dataengine.readers.webdataset import read_webdataset

__all__ = ["FORMATS", "ReadTasks", "plan_tasks", "read_task", "split_tasks"]

FORMATS = {".jsonl": "jsonl", ".json": "meta", ".parquet": "parquet", ".tar": "webdataset"}


def _format_of(uri: str) -> str | None:
    lower = uri.lower()
    return next((fmt for ext, fmt in FORMATS.items() if lower.endswith(ext)), None)


def plan_tasks(input_uri: str, fmt: str = "auto") -> list[dict[str, Any]]:
    """Read tasks for an input file or directory. A directory's inputs are its files of a known extension,
    `_`-prefixed ones included; hidden (`.`-prefixed) files are not inputs. JSONL files named by a meta JSON
    are read through that meta only (with its root and name), never twice, and an annotation file named by
    one dataset name in several metas is read once."""
    fs, path = resolve(input_uri)
    info = fs.get_file_info(path)
    if info.type == pa.fs.FileType.NotFound:
        raise FileNotFoundError(f"input not found: {input_uri}")
    is_dir = info.type == pa.fs.FileType.Directory
    root = (
        input_uri if is_dir else (os.path.dirname(path) if not is_remote(input_uri) else input_uri.rsplit("/", 1)[0])
    )
    if not is_remote(root):
        root = os.path.abspath(root)
    files = (
        list_files(input_uri, tuple(FORMATS), skip_underscore=False)
        if is_dir
        else [path if not is_remote(input_uri) else input_uri]
    )
    kinds = {f: (_format_of(f) if fmt == "auto" else fmt) for f in files}
    metas = [f for f, k in kinds.items() if k == "meta"]
    claimed = set().union(*(referenced_annotations(m) for m in metas)) if metas else set()
    tasks: list[dict[str, Any]] = []
    planned: dict[tuple[str, str], int] = {}
    for f, kind in kinds.items():
        if kind == "meta":
            for task in meta_tasks(f, root):
                _add_once(tasks, planned, task)
        elif kind in ("jsonl", "parquet", "webdataset"):
            norm = f if is_remote(f) else os.path.abspath(f)
            if kind == "jsonl" and norm in claimed:
                continue
            rel = _rel(f, root)
            folder = f.rsplit("/", 1)[0] if is_remote(f) else os.path.dirname(norm)
            tasks.append({"kind": kind, "uri": f, "relpath": rel, "source": rel, "root": folder})
        elif kind is not None:
            raise ValueError(f"unknown input format {fmt!r}; use auto, jsonl, meta, parquet or webdataset")
    if not tasks:
        raise FileNotFoundError(f"no .jsonl, .json (meta), .parquet or .tar inputs under {input_uri}")
    return tasks


def _add_once(tasks: list[dict[str, Any]], planned: dict[tuple[str, str], int], task: dict[str, Any]) -> None:
    """Append a meta's task unless its (source, annotation file) is planned already, as two metas naming one
    file under one dataset name would read the same records under the same ids twice. A task that reads the
    file replaces one that rejects its lines (an invalid entry); otherwise the first meta, in name order, wins."""
    if task["kind"] != "jsonl":
        tasks.append(task)
        return
    uri = task["uri"]
    key = (task["source"], uri if is_remote(uri) else os.path.abspath(uri))
    at = planned.get(key)
    if at is None:
        planned[key] = len(tasks)
        tasks.append(task)
    elif tasks[at].get("reason") and not task.get("reason"):
        tasks[at] = task


def read_task(task: dict[str, Any], *, max_record_bytes: int) -> Iterator[dict[str, Any]]:
    kind = task["kind"]
    if kind == "jsonl":
        yield from read_jsonl(task, max_record_bytes)
    elif kind == "parquet":
        yield from read_parquet(task, max_record_bytes)
    elif kind == "webdataset":
        yield from read_webdataset(task, max_record_bytes)
    else:
        yield reject(base_row(task["source"], task["location"], None), STAGE, task["reason"], task["detail"])


class ReadTasks:
    """Ray Data UDF: a batch of read tasks -> working-row tables of at most `rows_per_block` rows."""

    def __init__(self, max_record_bytes: int, rows_per_block: int = 256):
        self.max_record_bytes = max_record_bytes
        self.rows_per_block = rows_per_block

    def __call__(self, batch: pa.Table) -> Iterator[pa.Table]:
        rows: list[dict[str, Any]] = []
        for task in map(json.loads, batch.column("task").to_pylist()):
            for row in read_task(task, max_record_bytes=self.max_record_bytes):
                rows.append(row)
                if len(rows) >= self.rows_per_block:
                    yield to_table(rows)
                    rows = []
        if rows:
            yield to_table(rows)
