"""Resolve an annotation's image path inside its dataset root and read the bytes.

A path that escapes the root (`..`, absolute paths, symlinks pointing outside), is missing, is not a regular
file, is too large or is unreadable is rejected here and never opened.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any, Literal

import pyarrow.fs as pafs
from pydantic import Field

from dataengine.core.rows import Reject
from dataengine.core.storage import is_remote, resolve
from dataengine.ops.base import RowStage, StageConfig


class ResolveConfig(StageConfig):
    op: Literal["resolve"] = "resolve"
    max_bytes: int = Field(64 * 1024 * 1024, ge=1, description="largest image file accepted, in bytes")


class Resolve(RowStage):
    name = "resolve"
    Config = ResolveConfig

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["image_inline"]:
            if not row["image"]:
                raise Reject("empty_file", "inline image has 0 bytes")
            if len(row["image"]) > self.config.max_bytes:
                raise Reject("file_too_large", f"{len(row['image'])} bytes > {self.config.max_bytes}")
            return row
        fs, path = self._confined(row["image_root"], row["image_path"])
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise Reject("missing_file", f"{row['image_path']} does not exist")
        if info.type != pafs.FileType.File:
            raise Reject("not_a_file", f"{row['image_path']} is a {info.type.name.lower()}")
        if info.size is not None and info.size > self.config.max_bytes:
            raise Reject("file_too_large", f"{info.size} bytes > {self.config.max_bytes}")
        if info.size == 0:
            raise Reject("empty_file", f"{row['image_path']} has 0 bytes")
        try:
            with fs.open_input_stream(path) as f:
                data = f.read(self.config.max_bytes + 1)
        except OSError as exc:
            raise Reject("unreadable_file", f"{type(exc).__name__}: {exc}"[:300]) from None
        if len(data) > self.config.max_bytes:
            raise Reject("file_too_large", f"more than {self.config.max_bytes} bytes")
        row["image"] = data
        return row

    @staticmethod
    def _confined(root_uri: str, image_path: str) -> tuple[pafs.FileSystem, str]:
        """The image's filesystem path, or Reject if it would leave the dataset root."""
        if "\x00" in image_path:
            raise Reject("invalid_path", "path contains a NUL byte")
        if "://" in image_path or image_path.startswith(("/", "\\")) or (len(image_path) > 1 and image_path[1] == ":"):
            raise Reject("path_outside_root", f"absolute path or URI not allowed: {image_path[:200]}")
        fs, root = resolve(root_uri)
        if is_remote(root_uri):
            full = posixpath.normpath(posixpath.join(root, image_path))
            if not full.startswith(root.rstrip("/") + "/"):
                raise Reject("path_outside_root", image_path[:200])
            return fs, full
        real_root = os.path.realpath(root)
        full = os.path.realpath(os.path.join(real_root, image_path))  # follows symlinks: no escape via links
        if os.path.commonpath([real_root, full]) != real_root:
            raise Reject("path_outside_root", image_path[:200])
        return fs, full
