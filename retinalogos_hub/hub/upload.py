"""Talking to the Hub: repo-id validation, a fast reachability check, create + upload, errors as one HubError line.

Tokens are passed to huggingface_hub and never formatted into a message or log line.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import HubError, InputError

CONNECT_TIMEOUT_S = 1.5  # the reachability probe: an unreachable endpoint fails well under 2 s


def check_repo_id(repo_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise InputError(
            f"--repo-id {repo_id!r} is not a valid Hub repo id ({e}); use ORG/NAME, e.g. my-lab/retinalogos-cfp"
        ) from None
    if repo_id.count("/") != 1:
        raise InputError(
            f"--repo-id {repo_id!r} must be ORG/NAME (the namespace is required), e.g. my-lab/retinalogos-cfp"
        )
    return repo_id


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def check_reachable() -> None:
    """Fail fast (< 2 s) when offline mode is on or the endpoint does not accept connections."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise HubError(
            "cannot push: HF_HUB_OFFLINE=1 is set",
            hint="unset HF_HUB_OFFLINE, or write the repo locally with --local-dir DIR",
        )
    url = urlsplit(endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise HubError(
            f"cannot reach the Hub at {url.scheme}://{url.netloc} ({type(e).__name__}: {e.strerror or e})",
            hint="check the network or HF_ENDPOINT, or write the repo locally with --local-dir DIR and upload it later",
        ) from None


@contextmanager
def hub_errors(what: str) -> Iterator[None]:
    """Turn huggingface_hub / network errors into one HubError line (never including the token)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    try:
        yield
    except OfflineModeIsEnabled:
        raise HubError(f"{what}: HF_HUB_OFFLINE=1 is set", hint="unset HF_HUB_OFFLINE or use --local-dir") from None
    except LocalTokenNotFoundError:
        raise HubError(f"{what}: no Hub token", hint="run `hf auth login`, set HF_TOKEN, or pass --token") from None
    except (httpx2.TransportError, RuntimeError) as e:  # refused, timed out, or dropped mid-transfer
        # huggingface_hub reports a failed LFS upload as RuntimeError("Error while uploading ...") from the network error
        cause = e if isinstance(e, httpx2.TransportError) else e.__cause__
        if not isinstance(cause, httpx2.TransportError):
            raise
        raise HubError(
            f"{what}: lost the connection to {endpoint()} ({type(cause).__name__})",
            hint="run the same command again: files that landed are not sent again, and nothing was committed",
        ) from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        if status in (401, 403):
            raise HubError(
                f"{what}: the Hub refused the token (HTTP {status})",
                hint="use a token with write access to this namespace (--token or HF_TOKEN)",
            ) from None
        raise HubError(f"{what}: HTTP {status}: {str(e).splitlines()[0]}") from None


def upload(
    folder: Path,
    repo_id: str,
    *,
    repo_type: str,
    private: bool = False,
    gated: bool = False,
    token: str | None = None,
    ignore: Sequence[str] = (),
    message: str = "Upload with retinalogos-hub",
    revision: str | None = None,
    replace: bool = False,
    atomic: bool = False,
) -> str:
    """Create the repo (exist_ok) and upload `folder` as one commit to `revision` (a branch, created from main when
    new; default main); returns the repo URL. `replace` deletes the revision's files that `folder` does not have.

    A failed upload commits nothing (the revision is unchanged), and re-running it only sends the files the Hub does
    not have yet: the preupload step compares content hashes and the LFS batch skips stored objects. `atomic` makes
    that hold with hf_xet too (which otherwise commits a large folder in batches): one commit of every file, for
    repos of a few dozen files (a model, a training state); a dataset of thousands of shards leaves it off."""
    from huggingface_hub import HfApi

    check_reachable()
    api = HfApi(token=token)
    with hub_errors(f"create {repo_type} repo {repo_id}"):
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if gated:
            api.update_repo_settings(repo_id, repo_type=repo_type, gated="auto")
    if revision is not None:
        with hub_errors(f"create branch {revision} of {repo_id}"):
            api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    with hub_errors(f"upload to {repo_id}" + (f"@{revision}" if revision else "")):
        if atomic:
            _commit_folder(api, Path(folder), repo_id, repo_type, revision, message, replace)
            return str(url)
        # huggingface_hub >= 1.0 folded upload_large_folder into upload_folder: with hf_xet it commits in resumable
        # batches; without it (or with HF_HUB_DISABLE_XET) it is one commit that skips already-uploaded files.
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type=repo_type,
            commit_message=message,
            ignore_patterns=[".*", "**/.*", *ignore],
            revision=revision,
            delete_patterns=["*"] if replace else None,
        )
    return str(url)


def _commit_folder(api, folder: Path, repo_id: str, repo_type: str, revision, message: str, replace: bool):
    """`folder` (dot files left out) as one commit; unchanged files are not sent and no empty commit is made."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    local = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    ops: list = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(folder / rel)) for rel in local]
    if replace:
        remote = api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
        gone = sorted(set(remote) - set(local) - {".gitattributes"})
        ops += [CommitOperationDelete(path_in_repo=rel) for rel in gone]
    return api.create_commit(repo_id, operations=ops, commit_message=message, repo_type=repo_type, revision=revision)


def hf_home_exports() -> Path:
    from ..models import cache_root

    return cache_root() / "exports"
