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

from ..errors import HubError, InputError, OfflineError
from .config import CaptionConfig
from .prompt import json_schema
from .template import TemplateCaptioner


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

    def __init__(self, cfg: CaptionConfig):
        self.model_name = "template"
        self.cfg = cfg

    def answer(self, items: list[Item], attempt: int = 0) -> list[str | Exception]:
        captioner = TemplateCaptioner.from_config(self.cfg, seed_offset=attempt)
        out = []
        for item in items:
            prose, fields = captioner.caption(item.row)
            out.append(json.dumps({**fields, "caption": prose}))
        return out


class TransformersBackend:
    needs_image = True

    def __init__(self, cfg: CaptionConfig):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from ..models import resolve

        tc = cfg.transformers
        if tc is None:
            raise InputError("the transformers backend needs the `transformers:` section of the recipe")
        self.model_name = tc.model
        try:
            path = resolve(tc.model, option="transformers.model")
        except OfflineError as e:  # the recipe key is what to change, not a CLI option
            raise OfflineError(
                str(e),
                hint="download it elsewhere and override transformers.model=/path/to/model "
                "(or tiny:<name> for an embedded tiny model)",
            ) from None
        device = tc.device
        if device is None:
            from accelerate import PartialState  # the right GPU per process under `accelerate launch`

            device = str(PartialState().device)
        self.device = torch.device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.processor = AutoProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"  # decoder-only batching: prompts end where generation starts
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.chunk_size, self.max_pixels, self.max_new_tokens = tc.batch_size, tc.max_pixels, tc.max_new_tokens
        self.seed = cfg.seed

    def answer(self, items: list[Item], attempt: int = 0) -> list[str | Exception]:
        import torch

        from .prompt import messages

        texts = [
            self.processor.apply_chat_template(messages(i.prompt), add_generation_prompt=True, tokenize=False)
            for i in items
        ]
        images = [fit_pixels(i.image, self.max_pixels) for i in items]
        enc = self.processor(text=texts, images=images, return_tensors="pt", padding=True)
        enc = enc.to(self.device, dtype=self.model.dtype)  # pixels in the model's dtype (bf16 on GPU); ids stay int
        sample = attempt > 0  # greedy would repeat the same malformed/inconsistent answer
        if sample:
            torch.manual_seed(self.seed + attempt)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=sample,
                **({"temperature": 0.8, "top_p": 0.95} if sample else {}),
            )
        return self.processor.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


class OpenAIBackend:
    needs_image = True

    def __init__(self, cfg: CaptionConfig):
        from openai import OpenAI

        oc = cfg.openai
        if oc is None:
            raise InputError("the openai backend needs the `openai:` section of the recipe")
        self.base_url, self.key_env = oc.base_url.rstrip("/"), oc.api_key_env
        served = _reachable(self.base_url, self.key_env)
        if oc.model and oc.model not in served:
            raise InputError(
                f"openai.model={oc.model!r} is not served by {self.base_url}; it serves: {', '.join(served)}"
            )
        self.model_name = oc.model or served[0]
        # The client retries connection errors, 408/429/5xx with exponential backoff.
        self.client = OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(self.key_env) or "EMPTY",
            timeout=oc.timeout_s,
            max_retries=oc.max_retries,
        )
        self.chunk_size = max(oc.concurrency * 4, 16)
        self.concurrency, self.max_pixels, self.max_new_tokens = oc.concurrency, oc.max_pixels, oc.max_new_tokens
        self.seed = cfg.seed
        self.schema = json_schema(cfg.max_words) if oc.guided_json else None

    def answer(self, items: list[Item], attempt: int = 0) -> list[str | Exception]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda item: self._one(item, attempt), items))

    def _one(self, item: Item, attempt: int) -> str | Exception:
        import openai

        from .prompt import messages

        image = data_url(fit_pixels(item.image, self.max_pixels))
        kwargs = dict(
            model=self.model_name,
            messages=messages(item.prompt, image),
            max_tokens=self.max_new_tokens,
            temperature=0.0 if attempt == 0 else 0.8,
            seed=self.seed + attempt,
        )
        if self.schema:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "fundus_caption", "schema": self.schema},
            }
        try:
            resp = self.client.chat.completions.create(**kwargs)
        except openai.AuthenticationError as e:  # its text can echo part of the key: not printed
            raise HubError(
                f"{self.base_url} refused the API key (HTTP {e.status_code})",
                hint=f"set {self.key_env} to a key this server accepts",
            ) from None
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


def _reachable(base_url: str, key_env: str) -> list[str]:
    """The served model ids; fails in < 2 s with the URL when the server cannot be reached."""
    import openai

    key = os.environ.get(key_env) or "EMPTY"
    probe = openai.OpenAI(base_url=base_url, api_key=key, timeout=1.5, max_retries=0)
    try:
        served = [m.id for m in probe.models.list()]
    except openai.AuthenticationError as e:  # its text can echo part of the key: not printed
        raise HubError(
            f"{base_url} refused the API key (HTTP {e.status_code})", hint=f"set {key_env} to a key this server accepts"
        ) from None
    except openai.OpenAIError as e:
        raise HubError(
            f"cannot reach an OpenAI-compatible server at {base_url} ({type(e).__name__}: {e})",
            hint="start one (e.g. `vllm serve Qwen/Qwen2.5-VL-7B-Instruct`) and pass its URL with "
            "openai.base_url=http://HOST:PORT/v1",
        ) from None
    if not served:
        raise HubError(f"{base_url}/models lists no model")
    return served


BACKENDS = {"template": TemplateBackend, "transformers": TransformersBackend, "openai": OpenAIBackend}


def make_backend(cfg: CaptionConfig):
    """The backend `cfg.backend` names, set up (a model loaded, a server reached) or failing before any work."""
    return BACKENDS[cfg.backend](cfg)
