"""The export stage's samples table in both image modes, and where the InternVL export puts each image."""

from __future__ import annotations

from dataengine.core.rows import new_row, to_table
from dataengine.export_internvl import image_name
from dataengine.ops.export import samples_table


def _rows():
    common = {"source": "s", "image_format": "JPEG", "width": 4, "height": 4, "pixel_hash": "h", "phash": "p"}
    from_file = new_row(id="f", source_key="f", location="a:1", image_root="/data", image_path="img/a.webp",
                        image_out=b"jpeg-f", **common)  # fmt: skip
    inline = new_row(id="i", source_key="i", location="a:2", image=b"raw", image_inline=True, image_out=b"jpeg-i",
                     **common)  # fmt: skip
    return to_table([from_file, inline])


def test_reference_mode_refers_to_files_and_embeds_what_has_no_file():
    ref = {r["id"]: r for r in samples_table(_rows(), "run", "reference").to_pylist()}
    assert (ref["f"]["image"], ref["f"]["image_root"], ref["f"]["image_path"]) == (None, "/data", "img/a.webp")
    assert (ref["i"]["image"], ref["i"]["image_path"]) == (b"jpeg-i", None)  # no file to refer to: embedded
    embed = {r["id"]: r for r in samples_table(_rows(), "run", "embed").to_pylist()}
    assert embed["f"]["image"] == b"jpeg-f" and embed["i"]["image"] == b"jpeg-i"


def test_internvl_image_names_follow_what_is_written():
    assert image_name({"id": "f", "image": b"x", "image_format": "JPEG", "image_path": "a.webp"}) == "images/f.jpg"
    referenced = {"id": "f", "image": None, "image_format": "JPEG", "image_path": "img/A.WEBP"}
    assert image_name(referenced) == "images/f.webp"
