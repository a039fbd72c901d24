"""Path confinement and file checks: every reject reason of the resolve op."""

from __future__ import annotations

import os

import pytest
from conftest import encode, row, textured

from dataengine.ops.resolve import Resolve, ResolveConfig


@pytest.fixture
def root(tmp_path):
    (tmp_path / "data" / "img").mkdir(parents=True)
    (tmp_path / "data" / "img" / "ok.jpg").write_bytes(encode(textured(1)))
    (tmp_path / "secret.jpg").write_bytes(encode(textured(2)))
    return tmp_path / "data"


def run(root, path, **cfg):
    op = Resolve(ResolveConfig(**cfg))
    return op.apply(row(image_root=str(root), image_path=path))


def test_reads_bytes_inside_root(root):
    out = run(root, "img/ok.jpg")
    assert out["reason"] is None and out["image"][:2] == b"\xff\xd8"


@pytest.mark.parametrize(
    "path",
    [
        "../secret.jpg",
        "img/../../secret.jpg",
        "/etc/passwd",
        "file:///etc/passwd",
        "C:\\Windows\\win.ini",
        "s3://bucket/x.jpg",
    ],
)
def test_paths_outside_root_are_rejected(root, path):
    out = run(root, path)
    assert (out["stage"], out["reason"]) == ("resolve", "path_outside_root")


def test_symlink_escaping_root_is_rejected(root):
    os.symlink(root.parent / "secret.jpg", root / "img" / "link.jpg")
    assert run(root, "img/link.jpg")["reason"] == "path_outside_root"


def test_nul_byte_path(root):
    assert run(root, "img/ok.jpg\x00.png")["reason"] == "invalid_path"


def test_missing_file(root):
    assert run(root, "img/nope.jpg")["reason"] == "missing_file"


def test_directory_is_not_a_file(root):
    assert run(root, "img")["reason"] == "not_a_file"


def test_file_too_large(root):
    assert run(root, "img/ok.jpg", max_bytes=100)["reason"] == "file_too_large"


def test_zero_byte_file(root):
    (root / "img" / "empty.jpg").write_bytes(b"")
    assert run(root, "img/empty.jpg")["reason"] == "empty_file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a mode-000 file")
def test_unreadable_file(root):
    p = root / "img" / "locked.jpg"
    p.write_bytes(b"data")
    p.chmod(0)
    assert run(root, "img/locked.jpg")["reason"] == "unreadable_file"


def test_inline_images_are_size_checked(root):
    op = Resolve(ResolveConfig(max_bytes=10))
    assert op.apply(row(image=b"x" * 11, image_inline=True))["reason"] == "file_too_large"
    assert op.apply(row(image=b"", image_inline=True))["reason"] == "empty_file"
