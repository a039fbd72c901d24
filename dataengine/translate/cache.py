"""Content-addressed translation cache: one small JSON file per (source text, engine, server, model, prompt
version, glossary), under `<storage>/cache/translate/`, written atomically. Only validated translations are
stored, with the model's output as it came (⟦n⟧ markers in place) so that a hit can be validated again under
the settings of the run that reads it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dataengine.core.storage import default_root, exists, join, read_bytes, write_bytes_atomic

if TYPE_CHECKING:
    from dataengine.translate.engines import Engine


class TranslationCache:
    def __init__(self, storage: str | None, engine: Engine, prompt_version: str, glossary_hash: str):
        self.root = join(storage or default_root(), "cache", "translate")
        # the server is in the key: two servers may serve different weights under one model name
        self.scope = {
            "engine": engine.name,
            "server": engine.server,
            "model": engine.model,
            "prompt_version": prompt_version,
            "glossary": glossary_hash,
        }
        self.hits = self.misses = 0

    def key(self, text: str) -> str:
        return hashlib.sha256(json.dumps([text, *self.scope.values()], ensure_ascii=False).encode()).hexdigest()

    def _path(self, key: str) -> str:
        return join(self.root, key[:2], f"{key}.json")

    def get(self, text: str, accept: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any] | None:
        """The stored record for `text` (`translation`, `output`, provenance), or None (a miss) when there is none
        or `accept` refuses it, e.g. because it fails this run's validation."""
        path = self._path(self.key(text))
        if exists(path):
            record = json.loads(read_bytes(path))
            if accept is None or accept(record):
                self.hits += 1
                return record
        self.misses += 1
        return None

    def put(self, text: str, translation: str, *, output: str, **provenance: Any) -> None:
        """Store a validated translation; `output` is the model's text with its ⟦n⟧ markers."""
        record = {"source": text, "translation": translation, "output": output, **self.scope, **provenance}
        write_bytes_atomic(self._path(self.key(text)), json.dumps(record, ensure_ascii=False).encode())
