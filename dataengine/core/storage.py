"""Filesystem access for every read and write: local paths and remote URIs (s3://, gs://, ...) alike.

All I/O goes through pyarrow.fs (with fsspec as a fallback for schemes pyarrow lacks), so the same code
serves the embedded `storage/` root and object stores.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# the dataengine package: holds pipelines/ and schemas/ too, in a wheel as in a checkout
PACKAGE_DIR = Path(__file__).resolve().parent.parent


# a run's folder: its samples and rejects Parquet, its tile shards, its scratch space (per run token)
SAMPLES_DIR, REJECTS_DIR, TILES_DIR, WORK_DIR = "samples", "rejects", "tiles", "_work"


def default_root() -> str:
    """The data root: `$DATAENGINE_STORAGE`, else `storage/` in the working directory (in a checkout, the embedded
    `storage/` when run from its root). Never inside the installed package."""
    return os.environ.get("DATAENGINE_STORAGE") or os.path.abspath("storage")


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


@dataclass(frozen=True)
class Location:
    """A filesystem plus a path on it; cheap to pickle into Ray tasks (the filesystem is rebuilt from uri)."""

    uri: str

    @property
    def fs(self) -> pafs.FileSystem:
        return resolve(self.uri)[0]

    @property
    def path(self) -> str:
        return resolve(self.uri)[1]

    def join(self, *parts: str) -> Location:
        return Location(join(self.uri, *parts))


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path or URI."""
    if not is_remote(uri):
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec  # schemes pyarrow lacks (e.g. memory://, http://)

        fs, path = fsspec.core.url_to_fs(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join(uri: str, *parts: str) -> str:
    if is_remote(uri):
        return posixpath.join(uri.rstrip("/"), *parts)
    return os.path.join(uri, *parts)


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as f:
        return f.read()


def atomic_write(uri: str, write: Callable[[pa.NativeFile], None]) -> None:
    """Write to a hidden temp name beside the target, then rename: readers never see a partial file."""
    fs, path = resolve(uri)
    parent, name = posixpath.split(path) if is_remote(uri) else os.path.split(path)
    fs.create_dir(parent, recursive=True)
    tmp = (posixpath.join if is_remote(uri) else os.path.join)(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with fs.open_output_stream(tmp) as f:
            write(f)
        fs.move(tmp, path)
    except BaseException:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)
        raise


def write_bytes_atomic(uri: str, data: bytes) -> None:
    atomic_write(uri, lambda f: f.write(data))


def read_parquet(uri: str) -> pa.Table:
    """A whole Parquet file, local or remote."""
    fs, path = resolve(uri)
    return pq.read_table(path, filesystem=fs)


def write_parquet_atomic(uri: str, table: pa.Table, compression: str = "zstd", dictionary: bool = True) -> None:
    """Write a Parquet file via temp + rename. For already-compressed payloads (JPEG tiles) pass
    compression="none", dictionary=False: both would only burn CPU hashing and compressing them."""
    atomic_write(uri, lambda f: pq.write_table(table, f, compression=compression, use_dictionary=dictionary))


def list_files(
    uri: str, suffixes: tuple[str, ...] = (), recursive: bool = True, *, skip_underscore: bool = True
) -> list[str]:
    """Sorted file URIs under a directory. Hidden (`.`-prefixed) files and folders (atomic_write's temp files,
    `.ipynb_checkpoints/`) and `.tmp` files are always skipped. `_`-prefixed files (our outputs' private files:
    `_ledger`, `_index-*.parquet`) are skipped too unless `skip_underscore=False`, as input discovery passes:
    there a `_` name is data (Roboflow's `_annotations.train.jsonl`)."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    skipped = (".", "_") if skip_underscore else (".",)
    out = []
    for info in infos:
        base = info.base_name
        if info.type != pafs.FileType.File or base.startswith(skipped) or base.endswith(".tmp"):
            continue
        if any(part.startswith(".") for part in posixpath.relpath(info.path, path).split("/")[:-1]):
            continue
        if suffixes and not base.lower().endswith(suffixes):
            continue
        out.append(_to_uri(uri, path, info.path))
    return sorted(out)


def list_dirs(uri: str) -> list[str]:
    """Sorted URIs of the folders directly under `uri` (none if it does not exist)."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(_to_uri(uri, path, i.path) for i in infos if i.type == pafs.FileType.Directory)


def _to_uri(base_uri: str, base_path: str, path: str) -> str:
    if not is_remote(base_uri):
        return path
    return join(base_uri, posixpath.relpath(path, base_path))


def delete_dir(uri: str) -> None:
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        fs.delete_dir(path)


def delete_dir_if_empty(uri: str) -> None:
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.Directory and not fs.get_file_info(pafs.FileSelector(path)):
        fs.delete_dir(path)


def delete_file(uri: str) -> None:
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)
