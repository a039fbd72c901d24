"""The scorer model through transformers' InternVL classes: prompt layout, scores, batching, save/load."""

from __future__ import annotations

import math
import os

import pytest
import torch
from conftest import encode, textured
from scorer_helpers import save_tiny_scorer, shapes_png

from dataengine.scorer.model import IMG_CONTEXT, IMG_END, IMG_START, ScorerMeta, load, resolve_checkpoint
from dataengine.scorer.scoring import Item, Scorer, micro_batches
from dataengine.shards import pixel_values
from dataengine.tiling import tile_encoded


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    return save_tiny_scorer(str(tmp_path_factory.mktemp("storage")))


def test_tiny_scorer_is_transformers_internvl(tiny_path):
    from transformers import InternVLForConditionalGeneration

    scorer = load(tiny_path, device="cpu")
    assert isinstance(scorer.model, InternVLForConditionalGeneration)
    assert scorer.model.dtype == torch.float32
    assert scorer.tokens_per_tile == 49  # 448 px, patch 32, pixel shuffle 0.5
    prompt = scorer.user_prompt(3, "hello")
    assert prompt.startswith(IMG_START + IMG_CONTEXT) and prompt.count(IMG_CONTEXT) == 3 * 49 and IMG_END in prompt
    ids = scorer.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids.count(scorer.image_token_id) == 3 * 49


def test_tile_selection(tiny_path):
    scorer = load(tiny_path, device="cpu")
    tiles = [b"t0", b"t1", b"t2", b"t3", b"t4", b"thumb"]
    assert scorer.select_tiles(tiles) == [b"t0", b"t1", b"t2", b"thumb"]  # max_tiles 4, thumbnail kept
    scorer.meta.tiles = "thumbnail"
    assert scorer.select_tiles(tiles) == [b"thumb"]
    assert scorer.select_tiles([b"only"]) == [b"only"]


def test_scores_are_probabilities_and_batching_does_not_change_them(tiny_path):
    scorer = Scorer(load(tiny_path, device="cpu"), max_batch_tiles=5)
    items = []
    for seed in range(3):
        png, en, zh = shapes_png(seed)
        items.append(Item(tile_encoded(png).tiles, en, zh))
    wide = tile_encoded(encode(textured(1, (1200, 400))), max_tiles=6).tiles  # several tiles + thumbnail
    items.append(Item(wide, "a wide picture", None))
    items.append(Item(wide, None, "一张宽图"))
    together = scorer.score(items)
    alone = [scorer.score([it])[0] for it in items]
    for a, b in zip(together, alone, strict=True):
        for key, value in a.items():
            assert (value is None) == (b[key] is None)
            if value is not None:
                assert value == pytest.approx(b[key], abs=1e-4)
    for r in together[:3]:
        assert 0 < r["match_en"] < 1 and 0 < r["match_zh"] < 1
        assert r["translation_drift"] == pytest.approx(r["match_en"] - r["match_zh"], abs=1e-5)
        assert r["loglik_en"] < 0 and math.isfinite(r["loglik_zh"])
    assert together[3]["match_zh"] is None and together[3]["translation_drift"] is None
    assert together[4]["match_en"] is None and together[4]["match_zh"] is not None


def test_micro_batches_group_similar_tile_counts():
    groups = micro_batches([1, 13, 1, 7, 13, 1], max_tiles=14)
    assert [sorted(g) for g in groups] == [[0, 2, 3, 5], [1], [4]]  # 1+1+1+7 fit; 13s alone
    assert sorted(i for g in groups for i in g) == list(range(6))


def test_save_load_round_trip_and_resolution(tiny_path, tmp_path):
    storage = tiny_path.split("/models/")[0]
    assert resolve_checkpoint("tiny-test", storage) == tiny_path
    assert resolve_checkpoint("tiny-test:v1", storage) == tiny_path
    assert resolve_checkpoint(tiny_path, storage) == tiny_path
    with pytest.raises(FileNotFoundError, match="no trained version"):
        resolve_checkpoint("tiny-test:v9", storage)
    with pytest.raises(FileNotFoundError, match="train one"):
        resolve_checkpoint("nothing-here", storage)
    for escape in ("../../no-such-folder", "tiny-test:../../v1"):  # a name never leaves storage/models
        with pytest.raises(FileNotFoundError, match="NAME"):
            resolve_checkpoint(escape, storage)
    a = load(tiny_path, device="cpu")
    # a plain InternVL -hf folder (no scorer.json) loads too, with default tile settings
    a.model.save_pretrained(tmp_path / "plain")
    a.tokenizer.save_pretrained(tmp_path / "plain")
    b = load(str(tmp_path / "plain"), device="cpu")
    assert b.meta.name == "plain" and b.meta.tiles == "all"
    png, en, _ = shapes_png(7)
    pv = pixel_values(tile_encoded(png).tiles)
    with torch.no_grad():
        ya, _ = a.yes_logprobs([a.image_features(pv)], [en], ["en"])
        yb, _ = b.yes_logprobs([b.image_features(pv)], [en], ["en"])
    assert float(ya[0]) == pytest.approx(float(yb[0]), abs=1e-5)
    assert not os.path.exists(tmp_path / "plain" / "scorer.json")
    assert ScorerMeta(name="x").label == "x:v1"


def test_tiny_preset_starts_with_2d_position_codes(tiny_path):
    """transformers starts InternVL's vision position embeddings at zero; the tiny preset gives each patch a
    fixed 2D sine-cosine code instead: distinct per patch, with rows and columns in separate channels."""
    from dataengine.scorer.model import sincos_2d

    pos = load(tiny_path, device="cpu").model.model.vision_tower.embeddings.position_embeddings[0]
    codes = sincos_2d(14, 96)
    assert pos.shape == (197, 96) and not pos[0].any()  # the CLS token keeps no position
    torch.testing.assert_close(pos[1:], torch.from_numpy(codes))
    assert len({tuple(row) for row in codes.round(4).tolist()}) == 14 * 14
    same_row = codes.reshape(14, 14, 96)[3]  # one row of patches: identical row channels, different columns
    assert (same_row[:, :48] == same_row[0, :48]).all() and not (same_row[:, 48:] == same_row[0, 48:]).all()


def test_position_probe_finds_where_the_tiny_presets_visual_tokens_sit(tiny_path):
    """Untrained, the tiny preset's visual tokens still carry their sine-cosine position codes through the
    projector; shuffling the tokens within each picture destroys what the probe finds."""
    from dataengine.scorer import metrics

    scorer = load(tiny_path, device="cpu")
    tiles = [tile_encoded(shapes_png(seed)[0]).tiles for seed in range(12)]
    assert metrics.position_r2(scorer, tiles) > 0.5
    real = scorer.image_features
    scorer.image_features = lambda pv: real(pv)[:, torch.randperm(49)]
    assert metrics.position_r2(scorer, tiles) < 0.1


def test_projector_learning_rate_groups(tiny_path):
    from dataengine.scorer.train import TrainConfig, _param_groups

    scorer = load(tiny_path, device="cpu")
    projector = {id(p) for p in scorer.model.model.multi_modal_projector.parameters()}
    (one,) = _param_groups(scorer, TrainConfig())  # the default: one group in model order, as before the option
    assert [id(p) for p in one["params"]] == [id(p) for p in scorer.model.parameters()] and one["scale"] == 1.0
    rest, mine = _param_groups(scorer, TrainConfig(projector_lr_scale=0.1))
    assert {id(p) for p in mine["params"]} == projector and mine["scale"] == 0.1
    assert not projector & {id(p) for p in rest["params"]}
    scorer.model.model.multi_modal_projector.requires_grad_(False)  # what train_loop does at scale 0
    (frozen,) = _param_groups(scorer, TrainConfig(projector_lr_scale=0))
    assert not projector & {id(p) for p in frozen["params"]}


def test_per_kind_auc_ranks_negatives_against_their_own_pictures():
    """A kind's AUC compares its negatives with the matched captions of the same pictures only."""
    from dataengine.scorer import metrics

    examples = [
        {"pair": 0, "lang": "en", "text": "a", "label": 1, "kind": "match"},
        {"pair": 0, "lang": "en", "text": "b", "label": 0, "kind": "spatial"},
        {"pair": 1, "lang": "en", "text": "c", "label": 1, "kind": "match"},
        {"pair": 1, "lang": "en", "text": "d", "label": 0, "kind": "colour"},
    ]
    scores = {"match": [0.5, 0.6, 0.9, 0.1], "loglik": [0.0] * 4}
    result = metrics.aucs(examples, scores)
    # against all matched captions the spatial negative (0.6) would score 0.5; against its own picture it is 0.0
    assert result["auc_match_spatial"] == 0.0 and result["auc_match_colour"] == 1.0
