"""Frozen model wrappers that score images against text, shared by purify (step 2) and evaluation (CLIP score)."""

from __future__ import annotations

import re

from .models import resolve

DTYPES = ("float32", "float16", "bfloat16")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=\S)")


def split_sentences(text: str) -> list[str]:
    """A caption's sentences (split after . ! ? ; followed by a space; decimals such as 0.8 stay whole)."""
    return [s.strip() for s in _SENTENCE.split(text or "") if s.strip()]


class ClipScorer:
    """Image-caption cosine similarity of any transformers CLIP-family model (CLIP, SigLIP, Long-CLIP ports, ...);
    shared by purify and `evaluate clip-score`. `dtype` is one of DTYPES (weights and pixels in it)."""

    def __init__(self, model: str, *, option: str = "clip.model", device: str = "cpu", dtype: str = "float32"):
        import torch
        from transformers import AutoModel, AutoProcessor

        path = resolve(model, option=option)
        self.dtype = getattr(torch, dtype)
        self.model = AutoModel.from_pretrained(path, dtype=self.dtype).eval().to(device)
        self.processor = AutoProcessor.from_pretrained(path)
        self.device = device
        self.max_len = getattr(self.model.config.text_config, "max_position_embeddings", 77)
        self.siglip = "siglip" in self.model.config.model_type

    def _tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    def image_features(self, images: list):
        import torch

        pixels = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            img = self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))
        img = img if torch.is_tensor(img) else img.pooler_output  # transformers 5 returns an output object
        return torch.nn.functional.normalize(img.float(), dim=-1)

    def text_features(self, texts: list[str]):
        import torch

        enc = self._tokenizer()(
            texts,
            return_tensors="pt",
            padding="max_length" if self.siglip else True,
            truncation=True,
            max_length=self.max_len,
        ).to(self.device)
        with torch.inference_mode():
            txt = self.model.get_text_features(**enc)
        txt = txt if torch.is_tensor(txt) else txt.pooler_output
        return torch.nn.functional.normalize(txt.float(), dim=-1)

    def cosine(self, images: list, captions: list[str]):
        """(N,) float tensor on the CPU; captions beyond the text window are truncated."""
        return (self.image_features(images) * self.text_features(captions)).sum(-1).cpu()

    def __call__(self, images: list, captions: list[str]) -> list[float]:
        return [round(float(s), 6) for s in self.cosine(images, captions)]

    def segments(self, caption: str) -> list[str]:
        """The caption cut into pieces the text tower reads whole: its sentences, and a sentence longer than the
        window is cut into consecutive word windows that fit."""
        tok = self._tokenizer()
        room = self.max_len - 2  # start and end tokens
        out: list[str] = []
        for sentence in split_sentences(caption) or [caption]:
            words = sentence.split()
            while words:
                take = len(words)
                while take > 1 and len(tok(" ".join(words[:take]), add_special_tokens=False)["input_ids"]) > room:
                    take = max(1, take * 3 // 4)
                out.append(" ".join(words[:take]))
                words = words[take:]
        return out

    def segment_scores(self, images: list, captions: list[str]) -> list[list[tuple[str, float]]]:
        """Per caption, (segment, cosine) for every segment (`segments`): the whole caption is read, not only the
        beginning that fits the text window. One image pass per caption, all segments in one text batch."""
        img = self.image_features(images)
        pieces = [self.segments(c) for c in captions]
        flat = [p for ps in pieces for p in ps]
        txt = self.text_features(flat) if flat else None
        out, k = [], 0
        for i, ps in enumerate(pieces):
            sims = (txt[k : k + len(ps)] @ img[i]).cpu() if ps and txt is not None else []
            out.append([(p, round(float(s), 6)) for p, s in zip(ps, sims)])
            k += len(ps)
        return out
