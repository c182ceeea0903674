"""Quadratic weighted kappa: agreement on an ordinal scale (DR grades), penalising far-off grades quadratically."""

import datasets
import evaluate
from sklearn.metrics import cohen_kappa_score

_DESCRIPTION = (
    "Cohen's kappa with quadratic weights, the standard DR grading agreement score (1 = perfect, 0 = chance)."
)
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted grades.
    references (list of int): ground-truth grades.
    labels (list of int, optional): the full grade scale, e.g. [0, 1, 2, 3, 4].
Returns:
    qwk (float): in [-1, 1]; 0.0 when both sides hold one and the same single grade.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class QWK(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, labels=None):
        kappa = cohen_kappa_score(references, predictions, labels=labels, weights="quadratic")
        return {"qwk": 0.0 if kappa != kappa else float(kappa)}  # NaN when there is no variance at all
