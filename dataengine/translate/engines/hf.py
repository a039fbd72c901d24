"""In-process generation with transformers: a local Hugging Face folder or a GGUF file, offline, batched with
left padding; bf16 on GPU, float32 on CPU; `trust_remote_code` only when configured.

Every request starts with the same system prompt, so by default its key/value cache is computed once per
engine and reused (prefix caching, as vLLM does): each row of a batch is laid out as
`[shared prefix][padding][own suffix]`, the padding masked out, positions counted over real tokens only.
Rows that have finished leave the batch at once (as in vLLM), instead of decoding padding until the batch's
longest row ends: `generate` stops at the first end-of-sequence and goes on from the cache without that row.
On CPU, float32 linear layers run on oneDNN with their weights converted once at load (`aten.mkldnn_linear`):
the default BLAS path costs about twice as much for a few rows as for one, oneDNN far less (BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from typing import Any

from dataengine.translate.engines import Completion, Engine, EngineError

_SENTINEL = "\u27ea\u27eb"  # stands in for the last message's text to find where the shared prefix ends
_PREFIXES_KEPT = 8


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self,
        model: str,
        storage: str | None = None,
        device: str | None = None,
        trust_remote_code: bool = False,
        num_threads: int | None = None,
        prefix_cache: bool = True,
        drop_finished: bool = True,
        onednn: bool = True,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from dataengine.models import ModelError, require_gguf, resolve_model

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            local = resolve_model(model, storage)
            if local.gguf_file:
                require_gguf(local.name)  # before any loading: transformers fails deep inside without it
        except ModelError as exc:
            raise EngineError(str(exc)) from None
        self.model = local.name
        self.server = local.origin or os.path.join(local.path, local.gguf_file or "")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if num_threads:
            torch.set_num_threads(num_threads)
        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": True}
        if local.gguf_file:
            kw["gguf_file"] = local.gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(local.path, **kw)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        if local.gguf_file:  # every block de-quantised, never left packed for a kernel (oneDNN swaps the layers)
            from transformers import GgufConfig

            kw["quantization_config"] = GgufConfig(gguf_file=local.gguf_file, dequantize=True)
        self.lm = AutoModelForCausalLM.from_pretrained(local.path, dtype=dtype, **kw).to(self.device).eval()
        self.onednn_linears = _to_onednn(self.lm) if onednn and self.device == "cpu" else 0
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = {i for i in [self.tokenizer.eos_token_id, *(_eos_list(self.lm))] if i is not None}
        self.prefix_cache = prefix_cache
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.prefix_hits = 0  # rows whose shared prefix came from the cache
        self.drop_finished = drop_finished
        self.row_steps = 0  # tokens decoded, counting those of rows that had already ended

    def generate(
        self, batch: list[list[dict[str, str]]], *, max_new_tokens: int, temperature: float
    ) -> list[Completion]:
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        rows = [self._split(m) for m in batch]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prefix, _) in enumerate(rows):
            groups.setdefault(prefix, []).append(i)
        results: list[Completion | None] = [None] * len(batch)
        for prefix, members in groups.items():
            suffixes = [rows[i][1] for i in members]
            for i, out in zip(members, self._generate(prefix, suffixes, max_new_tokens, sampling), strict=True):
                results[i] = out
        return [r for r in results if r is not None]

    def expected_scores(self, batch: list[list[dict[str, str]]]) -> list[float]:
        """For each conversation, the expected value of the integer 0..10 the model would answer, from its
        next-token probabilities over the digit tokens (one forward pass, no generation; the shared prefix's
        key/value cache reused as in `generate`). "10" and "1" share their first token: one more step after
        "1" splits that mass by the probability of "0" next. Much finer than the parsed answer of a small model,
        which puts most samples on one or two values."""
        rows = [self._split(m) for m in batch]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prefix, _) in enumerate(rows):
            groups.setdefault(prefix, []).append(i)
        results = [0.0] * len(batch)
        for prefix, members in groups.items():
            for i, value in zip(members, self._expected(prefix, [rows[i][1] for i in members]), strict=True):
                results[i] = value
        return results

    def _digit_ids(self) -> list[int]:
        ids = [self.tokenizer(str(d), add_special_tokens=False)["input_ids"] for d in range(10)]
        if any(len(i) != 1 for i in ids):
            raise EngineError(f"model {self.model}: digits are not single tokens; score by parsing text instead")
        return [i[0] for i in ids]

    def _expected(self, prefix: tuple[int, ...], suffixes: list[list[int]]) -> list[float]:
        import torch
        from transformers import DynamicCache

        digits = self._digit_ids()
        n, width = len(suffixes), max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in suffixes], device=self.device)
        mask = torch.tensor(
            [[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=self.device
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if prefix:
            kv = copy.deepcopy(self._prefix_kv(prefix))
            kv.batch_repeat_interleave(n)
        else:
            kv = DynamicCache(config=self.lm.config)
        with torch.inference_mode():
            out = self.lm(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions[:, len(prefix) :],
                cache=kv,
                use_cache=True,
                logits_to_keep=1,
            )
            first = torch.softmax(out.logits[:, -1].float(), dim=-1)[:, digits]
            one = torch.full((n, 1), digits[1], device=self.device)
            after_one = self.lm(
                input_ids=one,
                attention_mask=torch.cat([mask, mask.new_ones((n, 1))], dim=1),
                position_ids=positions[:, -1:] + 1,
                cache=out.cache,
                use_cache=True,
                logits_to_keep=1,
            )
            ten = torch.softmax(after_one.logits[:, -1].float(), dim=-1)[:, digits[0]]  # P("0" | "1")
        q = first / first.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        values = torch.arange(10, dtype=q.dtype, device=q.device)
        expected = (q * values).sum(dim=-1) + q[:, 1] * ten * 9  # "1" read as 10 with probability P("0" | "1")
        return [round(float(v), 4) for v in expected.cpu()]

    def _split(self, messages: list[dict[str, str]]) -> tuple[tuple[int, ...], list[int]]:
        """(shared prefix ids, the rest): the prefix is the templated prompt up to where the last message's text
        begins (system prompt and role markers), when it tokenizes the same alone as inside the whole prompt."""
        tok = self.tokenizer
        full = tok(_render(tok, messages), add_special_tokens=False)["input_ids"]
        if not self.prefix_cache:
            return (), full
        probe = [*messages[:-1], {**messages[-1], "content": _SENTINEL}]
        text = _render(tok, probe)
        cut = text.find(_SENTINEL)
        prefix = tok(text[:cut], add_special_tokens=False)["input_ids"] if cut > 0 else []
        if not prefix or full[: len(prefix)] != prefix or len(full) == len(prefix):
            return (), full
        return tuple(prefix), full[len(prefix) :]

    def _prefix_kv(self, prefix: tuple[int, ...]) -> Any:
        """The key/value cache of `prefix` (batch of one), computed once and kept for the next requests."""
        import torch
        from transformers import DynamicCache

        if prefix in self._prefixes:
            self._prefixes.move_to_end(prefix)
            return self._prefixes[prefix]
        ids = torch.tensor([prefix], device=self.device)
        with torch.inference_mode():
            kv = self.lm(input_ids=ids, cache=DynamicCache(config=self.lm.config), use_cache=True)
        self._prefixes[prefix] = kv.cache
        while len(self._prefixes) > _PREFIXES_KEPT:
            self._prefixes.popitem(last=False)
        return kv.cache

    def _generate(
        self, prefix: tuple[int, ...], suffixes: list[list[int]], max_new_tokens: int, sampling: dict[str, Any]
    ) -> list[Completion]:
        import torch

        width = max(map(len, suffixes))
        pad = self.tokenizer.pad_token_id
        ids = [[*prefix, *[pad] * (width - len(s)), *s] for s in suffixes]
        mask = [[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes]
        kv = None
        if prefix:
            cached = prefix in self._prefixes
            kv = copy.deepcopy(self._prefix_kv(prefix))
            kv.batch_repeat_interleave(len(suffixes))
            self.prefix_hits += len(suffixes) if cached else len(suffixes) - 1
        input_ids = torch.tensor(ids, device=self.device)
        attention_mask = torch.tensor(mask, device=self.device)
        rows = self._decode(input_ids, attention_mask, kv, max_new_tokens, sampling)
        results = []
        for i, row in enumerate(rows):
            stop = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
            tokens = row if stop is None else row[:stop]
            results.append(
                Completion(
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                    finish_reason="length" if stop is None else "stop",
                    prompt_tokens=sum(mask[i]),
                    completion_tokens=len(tokens),
                )
            )
        return results

    def _decode(
        self, input_ids: Any, attention_mask: Any, kv: Any, max_new_tokens: int, sampling: dict[str, Any]
    ) -> list[list[int]]:
        """The new tokens of every row. With `drop_finished`, each `generate` call stops when some row ends; the
        rows still going carry on from the same key/value cache (which then holds every token but the last)."""
        import torch
        from transformers import DynamicCache, StoppingCriteriaList

        n = input_ids.shape[0]
        new: list[list[int]] = [[] for _ in range(n)]
        live = list(range(n))  # batch row -> original row
        stop = StoppingCriteriaList([_any_row_ended(self.eos_ids)] if self.drop_finished else [])
        if kv is None and self.drop_finished:
            kv = DynamicCache(config=self.lm.config)
        while live:
            budget = max_new_tokens - len(new[live[0]])
            with torch.inference_mode():
                out = self.lm.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=budget,
                    pad_token_id=self.tokenizer.pad_token_id,
                    stopping_criteria=stop,
                    return_dict_in_generate=True,
                    **({"cache": kv} if kv is not None else {}),
                    **sampling,
                )
            fresh = out.sequences[:, input_ids.shape[1] :]
            self.row_steps += fresh.shape[0] * fresh.shape[1]
            going = []
            for b, row in enumerate(fresh.tolist()):
                new[live[b]].extend(row)
                if not any(t in self.eos_ids for t in row) and len(new[live[b]]) < max_new_tokens:
                    going.append(b)
            if not self.drop_finished or not going:
                break
            keep = torch.tensor(going, device=input_ids.device)
            kv = out.cache
            kv.batch_select_indices(keep)
            input_ids = out.sequences[keep]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(fresh.shape)], dim=1)[keep]
            live = [live[b] for b in going]
        return new


def _to_onednn(model: Any) -> int:
    """Swap every float32 `nn.Linear` of a CPU model for a oneDNN one with its weights converted once; returns
    how many were swapped (0 when oneDNN is unavailable). Tied weights (e.g. lm_head) become a separate copy."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return 0

    class OneDNNLinear(torch.nn.Module):
        def __init__(self, dense: torch.nn.Linear):
            super().__init__()
            self.out_features = dense.out_features
            self.register_buffer("weight", dense.weight.detach().to_mkldnn())
            self.register_buffer("bias", None if dense.bias is None else dense.bias.detach().to_mkldnn())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, x.shape[-1]).contiguous().to_mkldnn()
            y = torch.ops.aten.mkldnn_linear(flat, self.weight, self.bias).to_dense()
            return y.reshape(*x.shape[:-1], self.out_features)

    swapped = 0
    with torch.no_grad():
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, torch.nn.Linear) and child.weight.dtype == torch.float32:
                    setattr(module, name, OneDNNLinear(child))
                    swapped += 1
    return swapped


def _any_row_ended(eos_ids: set[int]) -> Any:
    """A stopping criterion that ends `generate` for the whole batch as soon as one row emits end-of-sequence."""
    import torch
    from transformers import StoppingCriteria

    eos = torch.tensor(sorted(eos_ids))

    class AnyRowEnded(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            ended = torch.isin(input_ids[:, -1], eos.to(input_ids.device)).any()
            return ended.expand(input_ids.shape[0]).clone()

    return AnyRowEnded()


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _eos_list(model: Any) -> list[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    return eos if isinstance(eos, list) else [eos]
