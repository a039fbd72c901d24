"""Stage metrics end to end: a pipeline runs on a real local Ray head (`dataengine run --address`), then its
metrics are read back from the node's Prometheus endpoint and checked against the run's own outputs; the Grafana
dashboard's queries are parsed and checked against the metric definitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import polars as pl
import promql_parser
import pytest
import yaml
from conftest import encode, textured, write_jsonl
from llm_helpers import DICTIONARY, ScriptedLLM
from prometheus_client.parser import text_string_to_metric_families
from ray_head import start_head
from scorer_helpers import save_tiny_scorer

from dataengine.core.metrics import METRICS, StageMetrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dataengine.json"
CACHED = "A cat sleeping on a sofa."  # put in the translation cache before the run: one cache hit


def spec(base_url: str) -> dict:
    small = {"num_cpus": 0.25}
    return {
        "version": 1,
        "name": "metered",
        "ray": {"progress": False},
        "stages": [
            {"op": "resolve"},
            {"op": "image", "min_side": 32},
            {"op": "text"},
            {"op": "language", "keep": ["en", "zh"]},
            {"op": "dedup"},
            {"op": "translate", "engine": "openai", "model": "scripted", "base_url": base_url, "resources": small},
            {"op": "tile", "max_tiles": 2, "resources": small, "compute": {"kind": "actors", "size": 1}},
            {"op": "score", "model": "tiny-test", "batch_size": 4, "num_threads": 1, "resources": small},
            {"op": "export"},
        ],
    }


def dataset(root: Path) -> int:
    """Eleven records: four accepted, one rejected by each of seven stages (ingest to translate)."""
    (root / "img").mkdir(parents=True)
    captions = [
        "A red car parked on the street.",
        "A dog runs on the grass with 2 balls.",
        CACHED,
        "草地上有一只狗，它在追两个球。",
        "Untranslatable words the scripted model echoes.",  # translate: translation_not_chinese
    ]
    recs: list = []
    for i, caption in enumerate(captions):
        (root / "img" / f"{i}.jpg").write_bytes(encode(textured(900 + i, (600, 300))))
        recs.append({"id": f"ok{i}", "image": f"img/{i}.jpg", "caption": caption})
    (root / "img" / "tiny.png").write_bytes(encode(textured(950, (8, 8)), "PNG"))
    recs += [
        {"id": "dup", "image": "img/0.jpg", "caption": captions[0]},  # dedup: duplicate_exact
        {"id": "gone", "image": "img/missing.jpg", "caption": "A file that is not there."},  # resolve: missing_file
        {"id": "tiny", "image": "img/tiny.png", "caption": "A very small picture of nothing."},  # image: too_small
        {"id": "short", "image": "img/1.jpg", "caption": "ab"},  # text: caption_too_short
        {"id": "es", "image": "img/2.jpg", "caption": "Un perro corre en el parque con dos pelotas."},  # language
        b'{"id": "broken", "image": ',  # ingest: invalid_json
    ]
    write_jsonl(root / "a.jsonl", recs)
    return len(recs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    os.environ["RAY_metrics_report_interval_ms"] = "1000"  # the head's workers report every second
    try:
        c = start_head(tmp_path_factory.mktemp("metrics-head"))
    finally:
        os.environ.pop("RAY_metrics_report_interval_ms")
    yield c
    c.stop()


def scrape(port: int) -> dict[str, list]:
    """`ray_dataengine_*` samples on a node's metrics endpoint, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ray_dataengine_"):
                out[sample.name].append(sample)
    return out


def total(samples: dict[str, list], name: str, *by: str, **match: str) -> dict:
    """Sum of a series over workers, grouped by the labels `by` (a plain number when none), filtered by `match`."""
    sums: dict = defaultdict(float)
    for s in samples.get(name, []):
        if all(s.labels.get(k) == v for k, v in match.items()):
            sums[tuple(s.labels[k] for k in by)] += s.value
    return dict(sums) if by else sums[()]


def test_run_metrics_on_the_nodes_prometheus_endpoint(cluster, tmp_path):
    from dataengine.translate.cache import TranslationCache
    from dataengine.translate.engines.openai import OpenAIEngine
    from dataengine.translate.prompt import PROMPT_VERSION, glossary_hash

    storage = tmp_path / "storage"
    n_inputs = dataset(tmp_path / "data")
    save_tiny_scorer(str(storage))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "1"}
    env.pop("RAY_ADDRESS", None)
    env.setdefault("RAY_AUTH_MODE", "token")  # `ray start` turns token auth on; an explicit address must opt in
    t0 = time.time()
    with ScriptedLLM() as llm:
        engine = OpenAIEngine("scripted", base_url=llm.base_url)  # as the run's stage builds it
        cache = TranslationCache(str(storage), engine, PROMPT_VERSION, glossary_hash({}))
        cache.put(CACHED, DICTIONARY[CACHED], output=DICTIONARY[CACHED])
        (tmp_path / "metered.yaml").write_text(yaml.safe_dump(spec(llm.base_url)))
        proc = subprocess.run(
            [sys.executable, "-m", "dataengine.cli", "--storage", str(storage), "run", str(tmp_path / "metered.yaml"),
             "--address", cluster.gcs, "--input", str(tmp_path / "data")],
            capture_output=True, text=True, env=env, timeout=240,
        )  # fmt: skip
        llm_requests = llm.requests
    print(f"run took {time.time() - t0:.1f}s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + cluster.logs()
    (manifest,) = storage.glob("runs/*/manifest.json")
    record = json.loads(manifest.read_text())
    acc = record["accounting"]
    assert (acc["inputs"], acc["accepted"], acc["rejected"]) == (n_inputs, 4, 7), acc
    out = manifest.parent
    rejects = pl.read_parquet(out / "rejects" / "*.parquet")
    samples = pl.read_parquet(out / "samples" / "*.parquet")
    shard_files = sorted((out / "tiles").glob("shard-*.parquet"))
    shards = pl.read_parquet(shard_files)

    # workers report every second and once more when they exit (the job's workers exit with its driver)
    deadline, m = time.time() + 60, {}
    while time.time() < deadline:
        m = scrape(cluster.metrics_ports[0])
        if total(m, "ray_dataengine_export_rows_total") == n_inputs:
            break
        time.sleep(1)
    assert total(m, "ray_dataengine_export_rows_total") == n_inputs, sorted(m)

    for name, series in m.items():
        for s in series:
            assert s.labels["pipeline"] == "metered" and s.labels["run"] == record["run_id"], (name, s.labels)
    assert total(m, "ray_dataengine_rows_in_total", stage="ingest") == n_inputs
    assert total(m, "ray_dataengine_rows_in_total", stage="resolve") == n_inputs
    assert total(m, "ray_dataengine_rows_out_total", stage="export") == acc["accepted"]
    expected = {(r["stage"], r["reason"]): r["len"] for r in rejects.group_by("stage", "reason").len().to_dicts()}
    assert total(m, "ray_dataengine_rejects_total", "stage", "reason") == expected
    assert len(expected) == 7  # ingest, resolve, image, text, language, dedup, translate: one each
    assert total(m, "ray_dataengine_export_rows_total", "table") == {("samples",): 4, ("rejects",): 7}
    stages = {s for (s,) in total(m, "ray_dataengine_batch_seconds_count", "stage")}
    assert stages == {s["op"] for s in spec("")["stages"]} | {"ingest"}

    # translation: the scripted server answers 10 prompt tokens and one per character; the cache held one caption
    assert total(m, "ray_dataengine_translate_requests_total") == llm_requests == 4  # 2 ok + 2 tries of a failure
    assert total(m, "ray_dataengine_translate_tokens_total", kind="prompt") == 10 * llm_requests
    assert total(m, "ray_dataengine_translate_tokens_total", kind="generated") > 0
    assert total(m, "ray_dataengine_translate_cache_lookups_total") == 4  # one per English caption
    assert total(m, "ray_dataengine_translate_cache_hits_total") == 1
    # tiles and scores: what the shards and the samples table hold
    assert total(m, "ray_dataengine_tiles_written_total") == samples["num_tiles"].sum() == shards["num_tiles"].sum()
    assert total(m, "ray_dataengine_tile_shards_written_total") == len(shard_files)
    tile_bytes = sum(len(t) for tiles in shards["tiles"].to_list() for t in tiles)
    assert total(m, "ray_dataengine_tile_bytes_written_total") == tile_bytes
    assert total(m, "ray_dataengine_score_samples_total") == samples["scorer_model"].is_not_null().sum() == 4
    assert total(m, "ray_dataengine_score_seconds_total") > 0


def test_recording_is_a_no_op_without_ray_or_labels():
    code = textwrap.dedent(
        """
        import ray
        from dataengine.ops import REGISTRY, RunContext
        from dataengine.ops.base import Worker
        from dataengine.core.rows import to_table, new_row
        op = Worker(REGISTRY["text"], {"op": "text"}, RunContext("r", "p", "/tmp/unused", "/tmp/unused"))
        out = op.table(to_table([new_row(id="a", caption="ab"), new_row(id="b", caption="A long enough caption.")]))
        assert out.column("reason").to_pylist() == ["caption_too_short", None]
        assert not ray.is_initialized()
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not StageMetrics(None).enabled
    with pytest.raises(ValueError, match="pipeline"):
        StageMetrics({"pipeline": "p", "stage": "text"})


def _dashboard_queries(board: dict) -> list[str]:
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def _selectors(expr: str) -> set[str]:
    """Metric names an expression selects, from its parsed PromQL (Grafana's variables substituted first)."""
    for var, value in {"$__rate_interval": "1m", "$__range": "1h", "$pipeline": "p", "$run": "r"}.items():
        expr = expr.replace(var, value)
    expr = expr.removeprefix("label_values(").removesuffix(", pipeline)").removesuffix(", run)")
    names: set[str] = set()
    promql_parser.walk(
        promql_parser.parse(expr),
        lambda node: names.add(node.name) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    return names


def test_grafana_dashboard_uses_exactly_the_defined_metrics():
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"pipeline", "run"} <= set(variables)
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    exported = {name: m for m in METRICS.values() for name in m.exported}
    used = set()
    for expr in _dashboard_queries(board):
        names = _selectors(expr)
        assert names and names <= set(exported), (expr, names - set(exported))
        used |= {exported[n].name for n in names}
    assert used == set(METRICS), set(METRICS) - used
    for expr in (t["expr"] for p in board["panels"] for t in p.get("targets", [])):
        assert 'pipeline=~"$pipeline"' in expr and 'run=~"$run"' in expr, expr
