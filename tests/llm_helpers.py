"""Test helpers for translation: a tiny random chat LLM built from a config (no download), and a real local
HTTP server speaking the OpenAI chat-completions protocol with a scripted dictionary model."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_llm(path: Path, weight_std: float | None = None) -> Path:
    """A 2-layer Qwen2 with hidden size 32 and a byte-level BPE tokenizer trained on a few strings; with
    `weight_std`, every weight drawn from N(0, std) (seed 1) so that outputs depend on the input."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [
        "A red car parked on the street.",
        "一辆红色的汽车停在街上。",
        "Text for translation: a dog",
        "You are a professional translator.",
        "草地上有一只狗。",
        "<image> ⟦0⟧ 12 3.5",
    ] * 20
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>")
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=fast.vocab_size + 8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    model = Qwen2ForCausalLM(config)
    if weight_std is not None:
        torch.manual_seed(1)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, weight_std)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def build_tiny_gguf(path: Path) -> Path:
    """The tiny model (large random weights) written as a float32 GGUF file with its BPE tokenizer, as llama.cpp
    lays one out (gguf's tensor-name map for qwen2), for the registry's GGUF -> folder conversion."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = build_tiny_llm(path / "src", weight_std=1.0)
    lm, tok = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32), AutoTokenizer.from_pretrained(src)
    cfg = lm.config
    out = path / "tiny.gguf"
    w = gguf.GGUFWriter(str(out), "qwen2")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    state = json.loads(tok.backend_tokenizer.to_str())
    tokens = [f"[UNUSED{i}]" for i in range(cfg.vocab_size)]  # the embedding has a few rows past the vocabulary
    types = [gguf.TokenType.UNUSED] * cfg.vocab_size
    for text, i in state["model"]["vocab"].items():
        tokens[i], types[i] = text, gguf.TokenType.NORMAL
    for added in state["added_tokens"]:
        tokens[added["id"]], types[added["id"]] = added["content"], gguf.TokenType.CONTROL
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]])
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_chat_template(tok.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, cfg.num_hidden_layers)
    for key, tensor in lm.state_dict().items():
        if key != "lm_head.weight":  # tied to the embedding
            w.add_tensor(names.get_name(key, try_suffixes=(".weight", ".bias")), tensor.numpy().astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


DICTIONARY = {
    "A red car parked on the street.": "一辆红色的汽车停在街上。",
    "A dog runs on the grass with 2 balls.": "一只狗带着2个球在草地上奔跑。",
    "What is in the picture?": "图片里有什么？",
    "A cat sleeping on a sofa.": "一只猫睡在沙发上。",
    "A photo of Paris at night, see ⟦0⟧": "巴黎夜景照片，见⟦0⟧",
    "Say hello": "Here is the translation: 你好",  # always fails validation (preamble)
}


class ScriptedLLM:
    """A real HTTP server on 127.0.0.1 answering /v1/chat/completions from DICTIONARY (unknown text echoes
    back, which validation rejects). `fail_next` makes the next N requests answer 503, `garble_next` answer
    200 with a body that is not JSON; text in REFUSED gets HTTP 400, as a server refuses an over-long prompt,
    and text in ERROR_BODY a 200 carrying only an error object."""

    REFUSED = {"An impossibly long caption."}
    ERROR_BODY = {"A caption the server chokes on."}

    def __init__(self) -> None:
        self.requests = 0
        self.fail_next = 0
        self.garble_next = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                return

            def do_GET(self):
                body = {"object": "list", "data": [{"id": "scripted", "object": "model"}]}
                self._send(200, body)

            def do_POST(self):
                with outer.lock:
                    outer.requests += 1
                if not self.path.endswith("/v1/chat/completions"):
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    fail = outer.fail_next > 0
                    outer.fail_next -= 1 if fail else 0
                    garble = outer.garble_next > 0
                    outer.garble_next -= 1 if garble else 0
                if fail:
                    return self._send(503, {"error": {"message": "overloaded"}})
                if garble:
                    return self._send(200, None, raw=b"<html>upstream hiccup</html>")
                text = re.sub(r"(?s)^.*Text for translation: ", "", payload["messages"][-1]["content"])
                if text in outer.REFUSED:
                    return self._send(400, {"error": {"message": "maximum context length exceeded"}})
                if text in outer.ERROR_BODY:
                    return self._send(200, {"error": {"message": "internal"}})
                answer = DICTIONARY.get(text, text)
                self._send(
                    200,
                    {
                        "choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": len(answer)},
                    },
                )

            def _send(self, code, body, raw=None):
                data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
