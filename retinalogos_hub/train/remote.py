"""Training state on the Hub: `--resume hf://ORG/NAME-state[@REVISION]` (the state `retinalogos push-state` uploads).

`recipe_identity(cfg)` is the part of a recipe that decides the weights a run ends with (not where it writes, logs,
checkpoints or validates; local paths by their names); the trainer records it in every checkpoint's
`trainer_state.json`, so a state repo is checked against the recipe before its gigabytes are downloaded.

`fetch_state` downloads the state once per machine: every process of a launch takes the same file lock, the first
downloads into OUTPUT_DIR/.work/resume/<repo>--<commit>/ and marks it complete, the others find it complete and
load that whole folder. Uses huggingface_hub directly (training never imports the `hub` publishing package).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import re
from pathlib import Path

from .. import stage
from ..errors import HubError, InputError
from .config import TrainConfig

PREFIX = "hf://"
STATE_FILE = "trainer_state.json"  # written last into a checkpoint: its presence marks a complete one
# keys that change where a run writes, logs, checkpoints or validates, never the weights it ends with
NOT_IDENTITY = {
    "output_dir": None,
    "data": ("cache_dir",),
    "train": ("log_every", "log_with"),
    "checkpoint": None,
    "validation": None,
}


def _name(ref: str) -> str:
    """A Hub id or tiny:<name> as it is, a local path by its folder name (another machine has another path)."""
    return Path(ref).name if Path(ref).exists() else ref


def recipe_identity(cfg: TrainConfig) -> dict:
    data = dataclasses.asdict(cfg)
    for key, sub in NOT_IDENTITY.items():
        if sub is None:
            data.pop(key, None)
        else:
            for k in sub:
                data[key].pop(k, None)
    data["model"]["base_model"] = _name(str(data["model"]["base_model"]))
    data["data"]["dataset"] = _name(str(data["data"]["dataset"]))
    return data


def parse(ref: str) -> tuple[str, str]:
    """`hf://ORG/NAME[@REVISION]` -> (repo id, revision)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo_id, _, revision = ref[len(PREFIX) :].partition("@")
    try:
        validate_repo_id(repo_id)
        ok = repo_id.count("/") == 1
    except HFValidationError:
        ok = False
    if not ok or (_ and not revision):
        raise InputError(f"--resume {ref}: expected hf://ORG/NAME or hf://ORG/NAME@REVISION (a branch, tag or commit)")
    return repo_id, revision or "main"


def _differences(here: dict, there: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(here) | set(there)):
        a, b = here.get(key), there.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} here, {b!r} in the state")
    return out


def _hub_call(ref: str, repo_id: str, revision: str, fn):
    import httpx2
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return fn()
    except RevisionNotFoundError:
        raise InputError(
            f"--resume {ref}: {repo_id} has no revision {revision!r}",
            hint=f"list its revisions with `hf repos branch list {repo_id}` (push-state makes one per step, "
            "step-NNNNNN), or drop @REVISION for the latest",
        ) from None
    except RepositoryNotFoundError:
        raise InputError(
            f"--resume {ref}: no repo {repo_id} (or the token cannot read it)",
            hint="push the state with `retinalogos push-state RUN_DIR --repo-id ...`, and pass a token that can read "
            "the private repo (HF_TOKEN or `hf auth login`)",
        ) from None
    except EntryNotFoundError:
        raise InputError(
            f"--resume {ref}: {repo_id}@{revision} holds no {STATE_FILE}; it is not a training state pushed with "
            "`retinalogos push-state`"
        ) from None
    except OfflineModeIsEnabled:
        raise HubError(
            f"--resume {ref}: HF_HUB_OFFLINE=1 is set", hint="unset HF_HUB_OFFLINE to download the state"
        ) from None
    except (httpx2.TransportError, HfHubHTTPError) as e:
        raise HubError(
            f"--resume {ref}: cannot download from the Hub ({type(e).__name__})",
            hint="retry: files already downloaded are kept",
        ) from None


def check_state(ref: str, cfg: TrainConfig) -> tuple[str, str]:
    """(repo id, commit) of `hf://ORG/NAME[@REVISION]` once its small trainer_state.json is known to exist and to
    record `cfg`'s recipe: a wrong revision or another recipe fails before any weights are downloaded. The commit
    pins the download to the state that was checked, even if a newer one is pushed to the branch meanwhile."""
    from huggingface_hub import hf_hub_download

    repo_id, revision = parse(ref)
    state_file = _hub_call(ref, repo_id, revision, lambda: hf_hub_download(repo_id, STATE_FILE, revision=revision))
    state = json.loads(Path(state_file).read_text())
    there = state.get("recipe")
    if there is None:
        raise InputError(f"--resume {ref}: its {STATE_FILE} records no recipe (pushed by an older version)")
    here = recipe_identity(cfg)
    if stage.fingerprint(here) != stage.fingerprint(there):
        diff = _differences(here, there)
        raise InputError(
            f"--resume {ref}: the state was trained with another recipe ({'; '.join(diff[:4])}"
            + (f"; {len(diff) - 4} more" if len(diff) > 4 else "")
            + ")",
            hint="resume it with the recipe it was trained with (the differing keys above), or start a new run",
        )
    return repo_id, Path(state_file).parent.name  # the cache's snapshots/<commit>/trainer_state.json


def fetch_state(ref: str, cfg: TrainConfig) -> Path:
    """The local checkpoint folder for `hf://ORG/NAME[@REVISION]`, checked against `cfg` and downloaded once."""
    from huggingface_hub import snapshot_download

    repo_id, revision = check_state(ref, cfg)  # revision: the commit
    # The whole state, once per machine: the first process downloads, the others wait and load it whole
    dest = Path(cfg.output_dir) / ".work" / "resume" / re.sub(r"[^A-Za-z0-9._-]", "-", f"{repo_id}--{revision}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    done = dest / ".complete"
    with open(dest.with_name(dest.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not done.exists():
            _hub_call(
                ref,
                repo_id,
                revision,
                lambda: snapshot_download(repo_id, revision=revision, local_dir=dest),
            )
            if not (dest / STATE_FILE).is_file():
                raise InputError(f"--resume {ref}: the download has no {STATE_FILE}")
            done.write_text(json.dumps({"repo_id": repo_id, "revision": revision}))
    return dest
