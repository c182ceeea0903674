"""The Space / `retinalogos app`: the prompt builder, the model picker reading zoo.yaml, the `generate` API, and the UI
driven in headless Chromium (pick a grade, press Generate, an image appears)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from retinalogos_hub.config import load_config
from retinalogos_hub.errors import InputError
from retinalogos_hub.space import SpaceConfig, compose_caption, model_choices

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_caption_builder():
    text = compose_caption("right", "3: severe non-proliferative diabetic retinopathy", True, True,
                           ["haemorrhages", "microaneurysms"], "Taken with a handheld camera.")  # fmt: skip
    assert text.startswith("A colour fundus photograph of the right eye.")
    assert "severe non-proliferative diabetic retinopathy" in text and "macular oedema" in text
    assert "glaucoma" in text and "Scattered microaneurysms, haemorrhages" in text and text.endswith("camera.")
    assert "No lesions" in compose_caption("left", 0, False, False)
    with pytest.raises(InputError, match="grade 0-4"):
        compose_caption("left", 7, False, False)


def test_model_picker_reads_the_zoo():
    cfg = load_config(SpaceConfig, overrides=[f"zoo={ROOT / 'zoo.yaml'}"])
    refs = [ref for _, ref in model_choices(["my/extra"], cfg)]
    assert refs[:2] == ["tiny:lumina-next", "my/extra"] and "retinalogos/retinalogos-official-diffusers" in refs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served():
    pytest.importorskip("gradio", reason="gradio not installed (pip install -e '.[app]')")
    from retinalogos_hub.space import build_demo

    cfg = load_config(SpaceConfig, overrides=[f"zoo={ROOT / 'zoo.yaml'}", "steps=2"])
    demo = build_demo([], cfg)
    port = _free_port()
    demo.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.mark.slow
def test_api_generate_takes_the_prompt_first_and_returns_an_image(served):
    from gradio_client import Client
    from PIL import Image

    client = Client(served, verbose=False)
    path = client.predict("A colour fundus photograph of the left eye.", api_name="/generate")
    assert Image.open(path).size == (64, 64)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (scripts/setup_chromium.sh installs it)")
def test_ui_in_headless_chromium(served, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[app]')")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(served, timeout=60_000)
        page.get_by_label("ICDR grade").click()
        page.get_by_role("option", name="3: severe non-proliferative diabetic retinopathy").click()
        caption = page.locator("#caption textarea")
        sync_api.expect(caption).to_have_value(
            __import__("re").compile("Impression: severe non-proliferative diabetic retinopathy"), timeout=30_000
        )
        page.get_by_label("Haemorrhages", exact=False).first.check()
        page.locator("#generate").click()
        img = page.locator("#result img")
        img.wait_for(state="visible", timeout=120_000)
        page.locator("#gallery img").first.wait_for(state="visible", timeout=60_000)  # the gallery updates after
        assert page.locator("#gallery img").count() >= 1
        shot = tmp_path / "space.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("RETINALOGOS_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["RETINALOGOS_SCREENSHOT"])
        browser.close()
