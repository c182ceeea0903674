"""Test environment: offline, one torch thread, a throwaway HF cache. Set before anything imports torch or HF."""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="rl-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def fundus():
    """fundus(width, height=None, **kw) -> PIL image (procedural, deterministic per seed)."""
    from retinalogos_hub.demo.fundus import fundus_image

    return fundus_image


from hub_server import hub_server  # noqa: E402,F401  (loopback Hub fixture, see tests/hub_server.py)


@pytest.fixture
def refusing_server():
    """An OpenAI-compatible endpoint that answers every request with 401 and echoes the Authorization header back,
    as real servers do; yields its base URL. Tests assert our errors never print the key."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _refuse(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = json.dumps(
                {"error": {"message": f"Incorrect API key provided: {self.headers['Authorization']}"}}
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _refuse

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
