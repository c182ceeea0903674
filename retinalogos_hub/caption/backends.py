"""Caption backends. Each turns a batch of (row, image, prompt) items into raw answers (JSON text or an exception).

- `template`: no model; TemplateCaptioner prose and fields, serialised as the same JSON a VLM is asked for.
- `transformers`: any AutoModelForImageTextToText + AutoProcessor (Hub id, local path or `tiny:<name>`), batched
  generation with left padding; bf16 on GPU; greedy first, sampling on retries.
- `openai`: any OpenAI-compatible server (vLLM, SGLang, TGI): bounded concurrent requests, the client's retries with
  exponential backoff, images as base64 data URLs, JSON-schema guided decoding via `response_format`.
"""

from __future__ import annotations

import base64
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image

from ..errors import HubError, InputError
from .prompt import json_schema
from .template import TemplateCaptioner

BACKENDS = ("template", "transformers", "openai")
DEFAULT_VLM = "Qwen/Qwen2.5-VL-7B-Instruct"


@dataclass
class Item:
    row: dict  # schema labels (no pixels)
    image: Image.Image | None  # None for the template backend
    prompt: str


def fit_pixels(image: Image.Image, max_pixels: int | None) -> Image.Image:
    """Downscale (keeping the aspect ratio) so that width * height <= max_pixels; the image-size control."""
    if max_pixels and image.width * image.height > max_pixels:
        s = (max_pixels / (image.width * image.height)) ** 0.5
        image = image.resize((max(1, int(image.width * s)), max(1, int(image.height * s))), Image.BICUBIC)
    return image


class TemplateBackend:
    needs_image = False
    chunk_size = 256

    def __init__(self, *, seed: int = 0, min_words: int = 80, max_words: int = 200):
        self.model_name = "template"
        self.seed, self.min_words, self.max_words = seed, min_words, max_words

    def answer(self, items: list[Item], attempt: int = 0) -> list[str | Exception]:
        captioner = TemplateCaptioner(seed=self.seed + attempt, min_words=self.min_words, max_words=self.max_words)
        out = []
        for item in items:
            prose, fields = captioner.caption(item.row)
            out.append(json.dumps({**fields, "caption": prose}))
        return out


class TransformersBackend:
    needs_image = True

    def __init__(self, model: str | None = None, *, batch_size: int = 8, max_pixels: int | None = None,
                 max_new_tokens: int = 512, seed: int = 0, device: str | None = None):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from ..models import resolve

        self.model_name = model or DEFAULT_VLM
        path = resolve(self.model_name, option="--model")
        if device is None:
            from accelerate import PartialState  # the right GPU per process under `accelerate launch`

            device = str(PartialState().device)
        self.device = torch.device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.processor = AutoProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.chunk_size, self.max_pixels, self.max_new_tokens, self.seed = batch_size, max_pixels, max_new_tokens, seed

    def answer(self, items: list[Item], attempt: int = 0) -> list[str | Exception]:
        import torch

        from .prompt import messages

        texts = [self.processor.apply_chat_template(messages(i.prompt), add_generation_prompt=True, tokenize=False) for i in items]
        images = [fit_pixels(i.image, self.max_pixels) for i in items]
        enc = self.processor(text=texts, images=images, return_tensors="pt", padding=True)
        enc = enc.to(self.device, dtype=self.model.dtype)  # pixel values in the model's dtype (bf16 on GPU); ids stay int
        sample = attempt > 0  # greedy would repeat the same malformed/inconsistent answer
        if sample:
            torch.manual_seed(self.seed + attempt)
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=sample,
                                      **({"temperature": 0.8, "top_p": 0.95} if sample else {}))
        return self.processor.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


class OpenAIBackend:
    needs_image = True

    def __init__(self, model: str | None = None, *, base_url: str | None = None, concurrency: int = 8,
                 max_pixels: int | None = None, max_new_tokens: int = 512, seed: int = 0, timeout: float = 300.0,
                 max_retries: int = 4, guided: bool = True, max_words: int = 200):
        from openai import OpenAI

        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1").rstrip("/")
        served = _reachable(self.base_url)
        if model and model not in served:
            raise InputError(f"--model {model!r} is not served by {self.base_url}; it serves: {', '.join(served)}")
        self.model_name = model or served[0]
        # The client retries connection errors, 408/429/5xx with exponential backoff.
        self.client = OpenAI(base_url=self.base_url, api_key=os.environ.get("OPENAI_API_KEY") or "EMPTY",
                             timeout=timeout, max_retries=max_retries)
        self.chunk_size = max(concurrency * 4, 16)
        self.concurrency, self.max_pixels, self.max_new_tokens, self.seed = concurrency, max_pixels, max_new_tokens, seed
        self.schema = json_schema(max_words) if guided else None

    def answer(self, items: list[Item], attempt: int = 0) -> list[str | Exception]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda item: self._one(item, attempt), items))

    def _one(self, item: Item, attempt: int) -> str | Exception:
        import openai

        from .prompt import messages

        kwargs = dict(model=self.model_name, messages=messages(item.prompt, data_url(fit_pixels(item.image, self.max_pixels))),
                      max_tokens=self.max_new_tokens, temperature=0.0 if attempt == 0 else 0.8, seed=self.seed + attempt)
        if self.schema:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {"name": "fundus_caption", "schema": self.schema}}
        try:
            resp = self.client.chat.completions.create(**kwargs)
        except openai.AuthenticationError as e:  # its text can echo part of the key: not printed
            raise HubError(f"{self.base_url} refused the API key (HTTP {e.status_code})",
                           hint="set OPENAI_API_KEY to a key this server accepts") from None
        except (openai.APIConnectionError, openai.NotFoundError) as e:
            # the server went away or refuses us: stop the job (committed rows stay; a rerun resumes)
            raise HubError(f"{self.base_url}: {type(e).__name__}: {e}") from None
        except openai.APIStatusError as e:  # this row's request was refused (e.g. image too large): flag the row
            return e
        return resp.choices[0].message.content or ""


def data_url(image: Image.Image) -> str:
    """A base64 JPEG data URL (re-encoding also drops any EXIF/metadata)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=92)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _reachable(base_url: str) -> list[str]:
    """The served model ids; fails in < 2 s with the URL when the server cannot be reached."""
    import openai

    probe = openai.OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY") or "EMPTY", timeout=1.5, max_retries=0)
    try:
        served = [m.id for m in probe.models.list()]
    except openai.AuthenticationError as e:  # its text can echo part of the key: not printed
        raise HubError(f"{base_url} refused the API key (HTTP {e.status_code})",
                       hint="set OPENAI_API_KEY to a key this server accepts") from None
    except openai.OpenAIError as e:
        raise HubError(f"cannot reach an OpenAI-compatible server at {base_url} ({type(e).__name__}: {e})",
                       hint="start one (e.g. `vllm serve Qwen/Qwen2.5-VL-7B-Instruct`) and pass its URL with --base-url") from None
    if not served:
        raise HubError(f"{base_url}/models lists no model")
    return served


def make_backend(name: str, *, model: str | None = None, batch_size: int = 8, base_url: str | None = None,
                 concurrency: int = 8, max_pixels: int | None = None, max_new_tokens: int = 512, seed: int = 0,
                 min_words: int = 80, max_words: int = 200, device: str | None = None):
    if name == "template":
        return TemplateBackend(seed=seed, min_words=min_words, max_words=max_words)
    if name == "transformers":
        return TransformersBackend(model, batch_size=batch_size, max_pixels=max_pixels, max_new_tokens=max_new_tokens, seed=seed, device=device)
    if name == "openai":
        return OpenAIBackend(model, base_url=base_url, concurrency=concurrency, max_pixels=max_pixels,
                             max_new_tokens=max_new_tokens, seed=seed, max_words=max_words)
    raise InputError(f"--backend {name!r}: unknown; choose one of {', '.join(BACKENDS)}")
