"""Evaluation of synthetic fundus data, as in the paper: FID/KID against real sets (Table 1), CLIP score, the
downstream gain of classifiers trained on real + synthetic images (Table 2), and an expert Turing test.

Every run writes `report.json` and `report.html` into its output directory (see `report.py`) and `retinalogos.json`
(the stage-output contract, `stage.py`: the resolved recipe, the inputs' fingerprints, counts). Each command's settings
live in a recipe under `recipes/eval/` (`fid.yaml`, `clip_score.yaml`, `turing.yaml`, one per downstream task).
Modules: `images` (image sets from dataset dirs or folders), `fid`, `clip`, `downstream`, `turing`, `report`;
`metrics/` holds the `evaluate` metric modules loaded by path so they work offline.
"""

from __future__ import annotations
