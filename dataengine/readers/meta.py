"""InternVL meta JSON (`{name: {root, annotation, ...}}`): expanded on the driver into per-annotation read tasks."""

from __future__ import annotations

import os
import posixpath
from typing import Any

from dataengine.core.storage import exists, is_remote, read_bytes
from dataengine.readers.annotations import load_json


def _under(base_dir: str, path: str) -> str:
    if is_remote(path) or os.path.isabs(path):
        return path
    return (posixpath.join if is_remote(base_dir) else os.path.join)(base_dir, path)


def meta_tasks(meta_uri: str, input_root: str) -> list[dict[str, Any]]:
    """One `jsonl` task per meta entry, or an `error` task (a reject row) for a broken meta file or entry. An
    entry with an annotation file but an unusable root gets a `jsonl` task with `reason` set: every line of
    the file is rejected with that reason, so none of its records vanish."""
    base_dir = posixpath.dirname(meta_uri) if is_remote(meta_uri) else os.path.dirname(meta_uri)
    relmeta = _rel(meta_uri, input_root)
    try:
        meta = _load_meta(meta_uri)
    except (ValueError, OSError) as exc:
        return [_error(relmeta, f"{relmeta}:*", "invalid_meta", f"{type(exc).__name__}: {exc}")]
    if not isinstance(meta, dict):
        return [_error(relmeta, f"{relmeta}:*", "invalid_meta", "meta JSON must be an object of datasets")]
    tasks = []
    for name, entry in meta.items():
        where = f"{relmeta}:{name}"
        if not isinstance(entry, dict) or not isinstance(entry.get("annotation"), str):
            tasks.append(_error(name, where, "invalid_meta", "entry needs an 'annotation' path"))
            continue
        ann = _under(base_dir, entry["annotation"])
        try:
            found = exists(ann)
        except (OSError, ValueError) as exc:  # a name with a NUL, or too long: no file system takes it
            tasks.append(_error(name, where, "invalid_meta", f"unusable annotation path: {type(exc).__name__}: {exc}"))
            continue
        if not found:
            tasks.append(
                _error(name, where, "missing_annotation", f"annotation file not found: {entry['annotation']}")
            )
            continue
        task = {"kind": "jsonl", "uri": ann, "relpath": _rel(ann, input_root), "source": name, "root": None}
        if entry.get("root") is not None and not isinstance(entry["root"], str):
            # the entry claims the file (directory discovery skips it), so every line of it is rejected
            task["reason"] = "invalid_meta"
            task["detail"] = f"{where}: 'root' is {type(entry['root']).__name__}, not a path"
        else:
            task["root"] = _under(base_dir, entry.get("root") or posixpath.dirname(entry["annotation"]))
        tasks.append(task)
    return tasks


def _load_meta(meta_uri: str) -> Any:
    """The parsed meta JSON; a UTF-8 BOM (as Windows editors write) is accepted."""
    return load_json(read_bytes(meta_uri).decode("utf-8-sig"))


def referenced_annotations(meta_uri: str) -> set[str]:
    """Annotation files a meta JSON points at (so directory discovery does not read them twice)."""
    try:
        meta = _load_meta(meta_uri)
    except (ValueError, OSError):
        return set()
    if not isinstance(meta, dict):
        return set()
    base_dir = posixpath.dirname(meta_uri) if is_remote(meta_uri) else os.path.dirname(meta_uri)
    out = set()
    for entry in meta.values():
        if isinstance(entry, dict) and isinstance(entry.get("annotation"), str):
            ann = _under(base_dir, entry["annotation"])
            out.add(ann if is_remote(ann) else os.path.abspath(ann))
    return out


def _rel(uri: str, root: str) -> str:
    if is_remote(uri):
        return posixpath.relpath(uri, root) if uri.startswith(root) else uri
    rel = os.path.relpath(uri, root)
    return uri if rel.startswith("..") else rel


def _error(source: str, location: str, reason: str, detail: str) -> dict[str, Any]:
    return {"kind": "error", "source": source, "location": location, "reason": reason, "detail": detail[:300]}
