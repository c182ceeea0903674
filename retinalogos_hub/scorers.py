"""Frozen model wrappers that score images against text, shared by purify (step 2) and evaluation (CLIP score)."""

from __future__ import annotations

from .models import resolve


class ClipScorer:
    """Image-caption cosine similarity of any CLIP-family model; shared by purify and `evaluate clip-score`."""

    def __init__(self, model: str, *, option: str = "clip.model", device: str = "cpu"):
        from transformers import AutoModel, AutoProcessor

        path = resolve(model, option=option)
        self.model = AutoModel.from_pretrained(path).eval().to(device)
        self.processor = AutoProcessor.from_pretrained(path)
        self.device = device
        self.max_len = getattr(self.model.config.text_config, "max_position_embeddings", 77)

    def cosine(self, images: list, captions: list[str]):
        """(N,) float tensor on the CPU; captions beyond the text window are truncated."""
        import torch

        inputs = self.processor(
            text=captions,
            images=[im.convert("RGB") for im in images],
            return_tensors="pt",
            padding="max_length" if "siglip" in self.model.config.model_type else True,
            truncation=True,
            max_length=self.max_len,
        ).to(self.device)
        with torch.inference_mode():
            img = self.model.get_image_features(pixel_values=inputs["pixel_values"])
            txt = self.model.get_text_features(**{k: v for k, v in inputs.items() if k != "pixel_values"})
        img = img if torch.is_tensor(img) else img.pooler_output  # transformers 5 returns an output object
        txt = txt if torch.is_tensor(txt) else txt.pooler_output
        return torch.nn.functional.cosine_similarity(img.float(), txt.float(), dim=-1).cpu()

    def __call__(self, images: list, captions: list[str]) -> list[float]:
        return [round(float(s), 6) for s in self.cosine(images, captions)]
