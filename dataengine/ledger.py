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

from dataengine.core.storage import (
    delete_file,
    exists,
    is_remote,
    join,
    list_files,
    read_bytes,
    resolve,
    write_bytes_atomic,
    write_parquet_atomic,
)
from dataengine.pipeline import PipelineSpec

LEDGER = "_ledger"
HEAD = "HEAD.json"
RUNS = "runs"
RETAINED = "retained"  # in D/runs/<run_id>/: earlier commits' files rewritten without superseded shards' rows
TABLES = ("samples", "rejects", "tile_index")
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


def _ident(task: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {k: task.get(k) for k in ("kind", "relpath", "source", "location", *fields)}


def shard_id(task: dict[str, Any]) -> str:
    """Which input shard a read task is (its kind, source and file relative to the input root), whatever the file
    holds today or whether its meta entry is valid; 24 hex chars."""
    return hashlib.blake2b(json.dumps(_ident(task), sort_keys=True).encode(), digest_size=12).hexdigest()


def shard_key(task: dict[str, Any]) -> str:
    """Which version of an input shard: its identity and the reason its records are rejected wholesale (a meta
    entry with a bad root), with the file's size and mtime, so an edited, replaced or fixed shard is a new
    version (the rule rsync uses)."""
    ident = _ident(task, "reason")
    uri = task.get("uri")
    if uri:
        fs, path = resolve(uri)
        info = fs.get_file_info(path)
        ident["size"] = info.size
        ident["mtime_ns"] = info.mtime_ns
    return hashlib.blake2b(json.dumps(ident, sort_keys=True).encode(), digest_size=12).hexdigest()


def _all_commits(dataset: str) -> list[dict[str, Any]]:
    out = []
    for f in list_files(join(dataset, LEDGER), (".json",), recursive=False):
        if f.rsplit("/", 1)[-1] != HEAD:
            out.append(json.loads(read_bytes(f)))
    return sorted(out, key=lambda c: c["seq"])


def _since_reset(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    resets = [i for i, c in enumerate(history) if c.get("reset")]
    return history[resets[-1] :] if resets else history


def commits(dataset: str) -> list[dict[str, Any]]:
    """The dataset's commits, oldest first, from its latest rebuild (an `overwrite` run's commit) on: commits
    before a rebuild are no longer part of it."""
    return _since_reset(_all_commits(dataset))


def shards_of(commit_entry: dict[str, Any]) -> dict[str, str]:
    """{shard id: version key} a commit processed (commits written before shard ids existed list keys only: each
    key stands for itself, and such a shard is never superseded)."""
    shards = commit_entry["shards"]
    return dict(shards) if isinstance(shards, dict) else {k: k for k in shards}


def current_versions(history: list[dict[str, Any]]) -> dict[str, str]:
    """{shard id: version key} of every shard in the dataset as its latest commit of it has it."""
    return {sid: key for c in history for sid, key in shards_of(c).items()}


def _legacy_keys(history: list[dict[str, Any]]) -> set[str]:
    """Version keys of commits written before shard ids (their "shards" is a list): skipped while unchanged."""
    return {key for c in history if isinstance(c["shards"], list) for key in c["shards"]}


def live(history: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The files that make up the dataset, by table (samples, rejects, tile_index), oldest commit first: what the
    commits added, less what later commits removed (files rewritten without a superseded shard's rows)."""
    removed = {f for c in history for files in c.get("removes", {}).values() for f in files}
    out: dict[str, list[str]] = {t: [] for t in TABLES}
    for c in history:
        added = {t: list(c["files"].get(t, [])) for t in ("samples", "rejects")}
        added["tile_index"] = ([c["tile_index"]] if c.get("tile_index") else []) + c.get("retained_tile_index", [])
        for t in TABLES:
            out[t] += [f for f in added[t] if f not in removed]
    return out


def check_config(dataset: str, history: list[dict[str, Any]], cfg_hash: str) -> None:
    """One dataset, one config: mixing samples made under different settings would be silently inconsistent."""
    other = {c["config_hash"] for c in history} - {cfg_hash}
    if other:
        raise ValueError(
            f"{dataset} holds commits made with another pipeline config ({', '.join(sorted(other))}, this one is "
            f"{cfg_hash}); use a new output, or --set output.overwrite=true to rebuild it from scratch"
        )


def claim_folder(folder: str) -> None:
    """Mark `folder` as a live run's (host, pid, start) in its `_owner.json`."""
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    write_bytes_atomic(join(folder, OWNER), json.dumps(owner).encode())


def live_owner(folder: str) -> dict[str, Any] | None:
    """The claim on `folder` if the run that made it may still be running (`_alive`); None otherwise."""
    try:
        owner = json.loads(read_bytes(join(folder, OWNER)))
    except (OSError, ValueError):
        return None  # no claim (or a torn one): an older or killed run's folder
    return owner if isinstance(owner, dict) and _alive(owner) else None


def claim(dataset: str, run_id: str) -> None:
    """Mark D/runs/<run_id>/ as a live run's, so that a run starting beside it on the same dataset does not take
    its folder for debris."""
    claim_folder(join(dataset, RUNS, run_id))


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
        if live_owner(join(dataset, RUNS, info.base_name)):
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


def plan(dataset: str, spec: PipelineSpec, tasks: list[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """Which read tasks this run processes and what its commit will say.

    Unchanged shards committed with this config are skipped. A shard whose file changed since its commit (edited,
    appended to) is processed again and supersedes its earlier rows: the earlier commits' files that hold them are
    rewritten without them into D/runs/<run_id>/retained/ (a scan of the dataset's `source`/`location` columns,
    streamed one file at a time), and the commit swaps those files for the rewritten ones, so every id is in HEAD
    once. A shard absent from this run's inputs keeps its rows (nightly runs read only the new day's files). With
    `output.overwrite` every shard is processed and the commit replaces the whole dataset (`reset`); the dataset
    stays readable as it was until that commit lands. Cost: the ledger (one small file a commit) on the driver;
    superseding scans the live files' `source`/`location` columns one file at a time."""
    reset = spec.output.overwrite
    history = commits(dataset)
    cfg_hash = config_hash(spec)
    if not reset:
        check_config(dataset, history, cfg_hash)
    debris = remove_debris(dataset, history, keep=run_id)
    _forget_before_reset(dataset)
    if history:
        write_head(dataset)  # a run killed between its commit and HEAD left HEAD behind
    base = [] if reset else history
    versions, legacy = current_versions(base), _legacy_keys(base)
    todo = [(shard_id(t), shard_key(t), t) for t in tasks]
    todo = [(sid, key, t) for sid, key, t in todo if versions.get(sid) != key and key not in legacy]
    superseded = [t for sid, _, t in todo if sid in versions]
    output = join(dataset, RUNS, run_id)
    if todo:  # this run will write D/runs/<run_id>/: claimed, so that a run beside it leaves it alone
        claim(dataset, run_id)
    rewrite = _supersede(live(base), superseded, output, run_id) if superseded else {"removes": {}, "retained": {}}
    head = live(base)
    gone = {f for fs in rewrite["removes"].values() for f in fs}
    prior = [f for f in head["samples"] if f not in gone] + rewrite["retained"].get("samples", [])
    return {
        "output": output,
        "tasks": [t for _, _, t in todo],
        "prior": prior,  # the committed samples this run's dedup checks against
        "commit": {
            "dataset": dataset,
            "config_hash": cfg_hash,
            "seen_seq": history[-1]["seq"] if history else 0,
            "reset": reset,
            "shards": {sid: key for sid, key, _ in todo},
            "superseded": sorted(shard_id(t) for t in superseded),
            **rewrite,
        },
        "summary": {
            "dataset": dataset,
            "config_hash": cfg_hash,
            "seen_commits": len(history),
            "rebuild": reset,
            "shards_total": len(tasks),
            "shards_skipped": len(tasks) - len(todo),
            "shards_superseded": len(superseded),
            "debris_removed": debris,
        },
    }


def _supersede(
    head: dict[str, list[str]], superseded: list[dict[str, Any]], output: str, run_id: str
) -> dict[str, dict[str, list[str]]]:
    """Rewrite the committed files that hold rows of `superseded` shards without those rows: samples and rejects
    (matched by source and `location` prefix) into output/retained/, a tile index (matched by the removed samples'
    ids) beside its own shards, since its `shard` column names files in its folder. Returns the files removed and
    their replacements, by table. Memory: one file at a time, plus the ids of the superseded samples."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from dataengine.core.ids import run_token

    token = run_token(run_id)
    removes: dict[str, list[str]] = {t: [] for t in TABLES}
    retained: dict[str, list[str]] = {t: [] for t in TABLES}
    gone_ids: list[pa.Array] = []
    for table in TABLES:
        for file in head[table]:
            fs, path = resolve(file)
            keys = ["id"] if table == "tile_index" else ["source", "location"]
            with fs.open_input_file(path) as f:
                data = pq.read_table(f, columns=keys)
            if table == "tile_index":
                mine = pc.is_in(data.column("id"), value_set=pa.concat_arrays(gone_ids or [pa.array([], pa.string())]))
            else:
                mine = pa.repeat(pa.scalar(False), len(data))
                for t in superseded:
                    hit = pc.and_(
                        pc.equal(data.column("source"), t["source"]),
                        pc.starts_with(data.column("location"), f"{t['relpath']}:"),
                    )
                    mine = pc.or_(mine, hit)
            if not pc.any(mine).as_py():
                continue
            with fs.open_input_file(path) as f:
                data = pq.read_table(f)  # a file with superseded rows: read whole, once, to rewrite it
            removes[table].append(file)
            if table == "samples":
                gone_ids.append(data.column("id").filter(mine).combine_chunks())
            kept = data.filter(pc.invert(mine))
            if not len(kept):
                continue
            n = len(retained[table])
            if table == "tile_index":
                target = join(file.rsplit("/", 1)[0], f"_index-{token}-{n:05d}.parquet")
            else:
                target = join(output, RETAINED, table, f"part-{token}-{n:05d}.parquet")
            write_parquet_atomic(target, kept)
            retained[table].append(target)
    return {"removes": removes, "retained": retained}


def commit(dataset: str, record: dict[str, Any], pending: dict[str, Any]) -> dict[str, Any]:
    """Commit a finished run: its ledger file is the commit point. `pending` is `plan()`'s "commit". A commit made
    since the run planned that touched any of its shards (or rebuilt the dataset), or any commit at all when this
    run rebuilds it, means a concurrent run: we back off, committing nothing."""
    everything = _all_commits(dataset)
    newer = [c for c in everything if c["seq"] > pending["seen_seq"]]
    touched = {sid for c in newer for sid in shards_of(c)} & set(pending["shards"])
    rewrote = any(fs for fs in pending["removes"].values()) and any(c.get("removes") for c in newer)
    if touched or rewrote or any(c.get("reset") for c in newer) or (pending["reset"] and newer):
        # two runs that each rewrote committed files could both keep rows the other superseded
        raise LedgerConflict(f"another run committed to {dataset} meanwhile; nothing of this run was committed")
    retained = pending["retained"]
    entry = {
        "seq": (everything[-1]["seq"] + 1) if everything else 1,
        "run_id": record["run_id"],
        "config_hash": pending["config_hash"],
        "committed_at": record.get("finished_at"),
        "reset": pending["reset"],
        "shards": pending["shards"],
        "superseded": pending["superseded"],
        "files": {t: record["files"].get(t, []) + retained.get(t, []) for t in ("samples", "rejects")},
        "tile_index": record.get("tile_index"),
        "retained_tile_index": retained.get("tile_index", []),
        "removes": {t: fs for t, fs in pending["removes"].items() if fs},
        "counts": record["accounting"],
    }
    name = f"{entry['seq']:06d}-{record['run_id']}.json"
    data = json.dumps(entry, indent=2).encode()
    if not _create_exclusive(join(dataset, LEDGER, name), data):
        raise LedgerConflict(f"commit {entry['seq']} of {dataset} was taken by another run")
    write_head(dataset)
    if entry["reset"]:  # the rebuild is committed: only now does the old dataset go
        _forget_before_reset(dataset)
        remove_debris(dataset, commits(dataset), keep=record["run_id"])
    return entry


def _forget_before_reset(dataset: str) -> None:
    """Delete the ledger files of commits that a later rebuild replaced (ignored by `commits` already)."""
    everything = _all_commits(dataset)
    kept = {c["seq"] for c in _since_reset(everything)}
    for f in list_files(join(dataset, LEDGER), (".json",), recursive=False):
        base = f.rsplit("/", 1)[-1]
        if base != HEAD and base.split("-", 1)[0].isdigit() and int(base.split("-", 1)[0]) not in kept:
            delete_file(f)


def write_head(dataset: str) -> dict[str, Any]:
    """HEAD.json: the dataset's live files by table, shards and runs, derived from the commits, so it can always
    be rebuilt."""
    history = commits(dataset)
    head = live(history)
    out = {
        "dataset": dataset,
        "commits": len(history),
        "config_hash": history[-1]["config_hash"] if history else None,
        "runs": [c["run_id"] for c in history],
        "shards": len({sid for c in history for sid in shards_of(c)}),
        "files": {t: head[t] for t in ("samples", "rejects")},
        "tile_index": head["tile_index"],
    }
    write_bytes_atomic(join(dataset, LEDGER, HEAD), json.dumps(out, indent=2).encode())
    return out


def files(dataset: str, table: str = "samples") -> list[str]:
    """The dataset's live Parquet files of one table (samples, rejects or tile_index), oldest commit first: what a
    reader of the dataset should scan."""
    return live(commits(dataset))[table]
