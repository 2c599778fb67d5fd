"""Is a model folder loadable, before anything runs? config.json, tokenizer and weights
present and readable, weight headers sound, the config's architecture matching the
weights' tensor names and shapes, the tokenizer's ids within the embedding: each a
one-line refusal (docs/errors.md) instead of a traceback or a randomly initialised model
inside a cell. Apart from harness/models.py, which resolves, provisions and loads."""

from __future__ import annotations

import functools
import json
import zipfile
from pathlib import Path

from harness.errors import HarnessError
from harness.storage import file_kind


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

    for file in ("config.json", *TOKENIZER_FILES, *WEIGHT_INDEXES, *WEIGHT_FILES):
        kind = file_kind(path / file)
        if kind not in ("a regular file", "nothing"):  # a named pipe would block a reader
            bad(f"has a {file} that is {kind}, not a regular file",
                "replace it with the file save_pretrained writes")
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
