"""Score and filter stages in a real pipeline run: tiles read from the shards, bilingual scores in the export,
top-fraction and threshold filtering with the scores on the rejects, accounting intact; and the same scores
through the `serve scorer` endpoint on Ray Serve."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import encode, textured, write_jsonl
from scorer_helpers import save_tiny_scorer, shapes_png

from dataengine import pipeline, runner
from dataengine.core import schema
from dataengine.report.summary import run_stats
from dataengine.shards import iter_samples

N = 12


def _spec(score: dict, filt: dict | None) -> pipeline.PipelineSpec:
    stages = [
        {"op": "resolve"},
        {"op": "image"},
        {"op": "text"},
        {"op": "tile", "max_tiles": 4, "batch_size": 5, "webdataset": True},
        {"op": "score", "model": "tiny-test", "batch_size": 4, **score},
    ]
    if filt:
        stages.append({"op": "filter", **filt})
    stages.append({"op": "export"})
    return pipeline.parse({"name": "scored", "ray": {"progress": False}, "stages": stages})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("scored")
    (root / "data" / "img").mkdir(parents=True)
    recs = []
    for i in range(N):
        png, en, zh = shapes_png(100 + i)
        (root / "data" / "img" / f"{i}.png").write_bytes(png)
        recs.append({"image": f"img/{i}.png", "caption": en, "caption_zh": zh})
    (root / "data" / "img" / "wide.jpg").write_bytes(encode(textured(5, (1400, 500))))
    recs.append({"image": "img/wide.jpg", "caption": "a wide texture"})  # several tiles, English only
    write_jsonl(root / "data" / "a.jsonl", recs)
    save_tiny_scorer(str(root / "storage"))
    return root


def _run(dataset, spec):
    return runner.run(spec, input_uri=str(dataset / "data"), storage=str(dataset / "storage"))


def test_score_then_keep_top_fraction(ray_local, dataset):
    record = _run(dataset, _spec({}, {"keep_top_fraction": 0.5, "top_by": "match_en"}))
    assert record["accounting"]["ok"]
    samples = pl.read_parquet(record["files"]["samples"])
    rejects = pl.read_parquet(record["files"]["rejects"])
    assert pq.read_schema(record["files"]["samples"][0]) == schema.load("samples", 4)
    assert pq.read_schema(record["files"]["rejects"][0]) == schema.load("rejects", 3)
    assert samples.height + rejects.height == N + 1
    assert samples.height >= (N + 1) // 2 and set(rejects["reason"]) == {"below_top_fraction"}
    assert samples["match_en"].min() >= rejects["match_en"].max()  # the kept half is the better half
    both = pl.concat([samples.select("match_en", "match_zh", "translation_drift", "scorer_model"),
                      rejects.select("match_en", "match_zh", "translation_drift", "scorer_model")])  # fmt: skip
    assert both["match_en"].null_count() == 0 and set(both["scorer_model"]) == {"tiny-test:v1"}
    assert both["match_zh"].null_count() == 1  # the English-only sample
    paired = both.drop_nulls()
    assert ((paired["match_en"] - paired["match_zh"] - paired["translation_drift"]).abs() < 1e-4).all()
    assert rejects["detail"].str.contains("match_en=").all()
    scores = run_stats(record)["scores"]
    assert scores["scorer"] == "tiny-test:v1" and scores["scored"] == samples.height
    assert scores["match_en_mean"] == pytest.approx(samples["match_en"].mean(), rel=1e-6)
    # the tile shards and their index hold the accepted samples only: the filtered half left them too
    shard_ids = [sid for sid, _ in iter_samples(record["output"])]
    assert sorted(shard_ids) == sorted(samples["id"]) and not set(shard_ids) & set(rejects["id"])
    assert sorted(pl.read_parquet(record["tile_index"])["id"]) == sorted(samples["id"])
    tars = sorted((Path(record["output"]) / "tiles").glob("*.tar"))
    assert len(tars) == len(set(samples["tile_shard"]))  # a shard left empty went, with its tar
    for tar in tars:
        with tarfile.open(tar) as t:
            keys = {m.name.split(".", 1)[0] for m in t.getmembers()}
        assert keys == set(pl.read_parquet(tar.with_suffix(".parquet"))["id"]) and keys <= set(samples["id"])


def test_thresholds_and_drift_limit(ray_local, dataset):
    record = _run(dataset, _spec({"loglik": False}, {"min_match_en": 0.999, "missing": "reject"}))
    rejects = pl.read_parquet(record["files"]["rejects"])
    assert record["accounting"]["ok"] and set(rejects["reason"]) == {"low_match_en"}  # untrained: nothing near 1
    assert rejects.height == N + 1 and rejects["loglik_en"].null_count() == N + 1
    record = _run(dataset, _spec({}, {"max_drift": 0.0, "missing": "keep"}))
    samples = pl.read_parquet(record["files"]["samples"])
    rejects = pl.read_parquet(record["files"]["rejects"]) if record["files"]["rejects"] else pl.DataFrame()
    for r in rejects.iter_rows(named=True):
        assert r["reason"] == "translation_drift" and r["translation_drift"] > 0
    assert (samples["translation_drift"].drop_nulls() <= 0).all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_scorer_and_endpoint_backend(ray_local, dataset):
    from ray import serve

    from dataengine.scorer import serve as scorer_serve
    from dataengine.scorer.model import load, resolve_checkpoint
    from dataengine.scorer.scoring import Item, Scorer
    from dataengine.tiling import tile_encoded

    path = resolve_checkpoint("tiny-test", str(dataset / "storage"))
    port = _free_port()
    base = scorer_serve.start(path, port=port, image_root=str(dataset / "data"))
    try:
        assert base == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as resp:
            assert json.loads(resp.read()) == {"status": "ok", "model": "tiny-test:v1"}
        png, en, zh = shapes_png(100)
        tile = tile_encoded(png).tiles[-1]
        local = Scorer(load(path, device="cpu")).score([Item(tile_encoded(png).tiles, en, zh)])[0]
        status, by_image = _post(
            f"{base}/v1/score", {"image": base64.b64encode(png).decode(), "texts": {"en": en, "zh": zh}}
        )
        assert status == 200 and by_image["model"] == "tiny-test:v1"
        assert by_image["match_en"] == pytest.approx(local["match_en"], abs=1e-4)
        status, by_uri = _post(f"{base}/v1/score", {"image_uri": "img/0.png", "texts": {"en": en}})
        assert status == 200 and by_uri["match_en"] == pytest.approx(local["match_en"], abs=1e-4)
        assert by_uri["match_zh"] is None
        for bad, why in [
            ({"image_uri": "../storage/x.png", "texts": {"en": "x"}}, "outside the image root"),
            ({"image": "%%%", "texts": {"en": "x"}}, "not valid base64"),
            ({"image": base64.b64encode(b"not an image").decode(), "texts": {"en": "x"}}, "not a decodable image"),
            ({"tiles": [], "texts": {"en": "x"}}, "non-empty"),
            ({"image": base64.b64encode(png).decode(), "texts": {}}, "texts must be"),
            ({"image": base64.b64encode(png).decode(), "texts": {"en": 5, "zh": "猫"}}, "object of strings"),
            ({"tiles": [b64(png)], "texts": {"en": "x"}}, "must be JPEG"),
            ({"tiles": [b64(encode(textured(1, (224, 224))))], "texts": {"en": "x"}}, "224x224, not 448x448"),
            ({"tiles": [b64(tile)] * 41, "texts": {"en": "x"}}, "over the limit"),
        ]:
            status, body = _post(f"{base}/v1/score", bad)
            assert status == 400 and why in body["error"], body
        # image_uri reads a regular file within the size limit only; a FIFO is refused without waiting on it
        limits = dataset / "data" / "limits"
        limits.mkdir()
        try:
            with open(limits / "huge.png", "wb") as f:
                f.truncate(scorer_serve.MAX_IMAGE_FILE + 1)  # sparse: no disk written
            os.mkfifo(limits / "pipe.png")
            for uri, why in [
                ("limits/huge.png", "over the limit"),
                ("limits", "not a regular file"),
                ("limits/missing.png", "cannot be opened"),
                ("limits/pipe.png", "not a regular file"),
            ]:
                status, body = _post(f"{base}/v1/score", {"image_uri": uri, "texts": {"en": "x"}})
                assert status == 400 and why in body["error"] and str(limits) not in body["error"], body
        finally:
            shutil.rmtree(limits)
        # a body declared too large is refused before it is read
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/v1/score")
        conn.putheader("Content-Length", str(10**12))
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 413 and "body over" in json.loads(resp.read())["error"]
        conn.close()
        # a tile whose header passes but whose data is broken fails its own request only, even when batched
        good = {"tiles": [b64(tile)], "texts": {"en": en}}
        broken = {"tiles": [b64(tile[: len(tile) // 2])], "texts": {"en": en}}
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda b: _post(f"{base}/v1/score", b), [good, broken] * 4))
        assert all(st == 200 and r["match_en"] is not None for st, r in answers[0::2]), answers
        assert all(st == 422 and "could not score" in r["error"] for st, r in answers[1::2]), answers
        # the batch stage through the endpoint gives the in-process scores
        via_http = _run(
            dataset, _spec({"backend": "endpoint", "endpoint": base, "compute": {"kind": "actors", "size": 1}}, None)
        )
        in_proc = _run(dataset, _spec({}, None))
        a = pl.read_parquet(via_http["files"]["samples"]).sort("id").select("id", "match_en", "match_zh", "loglik_en")
        b = pl.read_parquet(in_proc["files"]["samples"]).sort("id").select("id", "match_en", "match_zh", "loglik_en")
        assert a["id"].to_list() == b["id"].to_list() and a.height == N + 1
        for col in ("match_en", "match_zh", "loglik_en"):
            assert ((a[col] - b[col]).abs().fill_null(0) < 1e-3).all()
    finally:
        serve.shutdown()


def test_serve_scorer_needs_its_api_key(ray_local, dataset, tmp_path, monkeypatch):
    """With an API key, /v1/score needs it (401 with an OpenAI-style error otherwise) and /healthz stays open for
    probes; the score stage's endpoint backend sends the key its api_key_env names. Off loopback without a key,
    the server refuses to start."""
    from ray import serve

    from dataengine.ops.base import RunContext
    from dataengine.ops.score import Score, ScoreConfig
    from dataengine.scorer import serve as scorer_serve
    from dataengine.scorer.model import resolve_checkpoint
    from dataengine.tiling import tile_encoded

    path, key = resolve_checkpoint("tiny-test", str(dataset / "storage")), "k-5e2a"
    with pytest.raises(ValueError, match="without an API key"):
        scorer_serve.start(path, host="192.0.2.1", port=_free_port())  # TEST-NET: stands for a public address
    base = scorer_serve.start(path, port=_free_port(), api_key=key)
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as resp:
            assert json.loads(resp.read())["model"] == "tiny-test:v1"
        png, en, _ = shapes_png(101)
        tiles = tile_encoded(png).tiles
        body = {"tiles": [b64(t) for t in tiles], "texts": {"en": en}}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
            status, answer = _post(f"{base}/v1/score", body, headers)
            assert status == 401 and answer["error"]["code"] == "invalid_api_key", answer
        status, answer = _post(f"{base}/v1/score", body, {"Authorization": f"Bearer {key}"})
        assert status == 200 and answer["match_en"] is not None
        config = {"model": "tiny-test", "backend": "endpoint", "endpoint": base, "api_key_env": "SCORER_TEST_KEY"}
        item = {"tiles": tiles, "texts": {"en": en, "zh": None}}
        ctx = RunContext("score-test", "t", str(tmp_path), str(dataset / "storage"), metrics=False)

        def endpoint_stage() -> Score:
            stage = Score(ScoreConfig(**config), ctx)
            stage.setup()
            return stage

        monkeypatch.setenv("SCORER_TEST_KEY", key)
        (scores,) = endpoint_stage()._score([item])
        assert scores["match_en"] == pytest.approx(answer["match_en"], abs=1e-5)
        monkeypatch.delenv("SCORER_TEST_KEY")
        (refused,) = endpoint_stage()._score([item])
        assert isinstance(refused, RuntimeError) and "HTTP 401" in str(refused)
    finally:
        serve.shutdown()


def test_pipeline_rules_for_score_and_filter():
    base = [{"op": "resolve"}, {"op": "image"}, {"op": "text"}, {"op": "language"}]
    with pytest.raises(pipeline.PipelineError, match="thumbnail"):
        no_thumb = [*base, {"op": "tile", "thumbnail": False}, {"op": "score", "model": "m"}, {"op": "export"}]
        pipeline.parse({"name": "x", "stages": no_thumb})
    with pytest.raises(pipeline.PipelineError, match="needs"):
        pipeline.parse({"name": "x", "stages": [*base, {"op": "score", "model": "m"}, {"op": "export"}]})
    with pytest.raises(pipeline.PipelineError, match="before 'score'"):
        pipeline.parse(
            {
                "name": "x",
                "stages": [
                    *base,
                    {"op": "tile"},
                    {"op": "score", "model": "m"},
                    {"op": "translate"},
                    {"op": "export"},
                ],
            }
        )
    with pytest.raises(pipeline.PipelineError, match="at least one rule"):
        pipeline.parse(
            {
                "name": "x",
                "stages": [*base, {"op": "tile"}, {"op": "score", "model": "m"}, {"op": "filter"}, {"op": "export"}],
            }
        )
    with pytest.raises(pipeline.PipelineError, match="computed"):
        pipeline.parse(
            {
                "name": "x",
                "stages": [
                    *base,
                    {"op": "tile"},
                    {"op": "score", "model": "m"},
                    {"op": "filter", "max_drift": 0.5, "cutoff": 0.5},
                    {"op": "export"},
                ],
            }
        )
