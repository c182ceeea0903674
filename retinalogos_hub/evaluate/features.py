"""Image feature extractors for the distribution metrics (FD, KID, PRDC) and the memorisation audit.

`load_features(spec)` accepts:
- `inception`: the 2048-d pool3 of the standard TF-FID Inception (`fid.InceptionFeatures`, the paper's Table 1);
- `pixels`: the image itself, grey and shrunk to 16x16 (a feature-free baseline, e.g. for near-copies);
- `timm:NAME` (pretrained weights through timm's Hub cache) or `timm:DIR` (a folder `timm` saved: config.json +
  model.safetensors): any timm image backbone, its pooled features (`num_classes=0`);
- a Hub id, a local directory or `tiny:<name>` of a transformers vision model (DINOv2, ViT, ResNet, a fundus
  foundation model with an `AutoModel` class): the pooled output, else the CLS token of the last hidden state.

Every extractor maps a PIL image to a CHW tensor in `preprocess` (run in the loader workers) and a batch to
(N, D) float features in `forward`; `key` identifies it (model and weights) for the feature cache.
"""

from __future__ import annotations

import abc
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import InputError
from ..models import TINY_PREFIX, resolve
from .images import ImageSet

INCEPTION = "inception"
PIXELS = "pixels"
TIMM = "timm:"
PIXEL_SIDE = 16


class Extractor(nn.Module, abc.ABC):
    """Base class: `name` (shown in reports), `key` (the cache identity), `num_features`."""

    name: str
    key: str
    num_features: int

    @abc.abstractmethod
    def preprocess(self, im: Image.Image) -> torch.Tensor:
        """One image as the model's input tensor."""


class InceptionExtractor(Extractor):
    def __init__(self, weights: str | Path | None):
        super().__init__()
        from .fid import InceptionFeatures

        self.net = InceptionFeatures(weights)
        self.weights = self.net.weights
        self.name, self.num_features = INCEPTION, self.net.num_features
        self.key = f"inception:{Path(self.weights).resolve()}"

    def preprocess(self, im: Image.Image) -> torch.Tensor:
        from .fid import resize_tf1

        x = torch.from_numpy(np.array(im, dtype=np.uint8)).permute(2, 0, 1)[None].float()
        return resize_tf1(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PixelExtractor(Extractor):
    def __init__(self):
        super().__init__()
        self.name, self.key, self.num_features = PIXELS, f"pixels:{PIXEL_SIDE}", PIXEL_SIDE * PIXEL_SIDE

    def preprocess(self, im: Image.Image) -> torch.Tensor:
        grey = im.convert("L").resize((PIXEL_SIDE, PIXEL_SIDE), Image.BILINEAR)
        return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0).flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class TransformersExtractor(Extractor):
    """A transformers vision backbone (`AutoModel` + `AutoImageProcessor`)."""

    def __init__(self, spec: str, option: str):
        super().__init__()
        from transformers import AutoImageProcessor, AutoModel

        path = resolve(spec, option=option)
        try:
            self.processor = AutoImageProcessor.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{option} {spec}: not a transformers vision model ({str(e).splitlines()[0]})") from None
        self.name = spec
        self.key = f"transformers:{_identity(spec, path)}"
        cfg = self.model.config
        sizes = getattr(cfg, "hidden_sizes", None)
        self.num_features = int(sizes[-1] if sizes else cfg.hidden_size)

    def preprocess(self, im: Image.Image) -> torch.Tensor:
        return self.processor(images=im, return_tensors="pt")["pixel_values"][0]

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        feats = pooled if pooled is not None else out.last_hidden_state[:, 0]
        return feats.flatten(1).float()


class TimmExtractor(Extractor):
    """A timm backbone with its classifier removed (pooled features)."""

    def __init__(self, spec: str, option: str):
        super().__init__()
        import timm
        from timm.data import create_transform, resolve_data_config

        ref = spec[len(TIMM) :]
        path = Path(ref).expanduser()
        if ref.startswith((".", "/", "~")) and not path.is_dir():
            raise InputError(f"{option} {spec}: local folder not found (a folder timm saved: config.json + weights)")
        try:
            if path.is_dir():
                cfg = json.loads((path / "config.json").read_text())
                weights = next(path / f for f in ("model.safetensors", "pytorch_model.bin") if (path / f).is_file())
                args = {k: v for k, v in cfg.get("model_args", {}).items() if k != "num_classes"}
                self.model = timm.create_model(
                    cfg["architecture"],
                    pretrained=True,
                    pretrained_cfg_overlay={**cfg.get("pretrained_cfg", {}), "file": str(weights)},
                    num_classes=0,
                    **args,
                )
            else:
                self.model = timm.create_model(ref, pretrained=True, num_classes=0)
        except (OSError, StopIteration, KeyError, RuntimeError, ValueError) as e:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(
                f"{option} {spec}: not a loadable timm model ({why}); offline, pass timm:DIR, a folder timm saved"
            ) from None
        self.model.eval()
        self.transform = create_transform(**resolve_data_config({}, model=self.model))
        self.name, self.num_features = spec, int(self.model.num_features)
        self.key = f"timm:{_identity(ref, path if path.is_dir() else None)}"

    def preprocess(self, im: Image.Image) -> torch.Tensor:
        return self.transform(im)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1).float()


def _identity(spec: str, path: Path | None) -> str:
    """A model's cache identity: the Hub id or tiny name, or a local folder's resolved path and file sizes."""
    from ..stage import folder_fingerprint

    if path is None or spec.startswith(TINY_PREFIX) or not Path(spec).expanduser().exists():
        return spec
    return f"{Path(path).resolve()}#{folder_fingerprint(path)}"


def load_features(spec: str, *, weights: str | Path | None = None, option: str = "--features") -> Extractor:
    """The extractor `spec` names (see the module docstring); `weights` is the Inception TorchScript."""
    spec = str(spec).strip()
    if spec == INCEPTION:
        return InceptionExtractor(weights)
    if spec == PIXELS:
        return PixelExtractor()
    if spec.startswith(TIMM):
        return TimmExtractor(spec, option)
    return TransformersExtractor(spec, option)


class _Preprocessed(torch.utils.data.Dataset):
    """Decoded, preprocessed pixels (the preprocessing runs in the loader workers, in parallel with the network)."""

    def __init__(self, images: ImageSet, extractor: Extractor):
        self.images, self.extractor = images, extractor

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        im = self.images.image(i)
        return self.extractor.preprocess(im), torch.tensor(im.size)


def extract(images: ImageSet, extractor: Extractor, *, batch_size: int, workers: int, device: str) -> torch.Tensor:
    """(N, D) float64 features of every image; warns when the set mixes image sizes."""
    loader = torch.utils.data.DataLoader(_Preprocessed(images, extractor), batch_size=batch_size, num_workers=workers)
    extractor = extractor.to(device)
    feats, sizes = [], set[tuple[int, int]]()
    # features are defined in fp32: keep cuDNN from TF32 convolutions (its default on Ampere and later GPUs)
    with torch.backends.cudnn.flags(enabled=True, benchmark=True, deterministic=False, allow_tf32=False):
        with torch.inference_mode():
            for x, wh in loader:
                sizes.update(map(tuple, wh.tolist()))
                feats.append(extractor(x.to(device)).double().cpu())
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:4])
        more = ", ..." if len(sizes) > 4 else ""
        warnings.warn(f"{images.name}: mixed image sizes ({shown}{more}); each is resized", stacklevel=2)
    return torch.cat(feats)


def cached(images: ImageSet, extractor: Extractor, work, *, batch_size: int, workers: int, device: str) -> torch.Tensor:
    """`extract`, committed to the work folder `work` (a `stage.WorkDir`) under a key of the set's content and the
    extractor: the same set under two names is embedded once, and a rerun embeds nothing."""
    import io

    from .. import stage

    name = stage.fingerprint(str(images.path.resolve()), extractor.key, images.fingerprint) + ".pt"
    if work.path(name).is_file():
        return torch.load(work.path(name))
    feats = extract(images, extractor, batch_size=batch_size, workers=workers, device=device)
    buf = io.BytesIO()
    torch.save(feats, buf)
    work.commit(name, buf.getvalue())
    return feats
