"""The stage-output contract: what every stage (curate, caption, purify, generate, evaluate, train, export) does with
its output folder `OUT`. See docs/architecture.md, "Stage-output contract".

- Resumable work lives under `OUT/.work/<stage>/` (`WorkDir`): files are committed atomically, a lock keeps two runs
  off one work folder, and the settings the work was made with are bound to it, so work made with other settings
  is never mixed in.
- Results are written atomically (`atomic_write`, `save_dataset`): a killed run leaves the previous result or none,
  never half of one.
- `fingerprint` is the one content hash (sha256 of canonical JSON) behind every cache key and resume check.
- `OUT/retinalogos.json` is the provenance (`StageRun.finish`): stage, package version, the resolved config, input
  fingerprints, start and end time, counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InputError

PROVENANCE = "retinalogos.json"
WORK = ".work"


def fingerprint(*parts: Any) -> str:
    """16 hex digits of sha256 over the canonical JSON of `parts` (dataclasses as dicts, paths as strings)."""
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]


def _canonical(obj: Any) -> str:
    def default(o):
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        return str(o)

    return json.dumps(obj, sort_keys=True, default=default)


def folder_fingerprint(path: str | Path) -> str:
    """A stage folder's identity without reading its bytes: a HF dataset dir by its own `_fingerprint` (or data
    files), a diffusers folder or an image folder by its file names and sizes; a Hub id or tiny:<name> by name."""
    p = Path(path)
    if not p.exists():
        return fingerprint(str(path))
    state = p / "state.json"
    st = json.loads(state.read_text()) if state.is_file() else {}
    if "_fingerprint" in st or "_data_files" in st:  # a HF dataset folder (a WorkDir's state.json is not one)
        return fingerprint(st.get("_fingerprint"), [f.get("filename") for f in st.get("_data_files", [])])
    if p.is_file():
        return fingerprint(p.name, p.stat().st_size)
    files = sorted(
        f for f in p.rglob("*") if f.is_file() and WORK not in f.relative_to(p).parts and f.name != PROVENANCE
    )
    return fingerprint([(str(f.relative_to(p)), f.stat().st_size) for f in files])


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write `data` to `path` through a temporary sibling and a rename (readers see the old file or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


class WorkDir:
    """`OUT/.work/<name...>`: a stage's resumable work, committed file by file."""

    def __init__(self, out: str | Path, *name: str):
        self.out = Path(out)
        self.dir = self.out.joinpath(WORK, *name)
        self.state_file = self.dir / "state.json"

    def path(self, name: str) -> Path:
        return self.dir / name

    @contextmanager
    def lock(self, what: str = "run") -> Iterator[None]:
        """An exclusive lock on this work folder: two runs appending to one would collide. Leftover temporary files
        of a killed run (never committed) are removed once the lock is held."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.dir / "lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise InputError(f"{self.dir}: another {what} is writing here; wait for it or use another --out") from None
        try:
            for tmp in [*self.dir.glob("*.tmp*"), *self.dir.glob(".*.tmp*")]:
                tmp.unlink(missing_ok=True)
            yield
        finally:
            fh.close()

    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}

    def write_state(self, **state: Any) -> None:
        atomic_write(self.state_file, json.dumps(state, indent=1, default=str))

    def bind(
        self,
        settings: Mapping[str, Any],
        *,
        hint: str = "rerun with the same settings to resume, or choose a new --out",
    ) -> None:
        """Record the settings this work is made with; fail, naming what differs, if earlier work used others."""
        old = self.state().get("settings")
        new = json.loads(_canonical(dict(settings)))
        if old is not None and old != new:
            diff = [
                f"{k}={old.get(k)!r} (now {new.get(k)!r})" for k in sorted({*old, *new}) if old.get(k) != new.get(k)
            ]
            raise InputError(f"{self.out}: holds work made with {', '.join(diff)}; {hint}")
        if old is None:
            self.write_state(**{**self.state(), "settings": new})

    def commit(self, name: str, data: bytes | str) -> Path:
        return atomic_write(self.dir / name, data)

    def committed(self, pattern: str) -> list[Path]:
        return sorted(self.dir.glob(pattern)) if self.dir.is_dir() else []

    def remove(self) -> None:
        """Delete this work (once its result is in place), and `OUT/.work` itself when nothing else is left in it."""
        shutil.rmtree(self.dir, ignore_errors=True)
        _prune(self.dir.parent, self.out)


def save_dataset(ds, out: str | Path) -> Path:
    """`ds.save_to_disk(out)` without ever leaving `out` half-written: the dataset is saved beside it under
    `OUT/.work/`, then its files replace the old dataset files in `out` (other files, e.g. the manifest, stay)."""
    out = Path(out)
    staging = out / WORK / f"staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        ds.save_to_disk(str(staging))
        for old in [*out.glob("data-*.arrow"), out / "dataset_info.json", out / "state.json"]:
            old.unlink(missing_ok=True)
        for f in staging.iterdir():
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _prune(staging.parent, out)
    return out


def _prune(folder: Path, out: Path) -> None:
    """Remove empty folders from `folder` up to (not including) `out`."""
    while folder != out and out in folder.parents and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class StageRun:
    """One run of a stage; `finish` writes `OUT/retinalogos.json`. Inputs are {role: path or id}; a published
    folder (`public=True`) records input names and fingerprints only (never this machine's paths) and no times."""

    stage: str
    out: Path
    config: Any
    inputs: Mapping[str, Any]
    started: str = dataclasses.field(default_factory=_now)

    def finish(self, public: bool = False, **counts: Any) -> Path:
        from . import __version__

        inputs = {}
        for role, ref in self.inputs.items():
            if ref is None:
                continue
            entry = {"fingerprint": folder_fingerprint(ref)}
            entry["ref"] = Path(str(ref)).name if public and Path(str(ref)).exists() else str(ref)
            inputs[role] = entry
        config = json.loads(_canonical(self.config))  # dataclasses as dicts, paths as strings
        record = {
            "stage": self.stage,
            "version": __version__,
            "config": config,
            "inputs": inputs,
            "started": self.started,
            "finished": _now(),
            "counts": counts,
        }
        if public:  # a published folder changes only when its content does: an unchanged re-push is a no-op
            del record["started"], record["finished"]
        return atomic_write(Path(self.out) / PROVENANCE, json.dumps(record, indent=1, default=str))


def start(stage: str, out: str | Path, config: Any, **inputs: Any) -> StageRun:
    """Begin a stage run writing to `out` (call `.finish(**counts)` when the result is in place)."""
    return StageRun(stage, Path(out), config, inputs)


def read_provenance(folder: str | Path) -> dict:
    path = Path(folder) / PROVENANCE
    if not path.is_file():
        raise InputError(
            f"{folder}: no {PROVENANCE}; it was not written by a retinalogos stage (or by an older version)"
        )
    return json.loads(path.read_text())
