"""Model references: a Hub id, a local directory, or `tiny:<name>` (an embedded random-weight tiny model).

`resolve` turns any of them into a local directory, failing clearly when a Hub id is not available offline.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from .errors import InputError, OfflineError

TINY_PREFIX = "tiny:"


def resolve_device(device: str | None) -> str:
    """`device` as given, or cuda when available: the one default of every `--device` (generate, evaluate)."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cache_root() -> Path:
    """Where retinalogos keeps built tiny models and staged Hub repos: $RETINALOGOS_CACHE or $HF_HOME/retinalogos."""
    base = os.environ.get("RETINALOGOS_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "retinalogos"
    )
    return Path(base)


def tiny_cache_dir() -> Path:
    return cache_root() / "tiny"


def resolve(ref: str | os.PathLike, *, option: str = "--model", allow_patterns: list[str] | None = None) -> Path:
    """A local directory for `ref`. `option` names the CLI option / recipe key to mention in errors."""
    ref = str(ref)
    if ref.startswith(TINY_PREFIX):
        return build_tiny(ref[len(TINY_PREFIX) :])
    path = Path(ref).expanduser()
    if path.exists():
        return path
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise InputError(f"{option}: local path not found: {ref}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(snapshot_download(ref, allow_patterns=allow_patterns))
    except HFValidationError:
        raise InputError(f"{option}: {ref!r} is neither an existing local path nor a valid Hub id") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, OSError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = (
            "HF_HUB_OFFLINE=1 is set and it is not in the local cache"
            if offline
            else f"it could not be fetched ({type(e).__name__})"
        )
        raise OfflineError(
            f"{option}: model {ref!r} is not available: {why}",
            hint=f"download it elsewhere and pass the local directory with {option} /path/to/model "
            "(or `tiny:<name>` for an embedded tiny model)",
        ) from None


def build_tiny(name: str, seed: int = 0) -> Path:
    """Build (once, cached) the embedded tiny model `name` and return its directory.

    Several processes (the ranks of an `accelerate launch`) may ask at once from an empty cache: one builds under an
    exclusive lock, into a temporary folder renamed into place when whole; the others wait and load that."""
    import fcntl

    from .tiny import BUILDERS

    if name not in BUILDERS:
        raise InputError(f"unknown tiny model {name!r}; known: {', '.join(sorted(BUILDERS))}")
    out = tiny_cache_dir() / f"{name}-seed{seed}"
    done = out / ".complete"
    if done.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not done.exists():
            import shutil

            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            if _in_process_group():
                # transformers' save_pretrained writes weights on global rank 0 only: a build on another rank would
                # leave the text encoder without weights, so a process outside the group builds it
                import subprocess
                import sys

                env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE")}
                code = "import sys; from retinalogos_hub.models import _build; _build(sys.argv[1], sys.argv[2], int(sys.argv[3]))"
                subprocess.run([sys.executable, "-c", code, name, str(tmp), str(seed)], env=env, check=True)
            else:
                _build(name, tmp, seed)
            (tmp / ".complete").write_text("ok")
            shutil.rmtree(out, ignore_errors=True)  # an incomplete folder from an older, unlocked build
            os.replace(tmp, out)
    return out


def _build(name: str, out: str | Path, seed: int) -> None:
    from .tiny import BUILDERS

    module, func = BUILDERS[name].split(":")
    getattr(importlib.import_module(f"retinalogos_hub.tiny.{module}"), func)(Path(out), seed=seed)


def _in_process_group() -> bool:
    import sys

    dist = sys.modules.get("torch.distributed")  # never imports torch just to ask
    return bool(dist is not None and dist.is_available() and dist.is_initialized())
