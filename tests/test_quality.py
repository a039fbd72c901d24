"""LLM quality signals (issue #19 items 1, 4-6): the judge's prompts, score parsing and expected scores on the tiny
test LLM, chrF, the score cache, the `quality` stage and the filter's rules on it, QE retries in the translator,
`dataengine assess` (OUT + rejects = IN), the shipped labelled set and `dataengine eval quality`'s arithmetic.
No Ray: stages run through `run_rows`."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from conftest import write_jsonl
from llm_helpers import build_tiny_llm

from dataengine import pipeline
from dataengine.bench import eval_quality
from dataengine.cli import main
from dataengine.core.rows import new_row
from dataengine.ops.base import RunContext
from dataengine.ops.filter import FilterConfig, ScoreFilter
from dataengine.ops.quality import Quality, QualityConfig
from dataengine.quality import judge as J
from dataengine.quality.evalset import build
from dataengine.quality.signals import rule_reasons
from dataengine.translate.engines import Completion, Engine
from dataengine.translate.translator import Translator


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"), weight_std=1.0)


class Scripted(Engine):
    """An in-process engine answering quality/QE prompts with a score picked by a rule on the text, and
    back-translation prompts with a fixed English sentence."""

    name, model, server = "scripted", "scripted", "memory"

    def __init__(self, rule=None):
        self.calls = 0
        self.rule = rule or (lambda text: "Score: 8/10" if "dog" in text or "狗" in text else "2")

    def generate(self, batch, *, max_new_tokens, temperature):
        self.calls += len(batch)
        out = []
        for messages in batch:
            system, user = messages[0]["content"], messages[-1]["content"]
            text = "A dog on the grass." if system == J.BACK_SYSTEM else self.rule(user)
            out.append(Completion(text, "stop"))
        return out


# ---------------------------------------------------------------- prompts, parsing, chrF, AUC


@pytest.mark.parametrize(
    ("text", "score"),
    [("7", 7), ("Score: 8/10", 8), ("10", 10), ("I'd say 9 out of 10.", 9), ("８分", 8), ("0", 0), ("no idea", None)],
)
def test_parse_score(text, score):
    assert J.parse_score(text) == score


def test_parse_score_skips_numbers_out_of_range():
    assert J.parse_score("12 items, so 6") == 6 and J.parse_score("3.5") is None


def test_prompts_are_in_the_texts_language():
    en, zh = J.quality_messages("A dog.", "en"), J.quality_messages("一只狗。", "zh", "answer")
    assert en[0]["content"] == J.RUBRIC["en"] and en[1]["content"] == "Caption: A dog."
    assert zh[0]["content"] == J.RUBRIC["zh"] and zh[1]["content"] == "回答: 一只狗。"
    assert "Chinese: 一只狗。" in J.qe_messages("A dog.", "一只狗。")[1]["content"]


def test_chrf_matches_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    for hyp, ref in [
        ("A dog runs on the grass.", "A dog is running on green grass."),
        ("Two cats.", "A red car parked on the street."),
        ("same", "same"),
    ]:
        assert J.chrf(hyp, ref) == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score, abs=0.01)
    assert J.chrf("", "abc") == 0.0


def test_roc_auc_arithmetic():
    assert eval_quality.roc_auc([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]) == 1.0
    assert eval_quality.roc_auc([0.1, 0.3, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert eval_quality.roc_auc([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0]) == 0.5
    assert eval_quality.roc_auc([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0]) == 0.75  # 3 of 4 pairs ordered
    assert eval_quality.roc_auc([None, 0.2], [1, 0]) == 0.0  # a missing score ranks lowest
    assert eval_quality.roc_auc([0.3], [1]) is None
    metrics = pytest.importorskip("sklearn.metrics")
    scores, labels = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [1, 0, 1, 0, 1, 1, 0, 1, 0, 0]
    assert eval_quality.roc_auc(scores, labels) == round(metrics.roc_auc_score(labels, scores), 4)


# ---------------------------------------------------------------- the labelled set


def test_shipped_evalset_is_what_the_builder_makes():
    for name, rows in (("captions", build.captions()), ("translations", build.translations())):
        assert (build.HERE / f"{name}.jsonl").read_text(encoding="utf-8") == build.render(rows)


def test_evalset_sizes_languages_and_kinds():
    captions, translations = eval_quality.load("captions"), eval_quality.load("translations")
    assert len(captions) >= 200 and len(translations) >= 200
    for lang in ("en", "zh"):
        mine = [r for r in captions if r["lang"] == lang]
        assert sum(r["label"] for r in mine) >= 50 and sum(1 - r["label"] for r in mine) >= 50
    kinds = {r["kind"] for r in translations if r["label"] == 0}
    assert kinds == set(build.KINDS)
    for kind in build.KINDS:
        assert sum(r["kind"] == kind for r in translations) >= 50
    good = {r["pair"]: r["zh"] for r in translations if r["label"] == 1}
    assert all(r["zh"] != good[r["pair"]] for r in translations if r["label"] == 0)


def test_corruptions_do_what_they_say():
    zh = "两只棕色的狗跑过绿色的草坪，其中一只叼着红色的球。"
    en = "Two brown dogs run across a green lawn, one of them carrying a red ball."
    c = build.corruptions(en, zh, 0)
    assert c["number"].startswith("三只") and "没有" in c["negation"]
    assert c["clause_dropped"] == "两只棕色的狗跑过绿色的草坪。" and c["swap"].startswith("两只白色")
    assert c["untranslated"] == en and c["truncated"] == "两只棕色的狗跑过绿色的草坪" and c["added"].endswith("。")


def test_rule_reasons_lists_every_rule():
    assert rule_reasons("IMG_20190412_123456.jpg") == ["filename_caption"]
    assert rule_reasons("A brown dog runs across a green lawn.") == []
    assert "repetitive_text" in rule_reasons("好看" * 12, lang="zh")
    assert rule_reasons("ok") == ["caption_too_short"]


def test_eval_rules_only_runs_without_a_model():
    result = CliRunner().invoke(main, ["eval", "quality", "--rules-only"])
    assert result.exit_code == 0, result.output
    assert "captions: 256 items" in result.output and "untranslated" in result.output


# ---------------------------------------------------------------- judge on engines


def test_expected_scores_on_the_tiny_llm(tiny_llm):
    from dataengine.translate.engines.hf import TransformersEngine

    engine = TransformersEngine(str(tiny_llm))
    batch = [J.quality_messages(t, "en") for t in ["A red car.", "A dog on the grass with 2 balls.", "x"]]
    batched = engine.expected_scores(batch)
    alone = [engine.expected_scores([m])[0] for m in batch]
    assert all(0 <= v <= 10 for v in batched)
    assert batched == pytest.approx(alone, abs=1e-3)  # padding and the shared prefix change nothing
    plain = TransformersEngine(str(tiny_llm), prefix_cache=False, onednn=False)
    assert plain.expected_scores(batch) == pytest.approx(batched, abs=1e-3)
    assert len(set(batched)) == 3  # the score depends on the text


def test_judge_caches_scores(tiny_llm, tmp_path):
    from dataengine.translate.engines.hf import TransformersEngine

    engine = TransformersEngine(str(tiny_llm))
    first = J.Judge(engine, J.ScoreCache(str(tmp_path), engine))
    assert first.method == "logits"
    items = [("A red car.", "en", "caption"), ("一辆红色的汽车。", "zh", "caption")]
    scores = first.quality(items) + first.translation_qe([("A red car.", "一辆红色的汽车。")])
    again = J.Judge(engine, J.ScoreCache(str(tmp_path), engine))
    assert again.quality(items) + again.translation_qe([("A red car.", "一辆红色的汽车。")]) == scores
    assert again.llm_calls == 0 and again.cache.hits == 3 and 0 <= scores[2] <= 100


def test_text_scoring_parses_answers(tmp_path):
    engine = Scripted()
    judge = J.Judge(engine, J.ScoreCache(str(tmp_path), engine), batch_size=2)
    assert judge.method == "text"
    assert judge.quality([("A dog.", "en", "caption"), ("A car.", "en", "caption"), ("x", "zh", "caption")]) == [
        8.0,
        2.0,
        2.0,
    ]
    assert judge.translation_qe([("A dog.", "一只狗。")]) == [80.0]
    assert judge.back_chrf([("A dog on the grass.", "草地上的狗。")]) == [100.0]
    with pytest.raises(ValueError, match="logits"):
        J.Judge(engine, scoring="logits")
    unsure = J.Judge(Scripted(lambda text: "hmm"))
    assert unsure.quality([("A dog.", "en", "caption")]) == [None] and unsure.unparsed == 1


# ---------------------------------------------------------------- the stage and the filter


def rows():
    return [
        new_row(id="a", caption="A dog on the grass.", language="en", caption_zh="草地上的一只狗。"),
        new_row(
            id="b",
            conversations=[{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A red car."}],
            language="en",
        ),
        new_row(id="c", caption="一辆红色的汽车。", language="zh"),
        new_row(id="d", caption="gone", language="en", stage="text", reason="caption_too_short"),
    ]


def stage(tmp_path, model, **settings):
    ctx = RunContext("r1", "p", str(tmp_path / "out"), str(tmp_path))
    s = Quality(QualityConfig(model=str(model), **settings), ctx)
    s.setup()
    return s


def test_quality_stage_adds_scores_and_provenance_then_hits_its_cache(tiny_llm, tmp_path):
    s = stage(tmp_path, tiny_llm, back_translation=True)
    out = s.run_rows(rows())
    a, b, c, d = out
    assert a["quality_en"] is not None and a["quality_zh"] is not None and 0 <= a["translation_qe"] <= 100
    assert a["translation_chrf"] is None or 0 <= a["translation_chrf"] <= 100  # None: an empty back-translation
    assert b["quality_en"] is not None and b["quality_zh"] is None and b["translation_qe"] is None
    assert c["quality_zh"] is not None and c["quality_en"] is None
    assert a["quality_model"] == tiny_llm.name and a["quality_rubric"] == J.RUBRIC_VERSION
    assert d["quality_en"] is None and d["reason"] == "caption_too_short"  # rejected upstream: untouched
    again = stage(tmp_path, tiny_llm, back_translation=True)
    assert [r["quality_en"] for r in again.run_rows(rows())] == [r["quality_en"] for r in out]
    assert again.judge.llm_calls == 0


def test_filter_rejects_on_quality_and_needs_the_quality_stage():
    cfg = FilterConfig(min_quality_en=5, min_translation_qe=60)
    assert cfg.needs == frozenset({"quality"})
    assert FilterConfig(min_match_en=0.5).needs == frozenset({"score"})
    f = ScoreFilter(cfg)
    ok, low, bad_qe = (
        new_row(id="1", quality_en=8.0, translation_qe=90.0),
        new_row(id="2", quality_en=3.5),
        new_row(id="3", quality_en=9.0, translation_qe=20.0),
    )
    out = f.run_rows([ok, low, bad_qe])
    assert [r["reason"] for r in out] == [None, "low_quality_en", "low_translation_qe"]
    assert "quality_en=3.5" in out[1]["detail"]
    strict = ScoreFilter(FilterConfig(min_quality_zh=5, missing="reject"))
    assert strict.run_rows([new_row(id="4", quality_en=9.0)])[0]["reason"] == "missing_quality_zh"


def test_pipeline_spec_places_quality():
    base = [{"op": "resolve"}, {"op": "image"}, {"op": "text"}, {"op": "language"}]
    spec = {
        "name": "q",
        "stages": [*base, {"op": "translate"}, {"op": "quality"}, {"op": "filter", "min_quality_en": 5}],
    }
    spec["stages"].append({"op": "export"})
    pipeline.PipelineSpec.model_validate(spec)
    wrong = {"name": "q", "stages": [*base, {"op": "quality"}, {"op": "translate"}, {"op": "export"}]}
    with pytest.raises(ValueError, match="before 'quality'"):
        pipeline.PipelineSpec.model_validate(wrong)
    no_quality = {"name": "q", "stages": [*base, {"op": "filter", "min_quality_en": 5}, {"op": "export"}]}
    with pytest.raises(ValueError, match=re.escape("needs ['quality']")):
        pipeline.PipelineSpec.model_validate(no_quality)


def test_translator_retries_a_low_qe_translation(tmp_path):
    class Translating(Engine):
        name, model, server = "t", "t", "memory"

        def __init__(self):
            self.strict = []

        def generate(self, batch, *, max_new_tokens, temperature):
            self.strict += ["Output only" in m[0]["content"] for m in batch]
            return [Completion("一只狗在草地上。", "stop") for _ in batch]

    engine = Translating()
    qe = iter([30.0, 90.0])
    judge = type("J", (), {"translation_qe": lambda self, pairs: [next(qe) for _ in pairs]})()
    t = Translator(engine, None, judge=judge, min_qe=50)
    (out,) = t.translate_samples([{"caption": "A dog on the grass."}])
    assert out.status == "ok" and out.attempts == 2 and engine.strict == [False, True]
    assert out.qe == 90.0  # the rating of the translation kept, for the sample's translation_qe
    never = Translator(Translating(), None, judge=type("J", (), {"translation_qe": lambda s, p: [10.0]})(), min_qe=50)
    (out,) = never.translate_samples([{"caption": "A dog on the grass."}])
    assert out.status == "failed:low_qe" and "10.0 < 50" in out.detail


def test_translator_keeps_the_lowest_turn_qe_and_reads_it_back_from_the_cache(tmp_path):
    """A conversation's translation_qe is its lowest-rated turn; a cache hit carries the stored rating."""
    from dataengine.translate.cache import TranslationCache

    class Translating(Engine):
        name, model, server = "t", "t", "memory"

        def generate(self, batch, *, max_new_tokens, temperature):
            return [Completion("一只狗在草地上。", "stop") for _ in batch]

    ratings = {"What is on the grass?": 80.0, "A dog on the grass.": 65.0}
    judge = type("J", (), {"translation_qe": lambda self, pairs: [ratings[src] for src, _ in pairs]})()
    turns = [{"from": "human", "value": "What is on the grass?"}, {"from": "gpt", "value": "A dog on the grass."}]
    engine = Translating()
    cache = TranslationCache(str(tmp_path), engine, "p1", "none")
    (out,) = Translator(engine, cache, judge=judge, min_qe=50).translate_samples([{"conversations": turns}])
    assert out.status == "ok" and out.qe == 65.0 and out.cache_hits == 0
    cache = TranslationCache(str(tmp_path), engine, "p1", "none")
    (again,) = Translator(engine, cache, judge=judge, min_qe=50).translate_samples([{"conversations": turns}])
    assert again.cache_hits == 2 and again.qe == 65.0
    (plain,) = Translator(engine, cache).translate_samples([{"conversations": turns}])
    assert plain.qe is None  # no min_qe: the translator does not rate, the sample carries no QE
    ratings["A dog on the grass."] = None  # the judge could not rate one turn: the sample has no QE, not 80
    (unrated,) = Translator(engine, None, judge=judge, min_qe=50).translate_samples([{"conversations": turns}])
    assert unrated.status == "ok" and unrated.qe is None


# ---------------------------------------------------------------- dataengine assess


def test_assess_file_out_plus_rejects_is_in(tiny_llm, tmp_path):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "image": "a.jpg", "caption": "A dog on the grass.", "caption_zh": "草地上的一只狗。"},
            {
                "id": "b",
                "image": "b.jpg",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat is it?"},
                    {"from": "gpt", "value": "wow wow wow wow wow wow wow wow wow wow wow wow wow wow wow wow"},
                ],
            },
            b"{broken json",
            {"id": "c", "image": "c.jpg", "caption": "一辆红色的汽车停在街上。"},
            {"id": "d", "image": "d.jpg"},
            {"id": "e", "image": "e.jpg", "caption": "IMG_2031.JPG"},
            {"id": "f", "image": "f.jpg", "caption": "A red car.", "caption_zh": ["not", "a", "string"]},
        ],
    )
    dst = tmp_path / "out.jsonl"
    args = ["--storage", str(tmp_path), "assess", str(src), str(dst), "--model", str(tiny_llm), "--batch-size", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text().splitlines()]
    assert len(out) + len(rejects) == 7
    assert [r["id"] for r in out] == ["a", "b", "c", "e"]
    assert sorted(r["reason"] for r in rejects) == ["invalid_caption", "invalid_json", "missing_text"]
    a, b, c, e = out
    assert a["quality_en"] is not None and a["quality_zh"] is not None and a["translation_qe"] is not None
    assert a["rule_reasons"] == [] and a["repetition"] == 0 and a["quality"]["rubric"] == J.RUBRIC_VERSION
    assert b["rule_reasons"] == ["repetitive_text"] and b["repetition"] > 0.5 and b["quality_zh"] is None
    assert c["quality_en"] is None and c["quality_zh"] is not None and c["translation_qe"] is None
    assert e["rule_reasons"] == ["filename_caption", "boilerplate"]
    again = CliRunner().invoke(main, args)
    assert "LLM calls 0" in again.output


def test_assess_rejects_what_the_model_did_not_score(tmp_path):
    from dataengine.quality.files import assess_file

    src = write_jsonl(
        tmp_path / "in.jsonl", [{"image": "a.jpg", "caption": "A cat."}, {"image": "b.jpg", "caption": "A dog."}]
    )
    judge = J.Judge(Scripted(lambda text: "8" if "dog" in text else "no"))
    counts = assess_file(str(src), str(tmp_path / "o.jsonl"), judge)
    assert counts["assessed"] == 1 and counts["rejected"] == 1
    (rej,) = [json.loads(line) for line in (tmp_path / "o.rejects.jsonl").read_text().splitlines()]
    assert rej["reason"] == "unscored" and "quality_en" in rej["detail"]


def test_eval_quality_with_a_scripted_judge():
    judge = J.Judge(Scripted(lambda text: "9" if any(w in text for w in (" a ", "一")) else "1"))
    result = eval_quality.evaluate(judge, limit=60, back=True)
    caps, trans = result["captions"], result["translations"]
    assert set(caps["overall"]) == {"rules", "llm", "combined"}
    assert set(trans["overall"]) == {"rules", "qe", "back_chrf", "combined"}
    assert caps["items"] <= 64 and set(trans["by_kind"]) == set(build.KINDS)
    assert all(0 <= v <= 1 for v in caps["overall"].values())
    for lang in ("en", "zh"):  # the limit keeps every (language, label, kind) stratum
        assert all(v is not None for v in caps["by_language"][lang].values())


def test_bench_quality_cost_reports_both_modes(tiny_llm):
    from dataengine.translate.engines.hf import TransformersEngine

    judge = J.Judge(TransformersEngine(str(tiny_llm)), None, batch_size=4)
    r = eval_quality.cost(judge, 8, 4)
    assert r["batched"]["quality_s_per_1000"] > 0 and r["one_at_a_time"]["translation_qe_s_per_1000"] > 0
    assert judge.batch_size == 4 and "speedup_quality" in r


def test_openai_engine_scores_from_top_logprobs():
    """`scoring: logits` on a server: the expected value from `top_logprobs` (a local server speaking the OpenAI
    protocol with log-probabilities, as vLLM does); a server without them leaves the score null."""
    import math
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from dataengine.translate.engines.openai import OpenAIEngine

    def alt(token, p):
        return {"token": token, "logprob": math.log(p)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_POST(self):
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = payload["messages"][-1]["content"]
            if "plain" in text:  # a server that ignores logprobs
                body = {"choices": [{"message": {"content": "7"}, "finish_reason": "stop"}]}
            elif "ten" in text:  # greedy "1" then "0": 10 with P(0 | 1) = 0.8
                first = {"token": "1", "top_logprobs": [alt("1", 0.9), alt("7", 0.1)]}
                second = {"token": "0", "top_logprobs": [alt("0", 0.8), alt("<|end|>", 0.2)]}
                body = {"choices": [{"message": {"content": "10"}, "logprobs": {"content": [first, second]}}]}
            else:
                first = {"token": "8", "top_logprobs": [alt("8", 0.5), alt("6", 0.3), alt("Sure", 0.2)]}
                body = {"choices": [{"message": {"content": "8"}, "logprobs": {"content": [first]}}]}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        engine = OpenAIEngine("m", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", backoff_s=0.01)
        assert J.Judge(engine).method == "text"  # auto: a server's answer is parsed unless logits are asked for
        judge = J.Judge(engine, scoring="logits")
        scores = judge.quality([(t, "en", "caption") for t in ("a cat", "ten out of ten", "plain")])
        assert scores[0] == pytest.approx((8 * 0.5 + 6 * 0.3) / 0.8, abs=1e-3)
        assert scores[1] == pytest.approx((0.9 * (1 + 0.8 * 9) + 0.7) / 1.0, abs=1e-3)
        assert scores[2] is None
    finally:
        server.shutdown()
        server.server_close()
