"""push-dataset export throughput: `hub.export.export_dataset` (per-field licence tiers, metadata stripped from every
published image, per-source configs, shards sized by their rows) vs datasets' plain parquet export of the same rows
(what `push_to_hub` writes before uploading), side by side on the same stage directory.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/push_dataset.py [--rows 2000] [--size 512] [--open 0.5] [--repeat 3]

Rows are procedural fundus JPEGs, `--exif` of them with EXIF (default all: the worst case; curation re-encodes, so
curated images carry none); `--open` is the share of rows from a re-hostable source (the others keep
no image, which is cheaper than the baseline). Prints rows/s for both and the ratio ours/baseline (time).
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

from datasets import Dataset, load_from_disk
from PIL import Image

from retinalogos_hub import licenses
from retinalogos_hub.demo.fundus import fundus_image
from retinalogos_hub.hub.export import export_dataset
from retinalogos_hub.schema import CAPTION_FIELD_NAMES, CAPTIONED


def make_stage(path: Path, rows: int, size: int, open_share: float, exif_share: float = 1.0) -> Path:
    licenses.LICENSES.setdefault(
        "openbench", licenses.License("CC-BY-4.0", licenses.OPEN, "https://example.org", "bench")
    )
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"
    base = [fundus_image(size, seed=i) for i in range(8)]

    def gen():
        for i in range(rows):
            buf = io.BytesIO()
            tags = exif.tobytes() if i < rows * exif_share else b""  # curated images carry none
            base[i % 8].save(buf, "JPEG", quality=92, exif=tags)
            src = "openbench" if i < rows * open_share else "eyepacs"
            yield {
                "image": {"bytes": buf.getvalue(), "path": None},
                "id": f"{src}/{i}",
                "source": src,
                "source_id": str(i),
                "patient_id": None,
                "eye": "left",
                "dr_grade": i % 5,
                "dme": None,
                "glaucoma": None,
                "diseases": [],
                "findings": None,
                "age": None,
                "age_band": None,
                "sex": None,
                "quality": None,
                "quality_score": 0.9,
                "width": size,
                "height": size,
                "split": "train",
                "license": "x",
                "redistributable": src == "openbench",
                "caption": "A colour fundus photograph. " * 20,
                "caption_fields": {k: "" for k in CAPTION_FIELD_NAMES},
                "caption_model": "template",
                "caption_prompt_version": "v1",
                "caption_consistent": True,
                "caption_issues": [],
            }

    Dataset.from_generator(gen, features=CAPTIONED).save_to_disk(str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--open", type=float, default=0.5)
    ap.add_argument("--exif", type=float, default=1.0, help="share of images carrying EXIF (curated ones: none)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N (the box is shared: take the least disturbed run)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stage = make_stage(tmp / "stage", args.rows, args.size, args.open, args.exif)

        baseline = ours = float("inf")
        for _ in range(args.repeat):  # interleaved, so both see the same load
            t = time.perf_counter()
            ds = load_from_disk(str(stage))
            (tmp / "baseline").mkdir()
            ds.to_parquet(str(tmp / "baseline" / "train-00000-of-00001.parquet"))
            baseline = min(baseline, time.perf_counter() - t)
            shutil.rmtree(tmp / "baseline")

            t = time.perf_counter()
            export_dataset(stage, tmp / "ours", max_shard_size="500MB")
            ours = min(ours, time.perf_counter() - t)
            shutil.rmtree(tmp / "ours")
    print(f"rows={args.rows} size={args.size} open={args.open} exif={args.exif}")
    print(f"baseline (plain parquet):  {args.rows / baseline:8.1f} rows/s")
    print(f"ours (export_dataset):     {args.rows / ours:8.1f} rows/s")
    print(f"ratio ours/baseline (time): {ours / baseline:.2f}x")


if __name__ == "__main__":
    main()
