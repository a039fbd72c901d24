"""Hard negatives: one colour, count, object or spatial word changed, grammatical, in English and Chinese;
and the shapes world's captions describe what is drawn."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dataengine.core.rows import texts_of
from dataengine.sample_data.shapes import COLOURS, Group, Scene, render
from dataengine.scorer.examples import eval_examples, hard_negatives, is_heldout, matching_batch
from dataengine.scorer.lexicon import perturb, perturb_kind, spatial_kind


@pytest.mark.parametrize(
    ("text", "lang", "kind", "changed"),
    [
        ("a red circle to the left of two blue squares", "en", "colour", {"red", "blue"}),
        ("a red circle above a cat", "en", "object", {"circle", "cat"}),
        ("a red circle to the left of a tree", "en", "spatial", {"left"}),
        ("一个红色圆形在两个蓝色正方形的左边", "zh", "colour", {"红色", "蓝色"}),
        ("一个红色圆形在两个蓝色正方形的左边", "zh", "spatial", {"左"}),
        ("一个红色圆形在两个蓝色正方形的左边", "zh", "object", {"圆形", "正方形"}),
        ("一个红色圆形", "zh", "count", {"一"}),
        ("two red circles at the top", "en", "spatial", {"top"}),
        ("两个红色圆形在上面", "zh", "spatial", {"上"}),
    ],
)
def test_perturb_changes_one_word_of_the_class(text, lang, kind, changed):
    for seed in range(10):
        new = perturb_kind(text, lang, kind, random.Random(seed))
        assert new is not None and new != text
        if lang == "en":
            diff = [a for a, b in zip(text.split(), new.split(), strict=True) if a != b]
            assert len(diff) == 1 and diff[0] in changed


def test_count_change_keeps_english_grammatical():
    seen = set()
    for seed in range(40):
        new = perturb_kind("a red circle above two blue squares", "en", "count", random.Random(seed))
        seen.add(new)
        words = new.split()
        for count, noun in ((words[0], words[2]), (words[4], words[6])):
            assert (count in ("a", "an", "one")) == (not noun.endswith("s")), new
    assert len(seen) > 3
    # with no adjective the article agrees with the noun: no "an cat" for the model to learn as a tell
    texts = ("two cats", "two orange cats")
    singular = {perturb_kind(t, "en", "count", random.Random(s)) for t in texts for s in range(30)}
    assert {"a cat", "an orange cat"} <= singular and not {"an cat", "a orange cat"} & singular


def test_no_class_word_means_no_negative():
    assert perturb("an abstract painting", "en", random.Random(0)) is None
    assert perturb_kind("一幅抽象画", "zh", "colour", random.Random(0)) is None


def test_spatial_negatives_are_told_apart_as_position_or_relation():
    assert spatial_kind("a red circle to the left of a tree", "en") == "relation"
    assert spatial_kind("a cat below a blue star", "en") == "relation"
    assert spatial_kind("a red circle on the left", "en") == "position"
    assert spatial_kind("一个红色圆形在两个蓝色正方形的左边", "zh") == "relation"
    assert spatial_kind("一个红色圆形在左边", "zh") == "position"
    pairs = [
        {"en": "a red circle on the right", "zh": "一个红色圆形在右边", "tiles": []},
        {"en": "a red circle to the left of a tree", "zh": "一个红色圆形在树的左边", "tiles": []},
    ]
    kinds = {(r["pair"], r["kind"]) for r in eval_examples(pairs * 40) if r["label"] == 0}
    assert {k for p, k in kinds if p % 2 == 0} >= {"position"} and "relation" not in {
        k for p, k in kinds if p % 2 == 0
    }
    assert {k for p, k in kinds if p % 2 == 1} >= {"relation"} and "position" not in {
        k for p, k in kinds if p % 2 == 1
    }


def test_hard_negatives_change_both_languages_in_the_same_class():
    for seed in range(20):
        en, zh, kind = hard_negatives(
            "a red circle to the left of a blue star", "一个红色圆形在一个蓝色星形的左边", random.Random(seed)
        )
        assert en and zh and kind in ("colour", "count", "object", "spatial")
        assert en != "a red circle to the left of a blue star" and zh != "一个红色圆形在一个蓝色星形的左边"


def test_examples_split_and_batches():
    assert is_heldout("a", 0.999999) and not is_heldout("a", 1e-9)
    share = sum(is_heldout(f"id-{i}", 0.1) for i in range(2000)) / 2000
    assert 0.07 < share < 0.13
    zh = ["一个红色圆形", "两个蓝色正方形", "一个绿色星形"]
    pairs = [{"en": f"a red circle {i}", "zh": zh[i], "tiles": []} for i in range(3)]
    rows = eval_examples(pairs)
    assert {r["label"] for r in rows} == {0, 1} and {r["lang"] for r in rows} == {"en", "zh"}
    idx, texts, langs, labels = matching_batch(pairs * 10, random.Random(0))
    assert len(texts) == 60 and labels == [1, 0] * 30 and idx == [i for i in range(30) for _ in (0, 1)]
    assert all(langs[2 * i] == langs[2 * i + 1] for i in range(30)) and set(langs) == {"en", "zh"}
    conv = [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A cat."}]
    assert texts_of({"language": "en", "conversations": conv, "caption_zh": None}) == {"en": "A cat.", "zh": None}
    assert texts_of({"language": "zh", "caption": "一只猫"}) == {"en": None, "zh": "一只猫"}


def _centroid(img, rgb):
    arr = np.asarray(img).astype(int)
    ys, xs = np.nonzero(np.abs(arr - np.array(rgb)).sum(-1) < 30)
    return xs.mean(), ys.mean()


def test_shapes_world_draws_what_its_captions_say():
    scene = Scene((Group("shape", "circle", "red", 2), Group("shape", "square", "blue")), "left")
    assert scene.caption_en() == "two red circles to the left of a blue square"
    assert scene.caption_zh() == "两个红色圆形在一个蓝色正方形的左边"
    img = render(scene, random.Random(0))
    assert img.size == (448, 448)
    red_x, _ = _centroid(img, COLOURS["red"][1])
    blue_x, _ = _centroid(img, COLOURS["blue"][1])
    assert red_x < 224 < blue_x
    above = render(Scene((Group("shape", "star", "green"), Group("digit", "7", "yellow")), "above"), random.Random(1))
    assert _centroid(above, COLOURS["green"][1])[1] < 224 < _centroid(above, COLOURS["yellow"][1])[1]


def test_training_pairs_refuse_a_run_tiled_without_thumbnails(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataengine.scorer.examples import load_pairs

    (tmp_path / "samples").mkdir()
    (tmp_path / "tiles").mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "language": ["en", "en"], "caption": ["a red circle", "a cat"],
                             "caption_zh": [None, None], "conversations": [None, None],
                             "conversations_zh": [None, None]}), tmp_path / "samples" / "part-0.parquet")  # fmt: skip
    shard = {"id": ["a", "b"], "num_tiles": [1, 2], "thumbnail": [False, False], "tiles": [[b"x"], [b"l", b"r"]]}
    pq.write_table(pa.table(shard), tmp_path / "tiles" / "shard-0.parquet")
    with pytest.raises(ValueError, match="no thumbnail"):  # "b" would be trained on its right half alone
        load_pairs(str(tmp_path))
    assert load_pairs(str(tmp_path), tiles="all").num_rows == 2
