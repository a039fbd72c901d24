"""The scorer model: transformers' native `InternVLForConditionalGeneration` plus its tokenizer and our prompts.

Two sources: a local "-hf" checkpoint folder (e.g. InternVL3-1B-hf; offline, bf16 on GPU, float32 on CPU,
`trust_remote_code` off unless asked), or the `tiny` preset built from a config with a word-level tokenizer
trained on the given texts (no download; for tests, the demo and the CPU proof). The image prompt is built
here, not by `InternVLProcessor` (which needs torchvision): `<img>` + `<IMG_CONTEXT>` x tokens-per-tile x tiles
+ `</img>`, with pixel values from our own 448px tiles.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"
PROMPT_VERSION = "vqascore-v1"
# the VQAScore question and the caption-likelihood instruction, per caption language; answers are one token
QUESTIONS = {
    "en": 'Does this image show "{caption}"? Please answer yes or no.',
    "zh": "这张图片是否显示了“{caption}”？请回答是或否。",
}
DESCRIBE = {"en": "Describe the image.", "zh": "描述这张图片。"}
ANSWERS = {"en": ("Yes", "No"), "zh": ("是", "否")}
META_FILE = "scorer.json"
TINY = {  # a model small enough to train on two CPU cores in minutes (see docs/scoring.md)
    "vision": {"hidden_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 192,
               "patch_size": 32, "image_size": 448},
    "text": {"hidden_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
             "intermediate_size": 192, "max_position_embeddings": 2048},
}  # fmt: skip


@dataclass
class ScorerMeta:
    """What a saved scorer needs besides weights: identity, tile policy, prompt version (scorer.json)."""

    name: str
    version: str = "v1"
    base: str = "tiny"
    tiles: str = "all"  # all | thumbnail: which tiles of a sample the model sees
    max_tiles: int = 12
    prompt_version: str = PROMPT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"


def torch_dtype(device: str) -> Any:
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def build_tokenizer(texts: list[str]) -> Any:
    """A word-level tokenizer (lower-cased words, one token per CJK character) over `texts` and our prompts."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", IMG_START, IMG_END, IMG_CONTEXT]
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[\u2e80-\u9fff\uff00-\uffef\u3000-\u303f]"), "isolated"),
            pre_tokenizers.Whitespace(),
        ]
    )
    prompts = [*QUESTIONS.values(), *DESCRIBE.values(), *(a for pair in ANSWERS.values() for a in pair)]
    trainer = trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1)
    tok.train_from_iterator([*prompts, *texts], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        extra_special_tokens={"image_token": IMG_CONTEXT, "boi_token": IMG_START, "eoi_token": IMG_END},
        padding_side="right",
    )


def build_tiny(texts: list[str], seed: int = 0) -> tuple[Any, Any]:
    """(model, tokenizer) of the tiny preset: a randomly initialised InternVL built from a config."""
    import torch
    from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLVisionConfig, Qwen2Config

    tokenizer = build_tokenizer(texts)
    v = TINY["vision"]
    vision = InternVLVisionConfig(
        hidden_size=v["hidden_size"],
        num_hidden_layers=v["num_hidden_layers"],
        num_attention_heads=v["num_attention_heads"],
        intermediate_size=v["intermediate_size"],
        image_size=[v["image_size"]] * 2,
        patch_size=[v["patch_size"]] * 2,
    )
    text = Qwen2Config(vocab_size=len(tokenizer), tie_word_embeddings=True, **TINY["text"])
    per_tile = int((v["image_size"] // v["patch_size"]) ** 2 * 0.25)
    config = InternVLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMG_CONTEXT),
        image_seq_length=per_tile,
        downsample_ratio=0.5,
    )
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    grid = v["image_size"] // v["patch_size"]
    with torch.no_grad():  # transformers starts them at zero: from scratch, where things are must be learnt first
        pos = model.model.vision_tower.embeddings.position_embeddings
        pos[0, 1:] = torch.from_numpy(sincos_2d(grid, v["hidden_size"]))
    return model, tokenizer


def sincos_2d(grid: int, dim: int) -> np.ndarray:
    """(grid*grid, dim) fixed 2D sine-cosine position codes (half the channels for the row, half for the column,
    as MAE initialises a ViT trained from scratch), so the tiny scorer knows where each patch is from step one:
    its captions say "to the left of" and "above"."""
    quarter = dim // 4
    freqs = 1.0 / 10000 ** (np.arange(quarter) / quarter)
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    parts = []
    for coord in (rows.reshape(-1), cols.reshape(-1)):
        angles = coord[:, None] * freqs[None, :]
        parts += [np.sin(angles), np.cos(angles)]
    return np.concatenate(parts, axis=1).astype(np.float32)


class ScorerModel:
    """A loaded scorer: model, tokenizer, prompt building and the forward pass shared by scoring and training."""

    def __init__(self, model: Any, tokenizer: Any, meta: ScorerMeta, device: str = "cpu"):
        self.model, self.tokenizer, self.meta, self.device = model, tokenizer, meta, device
        cfg = model.config
        self.image_token_id = cfg.image_token_id
        if tokenizer.convert_tokens_to_ids(IMG_CONTEXT) != self.image_token_id:
            raise ValueError(f"tokenizer's {IMG_CONTEXT} id does not match config.image_token_id")
        self.tokens_per_tile = int(cfg.image_seq_length)
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self.answer_ids = {lang: tuple(self._one_token(a) for a in pair) for lang, pair in ANSWERS.items()}

    def _one_token(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        return ids[0]

    # ------------------------------------------------------------------ prompts
    def user_prompt(self, n_tiles: int, text: str) -> str:
        """The text before the answer: our image block and `text`, in the checkpoint's chat template if any."""
        block = IMG_START + IMG_CONTEXT * (self.tokens_per_tile * n_tiles) + IMG_END
        if self.chat:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": f"{block}\n{text}"}], tokenize=False, add_generation_prompt=True
            )
        return f"{block}\n{text}\n"

    def select_tiles(self, tiles: list[Any]) -> list[Any]:
        """The tiles this model sees: all (capped at max_tiles, thumbnail kept) or the thumbnail alone."""
        if self.meta.tiles == "thumbnail" or len(tiles) == 1:
            return tiles[-1:]
        if len(tiles) > self.meta.max_tiles:
            return [*tiles[: self.meta.max_tiles - 1], tiles[-1]]
        return tiles

    # ------------------------------------------------------------------ forward
    def image_features(self, pixel_values: np.ndarray | Any) -> Any:
        """(tiles, tokens_per_tile, hidden) visual tokens for a stack of tiles."""
        import torch

        pv = torch.as_tensor(pixel_values).to(self.device, dtype=self.model.dtype)
        return self.model.model.get_image_features(pixel_values=pv).pooler_output

    def logits(self, features: list[Any], prompts: list[str], continuations: list[str] | None = None) -> tuple:
        """Run the language model on `prompts` (+ `continuations`), each with its sample's visual tokens.

        Returns (logits, input_ids, attention_mask, prompt_lengths); sequences are right-padded."""
        import torch

        tok = self.tokenizer
        prompt_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        ids = [
            p + (tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] if continuations else [])
            for p, c in zip(prompt_ids, continuations or [None] * len(prompts), strict=True)
        ]
        width = max(map(len, ids))
        input_ids = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, seq in enumerate(ids):
            input_ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        embeds = self.model.get_input_embeddings()(input_ids)
        visual = torch.cat([f.reshape(-1, f.shape[-1]) for f in features]).to(embeds.dtype)
        slots = input_ids == self.image_token_id
        if int(slots.sum()) != visual.shape[0]:
            raise ValueError(f"{int(slots.sum())} image slots but {visual.shape[0]} visual tokens")
        embeds = embeds.masked_scatter(slots.unsqueeze(-1), visual)
        out = self.model(inputs_embeds=embeds, attention_mask=mask)
        return out.logits, input_ids, mask, [len(p) for p in prompt_ids]

    def yes_logprobs(self, features: list[Any], captions: list[str], langs: list[str]) -> tuple[Any, Any]:
        """(log P(yes), log P(no)) of the first answer token, softmax over the whole vocabulary (VQAScore)."""
        import torch

        prompts = [
            self.user_prompt(f.shape[0], QUESTIONS[lang].format(caption=c))
            for f, c, lang in zip(features, captions, langs, strict=True)
        ]
        logits, _, mask, _ = self.logits(features, prompts)
        last = logits[torch.arange(len(prompts)), mask.sum(1) - 1].float().log_softmax(-1)
        yes = torch.tensor([self.answer_ids[lang][0] for lang in langs], device=last.device)
        no = torch.tensor([self.answer_ids[lang][1] for lang in langs], device=last.device)
        return last.gather(1, yes[:, None])[:, 0], last.gather(1, no[:, None])[:, 0]

    def caption_logprob(self, features: list[Any], captions: list[str], langs: list[str]) -> Any:
        """Mean log-probability of each caption's tokens (and EOS) given the image."""

        prompts = [self.user_prompt(f.shape[0], DESCRIBE[lang]) for f, lang in zip(features, langs, strict=True)]
        logits, input_ids, mask, plen = self.logits(features, prompts, captions)
        logp = logits[:, :-1].float().log_softmax(-1).gather(2, input_ids[:, 1:, None])[..., 0]
        target = mask[:, 1:].clone()
        for i, n in enumerate(plen):
            target[i, : n - 1] = 0
        return (logp * target).sum(1) / target.sum(1).clamp(min=1)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str) -> None:
        """Weights (safetensors), config, tokenizer and scorer.json into a local folder."""
        os.makedirs(path, exist_ok=True)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        with open(os.path.join(path, META_FILE), "w", encoding="utf-8") as f:
            json.dump(self.meta.__dict__, f, indent=2)


def load(
    path: str,
    device: str | None = None,
    trust_remote_code: bool = False,
    meta: ScorerMeta | None = None,
    dtype: Any = None,
) -> ScorerModel:
    """A scorer from a local folder: one of ours (with scorer.json) or a plain InternVL "-hf" checkpoint; in
    `dtype` when given, else bf16 on GPU and float32 on CPU."""
    import torch
    from transformers import AutoTokenizer, InternVLForConditionalGeneration

    if not os.path.isdir(path):
        raise FileNotFoundError(f"scorer checkpoint folder not found: {path}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    meta_path = os.path.join(path, META_FILE)
    if meta is None and os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            meta = ScorerMeta(**json.load(f))
    meta = meta or ScorerMeta(name=os.path.basename(os.path.normpath(path)), base=path, tiles="all", max_tiles=6)
    model = InternVLForConditionalGeneration.from_pretrained(
        path, dtype=dtype or torch_dtype(device), local_files_only=True, trust_remote_code=trust_remote_code
    ).to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "right"
    return ScorerModel(model, tokenizer, meta, device)


def resolve_checkpoint(ref: str, storage: str) -> str:
    """NAME[:VERSION] trained into `<storage>/models/NAME/VERSION/model` (latest version when omitted), or a
    local checkpoint folder as is."""
    if os.path.isdir(ref):
        return ref
    name, _, version = ref.partition(":")
    for part in (name, version or "v"):  # names as `train scorer` makes them: nothing outside storage/models
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", part) or set(part) == {"."}:
            raise FileNotFoundError(f"scorer {ref!r}: not a folder, and not a NAME[:VERSION] of letters, digits, _.-")
    root = os.path.join(storage, "models", name)
    versions = sorted(
        (
            v
            for v in (os.listdir(root) if os.path.isdir(root) else [])
            if os.path.exists(os.path.join(root, v, "model", META_FILE))
        ),
        key=lambda v: os.path.getmtime(os.path.join(root, v, "model", META_FILE)),
    )
    if version:
        if version not in versions:
            raise FileNotFoundError(f"scorer {ref!r}: no trained version {version!r} under {root} (have: {versions})")
        return os.path.join(root, version, "model")
    if not versions:
        raise FileNotFoundError(
            f"scorer {ref!r}: not a folder and no trained model under {root}; train one with `dataengine train scorer`"
        )
    return os.path.join(root, versions[-1], "model")
