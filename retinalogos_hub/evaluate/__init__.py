"""Evaluation of synthetic fundus data, as in the paper: FID/KID against real sets (Table 1), CLIP score, the
downstream gain of classifiers trained on real + synthetic images (Table 2), and an expert Turing test.

Every run writes `report.json` and `report.html` into its output directory (see `report.py`).
Modules: `images` (image sets from dataset dirs or folders), `fid`, `clip`, `downstream`, `turing`, `report`;
`metrics/` holds the `evaluate` metric modules loaded by path so they work offline.
"""
