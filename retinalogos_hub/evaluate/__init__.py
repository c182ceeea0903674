"""Evaluation of synthetic fundus data, as in the paper and as reviewers now ask: FD/KID and precision / recall /
density / coverage in any feature space (Inception for Table 1, DINOv2, timm or fundus backbones), overall and per
condition; a memorisation audit (near-copies of training images); fidelity (a frozen grader against the requested
grade, laterality from the optic disc); CLIP score; the downstream gain of classifiers trained on real + synthetic
images over k seeds with CIs and a paired comparison (Table 2); and an expert Turing test with rater agreement.

Every run writes `report.json` and `report.html` into its output directory (see `report.py`) and `retinalogos.json`
(the stage-output contract, `stage.py`: the resolved recipe, the inputs' fingerprints, counts). Each command's settings
live in a recipe under `recipes/eval/` (`fid.yaml`, `memorization.yaml`, `fidelity.yaml`, `clip_score.yaml`,
`turing.yaml`, one per downstream task). Modules: `images` (image sets from dataset dirs or folders), `features`
(feature extractors and their cache), `fid`, `memorization`, `fidelity`, `clip`, `downstream`, `turing`, `report`;
`metrics/` holds the `evaluate` metric modules loaded by path so they work offline.
"""

from __future__ import annotations
