"""Read labelled utterances: a CSV (text + label columns) or a FAQ YAML file/folder."""

from __future__ import annotations

import csv
from pathlib import Path

from classifier.faq import load_faq

TEXT_COLUMNS = ("text", "utterance", "message")
LABEL_COLUMNS = ("label", "intent", "category")


def load_labelled(path: Path | str) -> tuple[list[str], list[str]]:
    """Texts and labels from ``path``; raises ValueError with what was expected."""
    path = Path(path)
    if path.is_dir() or path.suffix in {".yaml", ".yml"}:
        return load_faq(path).training_data()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        text_col = next((c for c in TEXT_COLUMNS if c in fields), None)
        # Bitext has both 'category' (coarse) and 'intent' (fine): prefer the finest.
        label_col = next((c for c in LABEL_COLUMNS if c in fields), None)
        if text_col is None or label_col is None:
            raise ValueError(
                f"{path}: needs a text column {TEXT_COLUMNS} and a label column {LABEL_COLUMNS}; "
                f"found {fields}"
            )
        texts: list[str] = []
        labels: list[str] = []
        for row in reader:
            text = (row.get(text_col) or "").strip()
            label = (row.get(label_col) or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    if not texts:
        raise ValueError(f"{path}: no labelled rows")
    return texts, labels
