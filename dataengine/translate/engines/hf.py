"""In-process generation with transformers: a local Hugging Face folder or a GGUF file, offline, batched with
left padding; bf16 on GPU, float32 on CPU; `trust_remote_code` only when configured."""

from __future__ import annotations

import os
from typing import Any

from dataengine.translate.engines import Completion, Engine, EngineError


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self,
        model: str,
        storage: str | None = None,
        device: str | None = None,
        trust_remote_code: bool = False,
        num_threads: int | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from dataengine.models import ModelError, resolve_model

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            local = resolve_model(model, storage)
        except ModelError as exc:
            raise EngineError(str(exc)) from None
        self.model = local.name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if num_threads:
            torch.set_num_threads(num_threads)
        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": True}
        if local.gguf_file:
            kw["gguf_file"] = local.gguf_file
        self.tokenizer = AutoTokenizer.from_pretrained(local.path, **kw)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.lm = AutoModelForCausalLM.from_pretrained(local.path, dtype=dtype, **kw).to(self.device).eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = {i for i in [self.tokenizer.eos_token_id, *(_eos_list(self.lm))] if i is not None}

    def generate(
        self, batch: list[list[dict[str, str]]], *, max_new_tokens: int, temperature: float
    ) -> list[Completion]:
        import torch

        prompts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.inference_mode():
            out = self.lm.generate(
                **enc, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id, **sampling
            )
        results = []
        for i, row in enumerate(out[:, enc["input_ids"].shape[1] :].tolist()):
            stop = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
            tokens = row if stop is None else row[:stop]
            results.append(
                Completion(
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True).strip(),
                    finish_reason="length" if stop is None else "stop",
                    prompt_tokens=int(enc["attention_mask"][i].sum()),
                    completion_tokens=len(tokens),
                )
            )
        return results


def _eos_list(model: Any) -> list[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    return eos if isinstance(eos, list) else [eos]
