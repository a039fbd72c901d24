"""A wheel install (`pip install .`, not editable) works as the checkout does: the pipelines and schemas ship inside
the package, storage defaults to the working directory, and a job ships the package alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import encode, textured, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> Path:
    """A fresh venv holding the project's wheel, and the dependencies only (the checkout's own venv, added as a
    plain path so its editable install of dataengine is not seen)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # built from a copy: a build writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "dataengine"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp.glob("dataengine-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(site, "checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a checkout on it reads as installed
    install = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, env=env)  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    return venv


def test_a_wheel_install_runs_a_pipeline_with_storage_in_the_working_directory(wheel_venv, tmp_path):
    py = wheel_venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("DATAENGINE_STORAGE", "PYTHONPATH")}
    where = subprocess.run(
        [py, "-c", "import dataengine, dataengine.pipeline as p, dataengine.core.schema as s; "
                   "print(dataengine.__file__); print(sorted(x.stem for x in p.PIPELINE_DIR.glob('*.yaml'))); "
                   "print(s.load('samples').names[:1])"],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-2000:]
    lines = where.stdout.splitlines()
    assert str(wheel_venv) in lines[0] and str(ROOT) not in lines[0]  # the installed copy, not the checkout
    assert "clean" in lines[1] and "demo" in lines[1] and "id" in lines[2]

    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    (data / "img" / "0.png").write_bytes(encode(textured(400), "PNG"))
    write_jsonl(data / "a.jsonl", [{"image": "img/0.png", "caption": "An abstract colourful texture, installed."}])
    run = subprocess.run(
        [wheel_venv / "bin" / "dataengine", "run", "clean", "--input", str(data), "--set", "ray.num_cpus=1",
         "--set", "ray.progress=false"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    manifests = list((tmp_path / "storage" / "runs").glob("*/manifest.json"))
    assert len(manifests) == 1 and json.loads(manifests[0].read_text())["accounting"]["accepted"] == 1
    assert not list((wheel_venv / "lib").rglob("site-packages/storage"))  # nothing written inside the install
