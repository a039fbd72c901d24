"""Incremental datasets: a folder that many runs of one pipeline append to, with a commit ledger.

Layout of a dataset folder D:
  D/runs/<run_id>/...          one run's output (samples/, rejects/, tiles/, manifest.json), as in a plain run
  D/_ledger/<seq>-<run>.json   one commit per completed run: its config hash, input shards and files
  D/_ledger/HEAD.json          every committed file and shard, rebuilt from the commits (a convenience for readers)

A run reads the ledger, skips input shards already committed with the same config, processes the rest into
D/runs/<run_id>/ and commits by creating its ledger file (create-if-absent, so two runs racing for the same
sequence number cannot both commit). A run killed at any point leaves no commit: the next run deletes its folder
and processes its shards again. A run with work to do claims its folder (D/runs/<run_id>/_owner.json: host, pid,
start), so a run started beside it on the same dataset does not delete a live run's folder as debris. Readers
use HEAD.json or `files()`, never a glob of D/runs/ (it may hold debris).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from typing import Any

import pyarrow.fs as pafs

from dataengine.pipeline import PipelineSpec
from dataengine.storage import (
    delete_dir,
    exists,
    is_remote,
    join,
    list_files,
    read_bytes,
    resolve,
    write_bytes_atomic,
)

LEDGER = "_ledger"
HEAD = "HEAD.json"
RUNS = "runs"
OWNER = "_owner.json"  # in D/runs/<run_id>/: which live process writes there
DEBRIS_GRACE_S = 24 * 3600  # a folder claimed on another host is debris only after this long
# fields of a spec that do not change what a run writes for an input
_NOT_CONFIG = ("description", "input", "output", "ray", "schedule")


class LedgerConflict(RuntimeError):
    """Another run committed to the same dataset while this one ran; nothing of this run was committed."""


def config_hash(spec: PipelineSpec) -> str:
    """A hash of what decides a sample's fate (stages and their settings, input format); 16 hex chars."""
    cfg = spec.model_dump(mode="json")
    for key in _NOT_CONFIG:
        cfg.pop(key, None)
    cfg["input_format"] = spec.input.format
    return hashlib.blake2b(json.dumps(cfg, sort_keys=True).encode(), digest_size=8).hexdigest()


def shard_key(task: dict[str, Any]) -> str:
    """Identity of one read task: its source and file relative to the input root, with size and mtime, so an
    edited or replaced file is a new shard (the rule rsync uses)."""
    ident = {k: task.get(k) for k in ("kind", "relpath", "source", "location", "reason")}
    uri = task.get("uri")
    if uri:
        fs, path = resolve(uri)
        info = fs.get_file_info(path)
        ident["size"] = info.size
        ident["mtime_ns"] = info.mtime_ns
    return hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=12).hexdigest()


def commits(dataset: str) -> list[dict[str, Any]]:
    """Every commit of the dataset, oldest first."""
    out = []
    for f in list_files(join(dataset, LEDGER), (".json",), recursive=False):
        if f.rsplit("/", 1)[-1] != HEAD:
            out.append(json.loads(read_bytes(f)))
    return sorted(out, key=lambda c: c["seq"])


def committed_shards(history: list[dict[str, Any]], cfg_hash: str) -> set[str]:
    return {key for c in history if c["config_hash"] == cfg_hash for key in c["shards"]}


def check_config(dataset: str, history: list[dict[str, Any]], cfg_hash: str) -> None:
    """One dataset, one config: mixing samples made under different settings would be silently inconsistent."""
    other = {c["config_hash"] for c in history} - {cfg_hash}
    if other:
        raise ValueError(
            f"{dataset} holds commits made with another pipeline config ({', '.join(sorted(other))}, this one is "
            f"{cfg_hash}); use a new output, or --set output.overwrite=true to rebuild it from scratch"
        )


def clear(dataset: str) -> None:
    """Forget a dataset (overwrite): the ledger first, so a kill half-way leaves debris, never a false commit."""
    delete_dir(join(dataset, LEDGER))
    delete_dir(join(dataset, RUNS))


def claim(dataset: str, run_id: str) -> None:
    """Mark D/runs/<run_id>/ as a live run's (host, pid, start), so that a run starting beside it on the same
    dataset does not take its folder for debris."""
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    write_bytes_atomic(join(dataset, RUNS, run_id, OWNER), json.dumps(owner).encode())


def _alive(owner: dict[str, Any]) -> bool:
    """Whether the run that claimed a folder may still be running: its process, on this host (not this very
    process: runs are synchronous, so an earlier run of ours has ended); elsewhere, for DEBRIS_GRACE_S."""
    if owner.get("host") == socket.gethostname():
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's live process
            return True
        return True
    started = owner.get("started")
    return isinstance(started, (int, float)) and time.time() - started < DEBRIS_GRACE_S


def remove_debris(dataset: str, history: list[dict[str, Any]], keep: str) -> list[str]:
    """Delete run folders no commit names (runs killed before committing), except `keep` (this run) and those of
    runs that may still be running (`claim`)."""
    fs, path = resolve(join(dataset, RUNS))
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    committed = {c["run_id"] for c in history} | {keep}
    removed = []
    for info in infos:
        if info.type != pafs.FileType.Directory or info.base_name in committed:
            continue
        try:
            owner = json.loads(read_bytes(join(dataset, RUNS, info.base_name, OWNER)))
        except (OSError, ValueError):
            owner = None  # no claim (or a torn one): an older or killed run's folder
        if isinstance(owner, dict) and _alive(owner):
            continue
        fs.delete_dir(info.path)
        removed.append(info.base_name)
    return removed


def _create_exclusive(uri: str, data: bytes) -> bool:
    """Create `uri` only if absent; False if it exists. Local: temp file + link(2), atomic. Remote stores: check
    then write (object stores lack a portable create-if-absent; one scheduler per dataset keeps this safe)."""
    if is_remote(uri):
        if exists(uri):
            return False
        write_bytes_atomic(uri, data)
        return True
    tmp = f"{uri}.{os.getpid()}.tmp"
    os.makedirs(os.path.dirname(uri), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, uri)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def commit(dataset: str, record: dict[str, Any], shards: list[str], cfg_hash: str, seen: int) -> dict[str, Any]:
    """Commit a finished run: its ledger file is the commit point. `seen` is how many commits the run saw when it
    planned; a commit made since that claimed any of our shards means a concurrent run, and we back off."""
    history = commits(dataset)
    claimed = {key for c in history[seen:] for key in c["shards"]} & set(shards)
    if claimed:
        raise LedgerConflict(f"{len(claimed)} input shards were committed by another run of {dataset} meanwhile")
    entry = {
        "seq": (history[-1]["seq"] + 1) if history else 1,
        "run_id": record["run_id"],
        "config_hash": cfg_hash,
        "committed_at": record.get("finished_at"),
        "shards": sorted(shards),
        "files": record["files"],
        "tile_index": record.get("tile_index"),
        "counts": record["accounting"],
    }
    name = f"{entry['seq']:06d}-{record['run_id']}.json"
    data = json.dumps(entry, indent=2).encode()
    if not _create_exclusive(join(dataset, LEDGER, name), data):
        raise LedgerConflict(f"commit {entry['seq']} of {dataset} was taken by another run")
    write_head(dataset)
    return entry


def write_head(dataset: str) -> dict[str, Any]:
    """HEAD.json: the union of all commits (files by table, shards, runs), derived, so it can always be rebuilt."""
    history = commits(dataset)
    head = {
        "dataset": dataset,
        "commits": len(history),
        "config_hash": history[-1]["config_hash"] if history else None,
        "runs": [c["run_id"] for c in history],
        "shards": sum(len(c["shards"]) for c in history),
        "files": {t: [f for c in history for f in c["files"].get(t, [])] for t in ("samples", "rejects")},
        "tile_index": [c["tile_index"] for c in history if c.get("tile_index")],
    }
    write_bytes_atomic(join(dataset, LEDGER, HEAD), json.dumps(head, indent=2).encode())
    return head


def files(dataset: str, table: str = "samples") -> list[str]:
    """The committed Parquet files of one table, oldest commit first: what a reader of the dataset should scan."""
    return [f for c in commits(dataset) for f in c["files"].get(table, [])]
