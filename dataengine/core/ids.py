"""Stable sample ids: the same input record gets the same id in every run."""

from __future__ import annotations

import hashlib


def sample_id(source: str, location: str) -> str:
    """32 hex chars of BLAKE2b over (source, location); location is file:line, file:row or tar:member."""
    return hashlib.blake2b(f"{source}\x00{location}".encode(), digest_size=16).hexdigest()


def content_hash(data: bytes, size: int = 16) -> str:
    return hashlib.blake2b(data, digest_size=size).hexdigest()


def run_token(run_id: str) -> str:
    """8 hex chars naming one run's files (`part-<token>-...`, `shard-<token>-...`), so a run can write beside a
    committed one in the same folder and the files of each stay apart until the newer commits."""
    return content_hash(run_id.encode(), 4)
