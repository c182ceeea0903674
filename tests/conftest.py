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
