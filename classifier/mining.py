"""Group the messages the bot could not answer into candidate new FAQ intents.

Pure functions (no database, no web framework): the caller collects the texts (handoffs for an
unknown topic, low confidence or ambiguity, "didn't help" votes) and shows the clusters to an
admin as ranked suggestions::

    from classifier.mining import cluster_texts, embedder_for
    clusters = cluster_texts(texts, embed=embedder_for("embeddings"))
    clusters[0].label, [texts[i] for i in clusters[0].members[:3]]

How: each distinct text (after folding case, punctuation and whitespace, so repeats of one
message do not pull the geometry towards themselves) becomes a vector — tf-idf word 1-2-grams
plus character n-grams, or a sentence embedding — and average-linkage agglomerative clustering
on cosine distances cuts the tree at ``distance_threshold``. Repeats are then given back as
members of their text's cluster, but a cluster's size for ``min_size`` and for the ranking is
its number of *distinct* texts: one customer sending the same question five times is not a
topic.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

logger = logging.getLogger(__name__)

Embedder = Callable[[list[str]], np.ndarray]
"""Batch encoder: texts -> one L2-normalised row vector per text."""

MAX_TEXTS = 3000
"""Inputs longer than this are cut to their last ``MAX_TEXTS`` texts (the most recent, when
the caller passes them oldest first): memory and time grow with the square of the count
(3,000 BANKING77 messages with tf-idf: about 10 s and 450 MB peak on a busy 2-core machine,
most of it the pairwise similarities), and suggestions are about what customers ask now."""

# Cosine-distance cut of the average-linkage tree, per representation. Chosen on the
# learn-from-escalations simulation (benchmarks/learning_bench.py: BANKING77, 27 of 77 intents
# unknown at the start, admin rounds every 500 messages accepting <= 10 clusters of >= 5;
# docs/benchmarks.md, section "learning"), so those figures are in-sample for this choice.
#   tf-idf      0.70: median purity of accepted clusters 100% (min 33%), 16 of 27 new intents
#               within 2,000 messages, 18 by the end. 0.75: 83% median (min 17%), 18 within
#               2,000, 23 by the end: more found, but impure clusters teach the model wrong
#               labels. One pool (the first 2,000 messages' unanswered, 832), top 40 clusters:
#               0.60 finds 9 intents, 0.70 16 (median purity 100%), 0.80 23 (83%), 0.85 21 (68%).
#   embeddings  0.35: median purity 100% (min 40%), 25 of 27 within 2,000 messages, 26 by the
#               end. Chosen on the same single pool (the tf-idf model's unanswered): 0.30 finds
#               25 (median purity 100%), 0.35 26 (100%), 0.40 24 (83%), 0.50 23 (60%), 0.60 18
#               (57%); only 0.35 was replayed in full.
TFIDF_DISTANCE = 0.70
EMBEDDING_DISTANCE = 0.35

_PUNCTUATION = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Cluster:
    members: list[int]
    """Indices into the input texts, most representative (closest to the centroid) first."""
    terms: list[str]
    """Up to 5 words or word pairs that set the cluster apart from the rest (stop words out)."""
    label: str
    """A human label guess: the first three terms joined by " / "."""
    cohesion: float
    """Mean cosine similarity of the members' vectors to the cluster centroid (0..1)."""


def embedder_for(backend: str) -> Embedder | None:
    """The sentence encoder's batch ``encode`` for ``"embeddings"``; None for ``"tfidf"``, or
    when the optional ``embeddings`` extra is not installed (clustering then uses tf-idf)."""
    if backend == "tfidf":
        return None
    if backend != "embeddings":
        raise ValueError(f"backend must be 'tfidf' or 'embeddings', not {backend!r}")
    from classifier.features import sentence_encoder

    try:
        encoder = sentence_encoder()
    except (RuntimeError, ImportError) as exc:
        logger.warning("clustering with tf-idf: %s", exc)
        return None
    return encoder.encode


def normalise(text: str) -> str:
    """The key under which near-identical messages count as one (case, punctuation and
    whitespace folded); a text with no word characters keeps its own stripped form."""
    key = _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.casefold())).strip()
    return key or text.strip()


def _tfidf_vectors(texts: list[str]) -> sp.csr_matrix:
    """Word 1-2-grams and within-word character 2-5-grams (sublinear tf), each block
    L2-normalised, the whole row L2-normalised. Fitted on the texts being clustered."""
    common = {"sublinear_tf": True, "strip_accents": "unicode", "dtype": np.float32}
    blocks = []
    for vectorizer in (
        TfidfVectorizer(ngram_range=(1, 2), **common),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
    ):
        try:
            blocks.append(vectorizer.fit_transform(texts))
        except ValueError:  # empty vocabulary (only emoji or single letters)
            continue
    if not blocks:
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)
    x = sp.hstack(blocks, format="csr")
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ x)


def _similarities(vectors: np.ndarray | sp.csr_matrix) -> np.ndarray:
    sim = vectors @ vectors.T
    sim = sim.toarray() if sp.issparse(sim) else np.asarray(sim)
    return np.clip(sim.astype(np.float64), -1.0, 1.0)


def _labels(distances: np.ndarray, threshold: float) -> np.ndarray:
    # metric="precomputed" with cosine distances is metric="cosine" without its dense copy of
    # the (wide, sparse) tf-idf matrix
    model = AgglomerativeClustering(
        n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
    )
    return np.asarray(model.fit_predict(distances))


def _term_matrix(texts: list[str]) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """tf-idf of words and word pairs, stop words out (None: nothing but stop words)."""
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        stop_words=sorted(ENGLISH_STOP_WORDS),
        sublinear_tf=True,
        strip_accents="unicode",
    )
    try:
        x = vectorizer.fit_transform(texts)
    except ValueError:
        return None
    return sp.csr_matrix(x), vectorizer.get_feature_names_out()


def _terms(
    matrix: tuple[sp.csr_matrix, np.ndarray] | None, inside: np.ndarray, limit: int = 5
) -> list[str]:
    """Terms whose mean tf-idf is highest inside the cluster relative to the rest."""
    if matrix is None:
        return []
    x, vocabulary = matrix
    score = np.asarray(x[inside].mean(axis=0)).ravel()
    if (~inside).any():
        score = score - np.asarray(x[~inside].mean(axis=0)).ravel()
    chosen: list[str] = []
    used: set[str] = set()
    for j in np.argsort(-score, kind="stable"):
        if score[j] <= 0 or len(chosen) == limit:
            break
        words = set(str(vocabulary[j]).split())
        if words & used:  # "data deletion" after "deletion" adds little
            continue
        chosen.append(str(vocabulary[j]))
        used |= words
    return chosen


GRANULARITY_QUANTILE = 0.85


def granularity_cut(
    texts: Sequence[str],
    labels: Sequence[str],
    embed: Embedder,
    *,
    quantile: float = GRANULARITY_QUANTILE,
    per_intent: int = 30,
    seed: int = 0,
) -> float | None:
    """A cut at which a new cluster is about as broad as the intents the bot already has.

    Each intent's mean pairwise cosine distance between its examples (at most
    ``per_intent`` of them, a fixed sample) is the distance at which average linkage joins
    them into one cluster; the ``quantile`` of those over the intents is the cut. Intents
    differ in breadth between deployments: BANKING77's are narrow (median 0.40 with MiniLM),
    ours are broad (median 0.66), and customers asking about a new topic write as variedly
    as the existing intents' examples do. None with fewer than three intents of three or
    more examples.
    """
    by_intent: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_intent.setdefault(str(label), []).append(str(text))
    rng = np.random.default_rng(seed)
    spreads: list[float] = []
    for name in sorted(by_intent):
        examples = sorted(set(by_intent[name]))
        if len(examples) < 3:
            continue
        if len(examples) > per_intent:
            picked = rng.choice(len(examples), per_intent, replace=False)
            examples = [examples[i] for i in sorted(picked)]
        vectors = np.asarray(embed(examples), dtype=np.float64)
        distances = 1.0 - vectors @ vectors.T
        upper = distances[np.triu_indices(len(examples), 1)]
        spreads.append(float(upper.mean()))
    if len(spreads) < 3:
        return None
    return float(np.quantile(spreads, quantile))


def cluster_texts(
    texts: Sequence[str],
    *,
    embed: Embedder | None = None,
    distance_threshold: float | None = None,
    min_size: int = 3,
) -> list[Cluster]:
    """Cluster short customer messages into candidate intents, largest first.

    ``embed`` None clusters tf-idf vectors, else the embedder's vectors.
    ``distance_threshold`` (cosine distance, 0..2) defaults per representation
    (``TFIDF_DISTANCE``, ``EMBEDDING_DISTANCE``); lower makes smaller, purer clusters.
    A cluster needs ``min_size`` distinct texts (repeats of a message count once); clusters are
    ranked by distinct texts, then by all members. Only the last ``MAX_TEXTS`` texts are
    clustered; ``members`` always index the input as given.
    """
    start = max(0, len(texts) - MAX_TEXTS)
    if start:
        logger.info("clustering the last %d of %d texts", MAX_TEXTS, len(texts))
    window = [str(t) for t in texts[start:]]
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(window, start=start):
        groups.setdefault(normalise(text), []).append(i)
    keys = list(groups)
    if len(keys) < max(min_size, 1):
        return []
    distinct = [window[groups[k][0] - start] for k in keys]
    if embed is None:
        vectors: np.ndarray | sp.csr_matrix = _tfidf_vectors(distinct)
        threshold = TFIDF_DISTANCE if distance_threshold is None else distance_threshold
    else:
        vectors = np.asarray(embed(distinct), dtype=np.float64)
        threshold = EMBEDDING_DISTANCE if distance_threshold is None else distance_threshold
    sim = _similarities(vectors)
    if len(keys) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        distances = 1.0 - sim
        np.fill_diagonal(distances, 0.0)
        labels = _labels(distances, threshold)

    term_matrix = _term_matrix(distinct)
    clusters: list[tuple[int, int, Cluster]] = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) < min_size:
            continue
        # centroid = normalised mean of the member vectors: its cosine with member i is the
        # mean of i's similarities to the members divided by the centroid's norm
        block = sim[np.ix_(rows, rows)]
        norm = float(np.sqrt(max(block.sum(), 1e-12))) / len(rows)
        to_centroid = block.mean(axis=1) / norm
        order = rows[np.argsort(-to_centroid, kind="stable")]
        members = [i for r in order for i in groups[keys[r]]]
        inside = np.zeros(len(keys), dtype=bool)
        inside[rows] = True
        terms = _terms(term_matrix, inside)
        cohesion = float(np.clip(to_centroid.mean(), 0.0, 1.0))
        cluster = Cluster(members, terms, " / ".join(terms[:3]), cohesion)
        clusters.append((len(rows), len(members), cluster))
    clusters.sort(key=lambda c: (-c[0], -c[1], c[2].members[0]))
    return [c for _, _, c in clusters]
