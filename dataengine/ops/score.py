"""The `score` stage: match_en / match_zh (and caption log-likelihood) of every accepted sample with an
InternVL scorer, reading the tiles the tile stage wrote (no second decode of the source image).

Runs on an actor pool (the model loads once per actor; GPUs, fractional ones too, as the stage declares), or
sends the tiles to a `dataengine serve scorer` endpoint. A sample that cannot be scored is rejected with
`score_error`, never the batch.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import pyarrow.parquet as pq
from pydantic import Field

from dataengine.core.config import Compute
from dataengine.core.metrics import StageMetrics
from dataengine.core.rows import reject, texts_of
from dataengine.core.storage import join, resolve
from dataengine.ops.base import BatchStage, StageConfig
from dataengine.scorer.scoring import SCORE_COLUMNS

STAGE = "score"


class ScoreConfig(StageConfig):
    needs = frozenset({"tile"})  # reads the tiles the tile stage wrote
    actors_only = True  # a model or client per worker

    op: Literal["score"] = "score"
    model: str = Field(description="NAME[:VERSION] under storage/models, or a local InternVL -hf checkpoint folder")
    backend: Literal["actors", "endpoint"] = Field("actors", description="in-process actors or a scorer server")
    endpoint: str = Field("http://127.0.0.1:8000", description="endpoint backend: base URL of `serve scorer`")
    api_key_env: str | None = Field(None, description="endpoint backend: environment variable holding the API key")
    concurrency: int = Field(8, ge=1, description="endpoint backend: requests in flight per actor")
    timeout_s: float = Field(120.0, gt=0, description="endpoint backend: per-request timeout")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    loglik: bool = Field(True, description="also compute caption log-likelihood (loglik_en / loglik_zh)")
    max_batch_tiles: int = Field(32, ge=1, description="tiles per forward pass; samples grouped by tile count")
    num_threads: int | None = Field(None, ge=1, description="torch threads per actor on CPU")
    trust_remote_code: bool = False
    batch_size: int = 32
    compute: Compute = Compute(kind="actors", size=1)


class Score(BatchStage):
    """Loads the scorer (or connects to the endpoint) once per actor, then scores batches of rows."""

    name = STAGE
    Config = ScoreConfig

    def setup(self) -> None:
        assert self.ctx is not None, "the score stage reads the tiles of a run's folder"
        self.cfg: ScoreConfig = self.config  # type: ignore[assignment]
        self.output, storage = self.ctx.output, self.ctx.storage
        self.metrics = StageMetrics(self.ctx.stage_labels(self.name))
        self._shards: OrderedDict[str, dict[str, list[bytes]]] = OrderedDict()
        if self.cfg.backend == "endpoint":
            self.api_key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
            self.scorer, self.label = None, self._endpoint_label()
            self.pool = ThreadPoolExecutor(self.cfg.concurrency)
            return
        import torch

        from dataengine.scorer.model import load, resolve_checkpoint
        from dataengine.scorer.scoring import Scorer

        if self.cfg.num_threads:
            torch.set_num_threads(self.cfg.num_threads)
        device = None if self.cfg.device == "auto" else self.cfg.device
        model = load(
            resolve_checkpoint(self.cfg.model, storage), device=device, trust_remote_code=self.cfg.trust_remote_code
        )
        self.scorer = Scorer(model, loglik=self.cfg.loglik, max_batch_tiles=self.cfg.max_batch_tiles)
        self.label = self.scorer.label

    # ------------------------------------------------------------------ tiles
    def _tiles(self, shard: str) -> dict[str, list[bytes]]:
        """id -> tiles of one shard, keeping the last two shards read (rows arrive shard by shard)."""
        if shard not in self._shards:
            fs, path = resolve(join(self.output, shard))
            with fs.open_input_file(path) as f:
                table = pq.read_table(f, columns=["id", "tiles"])
            self._shards[shard] = dict(
                zip(table.column("id").to_pylist(), table.column("tiles").to_pylist(), strict=True)
            )
            while len(self._shards) > 2:
                self._shards.popitem(last=False)
        return self._shards[shard]

    # ------------------------------------------------------------------ backends
    def _request(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.cfg.endpoint.rstrip('/')}{path}", data=data)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"HTTP {exc.code} from {path}: {exc.read()[:200]!r}") from None

    def _endpoint_label(self) -> str:
        try:
            return self._request("/healthz")["model"]
        except (OSError, ValueError, KeyError) as exc:
            raise RuntimeError(f"scorer endpoint {self.cfg.endpoint} is not reachable: {exc}") from exc

    def _post(self, item: dict[str, Any]) -> dict[str, Any]:
        body = {"tiles": [base64.b64encode(t).decode() for t in item["tiles"]], "texts": item["texts"]}
        return self._request("/v1/score", body)

    def _score(self, items: list[dict[str, Any]]) -> list[dict[str, Any] | Exception]:
        if self.scorer is None:  # no request for a sample without text: null scores, as the actors give it
            futures = [self.pool.submit(self._post, it) if any(it["texts"].values()) else None for it in items]
            out: list[dict[str, Any] | Exception] = []
            for fut in futures:
                try:
                    out.append(fut.result() if fut is not None else dict.fromkeys(SCORE_COLUMNS))
                except Exception as exc:  # one failed request rejects its sample only
                    out.append(exc)
            return out
        from dataengine.scorer.scoring import Item

        def as_item(it: dict[str, Any]) -> Item:
            return Item(it["tiles"], it["texts"]["en"], it["texts"]["zh"])

        return self.scorer.score_each([as_item(it) for it in items])  # a failing sample fails alone

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        todo, items = [], []
        for row in rows:
            try:
                tiles = self._tiles(row["tile_shard"])[row["id"]]
            except Exception as exc:
                reject(row, STAGE, "score_error", f"tiles not readable: {type(exc).__name__}: {exc}"[:300])
                continue
            todo.append(row)
            items.append({"tiles": tiles, "texts": texts_of(row)})
        scoring = time.perf_counter()
        results = self._score(items) if items else []
        self.metrics.inc("dataengine_score_seconds", time.perf_counter() - scoring)
        self.metrics.inc("dataengine_score_samples", sum(not isinstance(r, Exception) for r in results))
        for row, result in zip(todo, results, strict=True):
            if isinstance(result, Exception):
                reject(row, STAGE, "score_error", f"{type(result).__name__}: {result}"[:300])
                continue
            row.update({k: result.get(k) for k in SCORE_COLUMNS})
            row["scorer_model"] = self.label
        return rows
