"""An LLM as judge of text quality: a versioned rubric that rates a caption or answer 0-10 in its own language,
a direct-assessment prompt that rates an English -> Chinese translation (`translation_qe`, 0-100), and an
optional back-translation compared with the English source by chrF.

Scores come from the model's next-token probabilities where the engine exposes them (transformers: the expected
value over the answers "0".."10", `TransformersEngine.expected_scores`), else from the integer the model writes
(any OpenAI-compatible server). Every score is cached like a translation: one small JSON file per (kind, text,
rubric version, scoring method, engine, server, model) under `<storage>/cache/quality/`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dataengine.core.storage import default_root, exists, join, read_bytes, write_bytes_atomic

if TYPE_CHECKING:
    from dataengine.translate.engines import Engine

RUBRIC_VERSION = "quality-v1"  # change it whenever a prompt below changes: cached scores are keyed by it
QE_VERSION = "qe-v1"
BACK_VERSION = "back-v1"

# Short on purpose (every request pays for the system prompt on CPU; the prefix cache computes it once).
RUBRIC = {
    "en": (
        "You rate the text of image-text training data for a vision-language model, from 0 to 10. 10: it "
        "describes what is visible in the image (objects, people, colours, actions, setting), specific, "
        "informative and fluent. 0: not a description: a file name, a list of keywords, an advert or opinion, "
        "boilerplate such as 'stock photo' or 'click to enlarge', repeated words, a fragment, text about "
        "something else, or unsafe text. Reply with one integer from 0 to 10 only."
    ),
    "zh": (
        "你为视觉语言模型的图文训练数据打分，0到10分。10分：具体、通顺、信息丰富地描述图中可见的内容（物体、人物、"
        "颜色、动作、场景）。0分：不是描述：文件名、关键词列表、广告或个人观点、“图片来源网络”“点击查看大图”之类的"
        "套话、重复的词语、残缺的片段、与图片无关的内容或不安全的内容。只回答一个0到10的整数。"
    ),
}
LABEL = {("en", "caption"): "Caption", ("en", "answer"): "Answer", ("zh", "caption"): "描述", ("zh", "answer"): "回答"}
QE_SYSTEM = (
    "You check English to Chinese translations of image descriptions, from 0 to 10. 10: the Chinese says exactly "
    "what the English says, nothing missing, added or changed. Lower for any changed number, colour, object or "
    "negation, a dropped or added part, a cut-off ending, or English left untranslated. 0: unrelated. Reply with "
    "one integer from 0 to 10 only."
)
BACK_SYSTEM = "Translate the user's Chinese text into English. Reply with the translation only."

SCORE = re.compile(r"(?<![\d.])(10|\d)(?:\s*(?:/|分|out of)\s*10)?(?![\d.])")
FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def quality_messages(text: str, lang: str, kind: str = "caption") -> list[dict[str, str]]:
    """Chat messages asking for the rubric's 0-10 score of one caption or answer, in its language (en or zh)."""
    lang = "zh" if lang == "zh" else "en"
    label = LABEL[(lang, "answer" if kind == "answer" else "caption")]
    return [{"role": "system", "content": RUBRIC[lang]}, {"role": "user", "content": f"{label}: {text}"}]


def qe_messages(en: str, zh: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": QE_SYSTEM}, {"role": "user", "content": f"English: {en}\nChinese: {zh}"}]


def back_messages(zh: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": BACK_SYSTEM}, {"role": "user", "content": zh}]


def parse_score(text: str, top: int = 10) -> int | None:
    """The first integer 0..top the model wrote ("7", "Score: 8/10", "８分"), or None when there is none."""
    for m in SCORE.finditer(text.translate(FULL_WIDTH_DIGITS)):
        value = int(m.group(1))
        if value <= top:
            return value
    return None


# ---------------------------------------------------------------- chrF


def _char_ngrams(text: str, n: int) -> Counter[str]:
    s = "".join(text.split())  # chrF ignores whitespace
    return Counter(s[i : i + n] for i in range(len(s) - n + 1))


def chrf(hypothesis: str, reference: str, order: int = 6, beta: float = 2.0) -> float:
    """Sentence chrF (Popović 2015; sacreBLEU's defaults: character n-grams 1..6, beta 2, whitespace removed),
    0-100. Matches `sacrebleu.sentence_chrf(h, [r]).score` on ordinary text."""
    precisions, recalls = [], []
    for n in range(1, order + 1):
        hyp, ref = _char_ngrams(hypothesis, n), _char_ngrams(reference, n)
        if not hyp or not ref:
            continue
        common = sum((hyp & ref).values())
        precisions.append(common / sum(hyp.values()))
        recalls.append(common / sum(ref.values()))
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    return round(100 * (1 + beta**2) * p * r / (beta**2 * p + r), 4)


# ---------------------------------------------------------------- cache


class ScoreCache:
    """Content-addressed scores, as the translation cache: (kind, text, version, method) within the engine's
    scope (engine, server, model), one JSON file each, written atomically."""

    def __init__(self, storage: str | None, engine: Engine):
        self.root = join(storage or default_root(), "cache", "quality")
        self.scope = {"engine": engine.name, "server": engine.server, "model": engine.model}
        self.hits = self.misses = 0

    def key(self, kind: str, version: str, method: str, text: str) -> str:
        parts = [kind, version, method, text, *self.scope.values()]
        return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()

    def _path(self, key: str) -> str:
        return join(self.root, key[:2], f"{key}.json")

    def get(self, kind: str, version: str, method: str, text: str) -> float | None:
        path = self._path(self.key(kind, version, method, text))
        if exists(path):
            value = json.loads(read_bytes(path)).get("score")
            if isinstance(value, (int, float)):
                self.hits += 1
                return float(value)
        self.misses += 1
        return None

    def put(self, kind: str, version: str, method: str, text: str, score: float, **extra: Any) -> None:
        record = {"kind": kind, "version": version, "method": method, "text": text, "score": score}
        record.update(self.scope, **extra)
        write_bytes_atomic(
            self._path(self.key(kind, version, method, text)), json.dumps(record, ensure_ascii=False).encode()
        )


# ---------------------------------------------------------------- the judge


class Judge:
    """Scores texts in batches through one engine (the translate stage's engines), cache first.

    `scoring`: "logits" (expected value from the next-token probabilities: transformers, or an OpenAI-compatible
    server that returns `top_logprobs`, as vLLM does), "text" (parse the generated integer; any engine) or "auto"
    (logits in process with transformers, text on a server)."""

    def __init__(
        self,
        engine: Engine,
        cache: ScoreCache | None = None,
        *,
        batch_size: int = 16,
        scoring: str = "auto",
        max_new_tokens: int = 6,
        back_max_new_tokens: int = 160,
    ):
        has_logits = callable(getattr(engine, "expected_scores", None))
        if scoring == "logits" and not has_logits:
            raise ValueError(f"scoring 'logits' needs the transformers or openai engine, not {engine.name}")
        self.engine, self.cache, self.batch_size = engine, cache, batch_size
        # auto: logits in process; a server's log-probabilities only when asked for (not every server has them)
        by_logits = scoring == "logits" or (scoring == "auto" and has_logits and engine.name == "transformers")
        self.method = "logits" if by_logits else "text"
        self.max_new_tokens, self.back_max_new_tokens = max_new_tokens, back_max_new_tokens
        self.llm_calls = 0
        self.unparsed = 0  # answers in which no score was found (text scoring)

    @property
    def model(self) -> str:
        return self.engine.model

    def _run(
        self, kind: str, version: str, keys: Sequence[str], build: Callable[[int], list[dict[str, str]]], scale: float
    ) -> list[float | None]:
        """Scores (0..10 * scale) of keys[i] (the cache's text), asking with build(i) for those not cached."""
        out: list[float | None] = [None] * len(keys)
        todo = []
        for i, key in enumerate(keys):
            hit = self.cache.get(kind, version, self.method, key) if self.cache else None
            if hit is not None:
                out[i] = hit
            else:
                todo.append(i)
        todo.sort(key=lambda i: len(keys[i]))  # similar lengths batched together: less padding
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            batch = [build(i) for i in chunk]
            self.llm_calls += len(chunk)
            if self.method == "logits":
                values: list[float | None] = list(self.engine.expected_scores(batch))  # type: ignore[attr-defined]
            else:
                answers = self.engine.generate(batch, max_new_tokens=self.max_new_tokens, temperature=0.0)
                values = [None if a.error else parse_score(a.text) for a in answers]
                self.unparsed += sum(v is None for v in values)
            for i, v in zip(chunk, values, strict=True):
                if v is None:
                    continue
                out[i] = round(float(v) * scale, 4)
                if self.cache:
                    self.cache.put(kind, version, self.method, keys[i], out[i])
        return out

    def quality(self, items: Sequence[tuple[str, str, str]]) -> list[float | None]:
        """0-10 (float) for each (text, lang, kind): lang "en" or "zh", kind "caption" or "answer"."""
        keys = [f"{lang}\x00{kind}\x00{text}" for text, lang, kind in items]
        return self._run("quality", RUBRIC_VERSION, keys, lambda i: quality_messages(*items[i]), 1.0)

    def translation_qe(self, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
        """0-100 for each (English, Chinese) pair: the 0-10 judgement scaled by 10."""
        keys = [f"{en}\x00{zh}" for en, zh in pairs]
        return self._run("qe", QE_VERSION, keys, lambda i: qe_messages(*pairs[i]), 10.0)

    def back_chrf(self, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
        """chrF (0-100) of each Chinese text translated back to English against the English source; None where
        the model gave nothing. Generates (slow on CPU); cached by the pair."""
        out: list[float | None] = [None] * len(pairs)
        todo = []
        for i, (en, zh) in enumerate(pairs):
            hit = self.cache.get("back", BACK_VERSION, "chrf", f"{en}\x00{zh}") if self.cache else None
            if hit is not None:
                out[i] = hit
            else:
                todo.append(i)
        todo.sort(key=lambda i: len(pairs[i][1]))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            answers = self.engine.generate(
                [back_messages(pairs[i][1]) for i in chunk], max_new_tokens=self.back_max_new_tokens, temperature=0.0
            )
            self.llm_calls += len(chunk)
            for i, a in zip(chunk, answers, strict=True):
                if a.error or not a.text.strip():
                    continue
                en, zh = pairs[i]
                out[i] = chrf(a.text, en)
                if self.cache:
                    self.cache.put("back", BACK_VERSION, "chrf", f"{en}\x00{zh}", out[i], back=a.text)
        return out


def combined_quality(llm: float | None, rule_reasons: Sequence[str]) -> float | None:
    """What the pipeline keeps, as one score: 0 when a rule fires (the `text` stage rejects it), else the LLM's."""
    return 0.0 if rule_reasons else llm


def combined_translation(qe: float | None, back: float | None, rule_failure: str | None) -> float | None:
    """0 when the translate stage's validation fails; else QE, averaged with the back-translation chrF when
    there is one."""
    if rule_failure is not None:
        return 0.0
    if qe is None or back is None:
        return qe if back is None else back
    return round((qe + back) / 2, 4)
