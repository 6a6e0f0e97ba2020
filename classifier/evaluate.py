"""Quality report for a classifier's predictions: accuracy, macro-F1, confusions, answer curve."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support

from classifier.calibration import CurvePoint, answer_curve, expected_calibration_error
from classifier.model import OUT_OF_SCOPE, Prediction


@dataclass
class IntentRow:
    intent: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    n: int
    accuracy: float  # top guess right, in-scope messages
    macro_f1: float
    coverage: float  # in-scope messages answered automatically
    precision: float  # automatic answers that were right
    refusal_out_of_scope: float | None  # out-of-scope / unknown-intent messages not answered
    ece: float
    confusions: list[tuple[str, str, int]] = field(default_factory=list)
    intents: list[IntentRow] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self, max_rows: int = 200) -> str:
        lines = [
            f"messages: {self.n}",
            f"accuracy (in-scope, top guess): {self.accuracy:.2%}",
            f"macro-F1: {self.macro_f1:.4f}",
            f"automatic answers: coverage {self.coverage:.2%} of in-scope messages, "
            f"precision {self.precision:.2%}",
        ]
        if self.refusal_out_of_scope is not None:
            lines.append(f"out-of-scope refused: {self.refusal_out_of_scope:.2%}")
        lines.append(f"expected calibration error: {self.ece:.4f}")
        lines.append("")
        lines.append("worst confusions (true -> predicted: count)")
        for true, pred, count in self.confusions:
            lines.append(f"  {true} -> {pred}: {count}")
        lines.append("")
        lines.append(f"{'intent':<40} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}")
        for row in self.intents[:max_rows]:
            lines.append(
                f"{row.intent:<40} {row.precision:>6.3f} {row.recall:>6.3f} {row.f1:>6.3f} "
                f"{row.support:>5}"
            )
        lines.append("")
        lines.append("auto-answer curve (threshold: coverage / precision)")
        for p in self.curve:
            lines.append(f"  >= {p.threshold:.2f}: {p.coverage:7.2%} / {p.precision:7.2%}")
        return "\n".join(lines)


def evaluate(
    predictions: Sequence[Prediction],
    labels: Sequence[str],
    known_intents: set[str] | None = None,
    worst: int = 10,
) -> Report:
    """Score predictions against true labels.

    A label that is ``out_of_scope`` or not in ``known_intents`` (an intent the model never
    saw) counts as out of scope: the right behaviour for it is to abstain.
    """
    y = np.asarray(labels, dtype=object)
    top = np.asarray([p.top_intent for p in predictions], dtype=object)
    intent = [p.intent for p in predictions]
    conf = np.asarray([p.confidence for p in predictions])
    known = known_intents if known_intents is not None else set(y) - {OUT_OF_SCOPE}
    in_scope = np.asarray([label in known for label in y])
    answerable = np.asarray([t != OUT_OF_SCOPE for t in top])
    answered = np.asarray([i is not None for i in intent])
    correct = top == y
    n_in = max(int(in_scope.sum()), 1)
    accuracy = float(correct[in_scope].sum() / n_in)
    labels_in = sorted(set(y[in_scope]))
    macro = (
        float(
            f1_score(y[in_scope], top[in_scope], labels=labels_in, average="macro", zero_division=0)
        )
        if labels_in
        else 0.0
    )
    n_answered = int(answered.sum())
    out = ~in_scope
    confusion = Counter(
        (str(t), str(p)) for t, p, ok in zip(y, top, correct, strict=True) if not ok
    )
    prec, rec, f1, sup = precision_recall_fscore_support(
        y[in_scope], top[in_scope], labels=labels_in, zero_division=0
    )
    rows = sorted(
        (
            IntentRow(str(name), float(p), float(r), float(f), int(s))
            for name, p, r, f, s in zip(labels_in, prec, rec, f1, sup, strict=True)
        ),
        key=lambda row: row.f1,
    )
    return Report(
        n=len(y),
        accuracy=accuracy,
        macro_f1=macro,
        coverage=float((answered & in_scope).sum() / n_in),
        precision=float((answered & correct).sum() / n_answered) if n_answered else 1.0,
        refusal_out_of_scope=float((~answered[out]).mean()) if out.any() else None,
        ece=expected_calibration_error(conf[in_scope], correct[in_scope]),
        confusions=[(t, p, c) for (t, p), c in confusion.most_common(worst)],
        intents=rows,
        curve=answer_curve(conf, answerable, correct, in_scope),
    )
