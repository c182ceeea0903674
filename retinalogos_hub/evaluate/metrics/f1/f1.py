"""F1 score; `average="macro"` by default, so every grade counts the same however rare."""

import datasets
import evaluate
from sklearn.metrics import f1_score

_DESCRIPTION = "F1 = harmonic mean of precision and recall, averaged over classes (macro by default)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted labels.
    references (list of int): ground-truth labels.
    average (str): "macro" (default), "micro", "weighted" or "binary".
    labels (list of int, optional): the classes to average over (default: those present).
Returns:
    f1 (float): in [0, 1].
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}),
        )

    def _compute(self, predictions, references, average="macro", labels=None):
        return {"f1": float(f1_score(references, predictions, average=average, labels=labels, zero_division=0))}
