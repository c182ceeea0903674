"""Test infrastructure: a loopback Hugging Face Hub that the real `huggingface_hub` client (2.4) can push to and pull from.

No open-source Hub server is light enough for CI, so this is a small in-memory one: a stdlib `ThreadingHTTPServer` on
127.0.0.1 (random port) speaking the slice of the Hub HTTP protocol that `create_repo`, `whoami`, `upload_folder`
(preupload -> LFS batch + basic PUT -> ndjson commit), `update_repo_settings`, `repo_info`, `list_repo_tree`,
`get_paths_info`, `hf_hub_download` and `snapshot_download` use, plus branches: `create_branch` (from a starting
revision), `list_repo_refs`, and commits, reads and revision info at any branch or commit id. Headers follow the client
code (`X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size`, `X-Error-Code`). Files are stored per commit, LFS
objects are checked against their sha256, and writes need the server's token (sent as `Authorization: Bearer ...`).

Failure injection: `HubServer.drop_lfs_puts_after = k` lets k LFS uploads land, then reads half the body of every later
one and closes the connection without an answer (a network failure mid-upload) until it is set back to None.
`lfs_puts` lists (oid, bytes received) of every LFS upload, landed or dropped, for counting what a rerun re-sends.

Use the `hub_server` fixture (registered in tests/conftest.py): it points the client at the server for one test
(HF_ENDPOINT, HF_HUB_DISABLE_XET=1, HF_HUB_OFFLINE=0, in both os.environ and `huggingface_hub.constants`, which are
read at import) and yields a `HubServer` with `.endpoint`, `.token` and `.repos` for assertions. Not a product: no
tags, no PRs, no xet, no pagination.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

USER = "tester"
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Files the real Hub stores in LFS by default (.gitattributes of a new repo), plus anything binary or >= 10 MB.
LFS_SUFFIXES = (
    ".parquet",
    ".arrow",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".png",
    ".jpg",
    ".jpeg",
    ".gz",
    ".zip",
    ".tar",
    ".npy",
    ".npz",
    ".onnx",
    ".msgpack",
    ".h5",
    ".pkl",
    ".model",
)


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class Entry:
    blob: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.blob).hexdigest()

    def tree_json(self, path: str) -> dict:
        out = {"type": "file", "path": path, "size": len(self.blob)}
        if self.lfs:
            pointer = lfs_pointer(self.sha256, len(self.blob))
            out["oid"] = git_blob_oid(pointer)
            out["lfs"] = {"oid": self.sha256, "size": len(self.blob), "pointerSize": len(pointer)}
        else:
            out["oid"] = git_blob_oid(self.blob)
        return out

    @property
    def etag(self) -> str:  # what the client compares: sha256 for LFS files, the git blob id otherwise
        return self.sha256 if self.lfs else git_blob_oid(self.blob)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    gated: bool | str = False
    commits: list[tuple[str, dict[str, Entry]]] = field(default_factory=list)  # (oid, files), oldest first
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> head commit oid

    def files(self, rev: str) -> dict[str, Entry] | None:
        oid = self.branches.get(rev, rev)
        return next((files for c, files in self.commits if c == oid), None)

    def sha(self, rev: str) -> str:
        return self.branches.get(rev, rev)


class HubServer:
    """In-memory Hub state plus the HTTP server thread."""

    def __init__(self, token: str = "hf_loopback_test_token"):
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content
        self.collections: dict[str, dict] = {}  # slug -> the collection JSON the Hub returns
        self.requests: list[tuple[str, str]] = []  # (method, path) for assertions
        self.drop_lfs_puts_after: int | None = None  # failure injection (module docstring)
        self.lfs_puts: list[tuple[str, int]] = []  # (oid, bytes received) per LFS upload
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.hub = self  # type: ignore[attr-defined]
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="loopback-hub", daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        return self.repos.get((repo_type, repo_id))

    def create(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private)
        attrs = {
            ".gitattributes": Entry(
                b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES), False
            )
        }
        repo.commits.append((self._commit_oid(repo_id, "initial"), attrs))
        repo.branches["main"] = repo.commits[-1][0]
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def _commit_oid(self, *parts: str) -> str:
        return hashlib.sha1("\0".join((*parts, str(time.time_ns()))).encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LoopbackHub/1.0"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub  # type: ignore[attr-defined]

    # ---- plumbing -------------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str | None, message: str):
        headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
        self._json(status, {"error": message}, headers)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _require_auth(self) -> bool:
        if not self._authorized():
            self._error(401, None, "Invalid credentials in Authorization header")
            return False
        return True

    def _readable_repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.hub.repo(repo_type, repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404 if repo is None else 401, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _files_at(self, repo: Repo, rev: str) -> dict[str, Entry] | None:
        files = repo.files(unquote(rev))
        if files is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return files

    # ---- routing --------------------------------------------------------------------------------------------------
    # URL paths without their leading slash (matched against url.path[1:])
    ROUTES = [
        ("GET", r"api/whoami-v2", "whoami"),
        ("POST", r"api/repos/create", "create_repo"),
        ("POST", r"api/validate-yaml", "validate_yaml"),
        ("PUT", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/settings", "settings"),
        ("GET", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", "repo_info"),
        ("GET", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "tree"),
        ("POST", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)", "paths_info"),
        ("POST", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)", "preupload"),
        ("POST", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", "commit"),
        ("POST", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/branch/(?P<branch>[^/]+)", "create_branch"),
        ("GET", r"api/(?P<t>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)/refs", "refs"),
        ("POST", r"(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", "lfs_batch"),
        ("PUT", r"_lfs/(?P<oid>[0-9a-f]{64})", "lfs_put"),
        ("POST", r"_lfs/verify", "lfs_verify"),
        ("GET", r"(?P<prefix>datasets/|spaces/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
        ("POST", r"api/collections", "create_collection"),
        ("GET", r"api/collections/(?P<slug>[^/]+/[^/]+)", "get_collection"),
        ("PATCH", r"api/collections/(?P<slug>[^/]+/[^/]+)", "update_collection"),
        ("POST", r"api/collections/(?P<slug>[^/]+/[^/]+)/items", "add_collection_item"),
    ]

    def _dispatch(self):
        url = urlsplit(self.path)
        method = "GET" if self.command == "HEAD" else self.command
        self.hub.requests.append((self.command, url.path))
        for m, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, url.path[1:])
            if m == method and match:
                with self.hub.lock:
                    return getattr(self, "do_" + name)(parse_qs(url.query), **match.groupdict())
        self._body()
        self._error(404, None, f"loopback hub: no route for {self.command} {url.path}")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _dispatch

    # ---- endpoints ------------------------------------------------------------------------------------------------
    def do_whoami(self, query):
        if self._require_auth():
            self._json(
                200,
                {
                    "type": "user",
                    "name": USER,
                    "fullname": "Loopback Tester",
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
                },
            )

    def do_create_repo(self, query):
        payload = json.loads(self._body() or b"{}")
        if not self._require_auth():
            return
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        url = f"{self.hub.endpoint}/{PREFIX[repo_type]}{repo_id}"
        if self.hub.repo(repo_type, repo_id) is not None:
            return self._json(409, {"error": "You already created this repo", "url": url})
        private = bool(payload.get("private")) or payload.get("visibility") == "private"  # 2.x sends visibility
        self.hub.create(repo_type, repo_id, private)
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def do_validate_yaml(self, query):
        import yaml

        content = json.loads(self._body())["content"]
        match = re.match(r"^---\n(.*?)\n---", content, re.S)
        try:
            if match:
                yaml.safe_load(match.group(1))
        except yaml.YAMLError as e:
            return self._json(400, {"errors": [{"message": str(e)}], "warnings": []})
        self._json(200, {"errors": [], "warnings": []})

    def do_settings(self, query, t, repo):
        payload = json.loads(self._body() or b"{}")
        if not self._require_auth() or self._readable_repo(t, repo) is None:
            return
        r = self.hub.repo(t, repo)
        r.gated = payload.get("gated", r.gated)
        r.private = payload.get("private", r.private)
        if "visibility" in payload:
            r.private = payload["visibility"] == "private"
        self._json(200, {})

    def do_repo_info(self, query, t, repo, rev=None):
        r = self._readable_repo(t, repo)
        if r is None or (files := self._files_at(r, rev or "main")) is None:
            return
        siblings = [
            {"rfilename": p, "size": len(e.blob), "blobId": e.tree_json(p)["oid"]} for p, e in sorted(files.items())
        ]
        self._json(
            200,
            {
                "id": repo,
                "_id": repo,
                "author": repo.split("/")[0],
                "sha": r.sha(unquote(rev or "main")),
                "private": r.private,
                "gated": r.gated,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "lastModified": "2026-01-01T00:00:00.000Z",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
        )

    def _listing(self, files: dict[str, Entry], under: str, recursive: bool) -> list[dict]:
        prefix = f"{under.strip('/')}/" if under else ""
        out, dirs = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for i in range(1, len(parts) if recursive else min(2, len(parts))):
                dirs.add(prefix + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                out.append(files[path].tree_json(path))
        out += [
            {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0}
            for d in sorted(dirs)
        ]
        return out

    def do_tree(self, query, t, repo, rev, path=None):
        r = self._readable_repo(t, repo)
        if r is None or (files := self._files_at(r, rev)) is None:
            return
        recursive = query.get("recursive", ["False"])[0].lower() in ("1", "true")
        self._json(200, self._listing(files, unquote(path or ""), recursive))

    def do_paths_info(self, query, t, repo, rev):
        form = parse_qs(self._body().decode())
        r = self._readable_repo(t, repo)
        if r is None or (files := self._files_at(r, rev)) is None:
            return
        out = []
        for p in form.get("paths", []):
            if p in files:
                out.append(files[p].tree_json(p))
            elif any(f.startswith(p.rstrip("/") + "/") for f in files):
                out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest(), "size": 0})
        self._json(200, out)

    def do_preupload(self, query, t, repo, rev):
        payload = json.loads(self._body())
        if not self._require_auth() or (r := self._readable_repo(t, repo)) is None:
            return
        if (files := self._files_at(r, rev)) is None:
            return
        out = []
        for f in payload["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].lower().endswith(LFS_SUFFIXES) or f["size"] >= 10_000_000 or b"\0" in sample
            existing = files.get(f["path"])
            oid = (existing.etag if existing.lfs == lfs else None) if existing else None
            out.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._json(200, {"files": out, "commitOid": r.sha(unquote(rev))})

    def do_lfs_batch(self, query, repo, prefix=None):
        payload = json.loads(self._body())
        if not self._require_auth():
            return
        t = {"datasets/": "dataset", "spaces/": "space"}.get(prefix or "", "model")
        if self._readable_repo(t, repo) is None:
            return
        objects = []
        for obj in payload["objects"]:
            item = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs:  # already stored: no actions, the client skips the upload
                item["actions"] = {
                    "upload": {"href": f"{self.hub.endpoint}/_lfs/{obj['oid']}"},
                    "verify": {"href": f"{self.hub.endpoint}/_lfs/verify"},
                }
            objects.append(item)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def do_lfs_put(self, query, oid):
        landed = sum(1 for o, n in self.hub.lfs_puts if o in self.hub.lfs)
        if self.hub.drop_lfs_puts_after is not None and landed >= self.hub.drop_lfs_puts_after:
            size = int(self.headers.get("Content-Length") or 0)
            self.hub.lfs_puts.append((oid, len(self.rfile.read(size // 2))))
            self.close_connection = True
            self.connection.shutdown(2)  # mid-body, no answer: the client sees the connection drop
            return
        data = self._body()
        self.hub.lfs_puts.append((oid, len(data)))
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, None, f"sha256 mismatch for LFS object {oid}")
        self.hub.lfs[oid] = data
        self._send(200)

    def do_lfs_verify(self, query):
        payload = json.loads(self._body())
        if not self._require_auth():
            return
        stored = self.hub.lfs.get(payload["oid"])
        if stored is None or len(stored) != payload["size"]:
            return self._error(404, None, f"LFS object {payload['oid']} not uploaded")
        self._json(200, {})

    def do_commit(self, query, t, repo, rev):
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not self._require_auth() or (r := self._readable_repo(t, repo)) is None:
            return
        branch = unquote(rev)
        if branch not in r.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {branch} (commits go to a branch)")
        files = dict(r.files(branch))
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = Entry(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                blob = self.hub.lfs.get(value["oid"])
                if blob is None:
                    return self._error(422, None, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = Entry(blob, True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return self._error(404, "EntryNotFound", f"A file with this name doesn't exist: {value['path']}")
            elif key == "deletedFolder":
                files = {p: e for p, e in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
        oid = self.hub._commit_oid(repo, json.dumps(lines[0]))
        r.commits.append((oid, files))
        r.branches[branch] = oid
        url = f"{self.hub.endpoint}/{PREFIX[t]}{repo}"
        self._json(200, {"commitUrl": f"{url}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None})

    def do_create_branch(self, query, t, repo, branch):
        payload = json.loads(self._body() or b"{}")
        if not self._require_auth() or (r := self._readable_repo(t, repo)) is None:
            return
        branch, start = unquote(branch), payload.get("startingPoint") or "main"
        if branch in r.branches:
            return self._error(409, None, f"Reference already exists: refs/heads/{branch}")
        if r.files(start) is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {start}")
        r.branches[branch] = r.sha(start)
        self._json(200, {})

    def do_refs(self, query, t, repo):
        if (r := self._readable_repo(t, repo)) is None:
            return
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in sorted(r.branches.items())]
        self._json(200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def do_resolve(self, query, repo, rev, path, prefix=None):
        t = {"datasets/": "dataset", "spaces/": "space"}.get(prefix or "", "model")
        r = self._readable_repo(t, repo)
        if r is None or (files := self._files_at(r, rev)) is None:
            return
        entry = files.get(unquote(path))
        commit = {"X-Repo-Commit": r.sha(unquote(rev))}
        if entry is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}")
        headers = {**commit, "ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(len(entry.blob))})
        body, status = entry.blob, 200
        if rng := re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "")):
            start, end = int(rng.group(1)), int(rng.group(2) or len(body) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            body, status = body[start : end + 1], 206
        self._send(status, body, headers, content_type="application/octet-stream")

    # ---- collections (create / get / update metadata / add item), as huggingface_hub's collection API calls them ---
    def _collection_json(self, c: dict) -> dict:
        items = [{**it, "position": i} for i, it in enumerate(c["items"])]
        return {**{k: v for k, v in c.items() if k != "items"}, "items": items}

    def do_create_collection(self, query):
        payload = json.loads(self._body() or b"{}")
        if not self._require_auth():
            return
        ns, title = payload["namespace"], payload["title"]
        for c in self.hub.collections.values():
            if c["owner"]["name"] == ns and c["title"] == title:
                return self._json(409, {"error": "Collection already exists", "slug": c["slug"]})
        cid = hashlib.sha1(f"{ns}/{title}".encode()).hexdigest()[:24]
        slug = f"{ns}/{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}-{cid}"
        c = {
            "slug": slug,
            "title": title,
            "description": payload.get("description"),
            "owner": {"name": ns, "type": "user"},
            "items": [],
            "lastUpdated": "2026-01-01T00:00:00.000Z",
            "position": 0,
            "private": bool(payload.get("private")),
            "theme": "green",
            "upvotes": 0,
        }
        self.hub.collections[slug] = c
        self._json(200, self._collection_json(c))

    def _find_collection(self, slug: str) -> dict | None:
        key = slug.rsplit("-", 1)[-1]  # the Hub resolves a collection by the id at the end of its slug
        found = next((c for s, c in self.hub.collections.items() if s.rsplit("-", 1)[-1] == key), None)
        if found is None:
            self._error(404, None, "Collection not found")
        return found

    def do_get_collection(self, query, slug):
        if (c := self._find_collection(slug)) is not None:
            self._json(200, self._collection_json(c))

    def do_update_collection(self, query, slug):
        payload = json.loads(self._body() or b"{}")
        if not self._require_auth() or (c := self._find_collection(slug)) is None:
            return
        for key in ("title", "description", "private", "theme"):
            if key in payload:
                c[key] = payload[key]
        self._json(200, {"data": self._collection_json(c)})

    def do_add_collection_item(self, query, slug):
        payload = json.loads(self._body() or b"{}")
        if not self._require_auth() or (c := self._find_collection(slug)) is None:
            return
        item = payload["item"]
        if any(it["id"] == item["id"] and it["type"] == item["type"] for it in c["items"]):
            return self._json(409, {"error": "Item already in the collection"})
        oid = hashlib.sha1(f"{slug}/{item['type']}/{item['id']}".encode()).hexdigest()[:24]
        c["items"].append({"_id": oid, "id": item["id"], "type": item["type"], "note": {"text": payload.get("note")}})
        self._json(200, self._collection_json(c))


@pytest.fixture
def hub_server(monkeypatch):
    """A loopback Hub for one test; the huggingface_hub client points at it (online, xet off). Yields `HubServer`."""
    import huggingface_hub.constants as hc

    with HubServer() as server:
        for name, value in {
            "HF_ENDPOINT": server.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(hc, "ENDPOINT", server.endpoint)
        monkeypatch.setattr(
            hc, "HUGGINGFACE_CO_URL_TEMPLATE", server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hc, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(hc, "HF_URL_HOSTS", hc.HF_URL_HOSTS | {"127.0.0.1"})
        yield server
