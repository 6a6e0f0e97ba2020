"""Learning from escalations (issue 15): replay BANKING77 as a deployment that learns new intents.

The bot starts trained on 50 of the 77 intents (``HELD_OUT`` are the 27 it has never seen).
The 3,080 test messages arrive in a fixed random order; each is scored by the model of the
moment when it arrives: answered (right or wrong) or left unanswered, which puts it in the
pool. After every ``ROUND`` messages an admin round clusters the pool with
:func:`classifier.mining.cluster_texts`, accepts the largest clusters (``ACCEPT_MIN_SIZE``
members or more, at most ``ACCEPT_PER_ROUND``), labels each with its majority true intent (as
an admin naming the suggestion would) and retrains on the original training data of the 50
known intents plus every accepted example. Accepted messages leave the pool. A reference model
trained on all 77 intents from the start scores the same stream.

    .venv/bin/python -m benchmarks.run --only learning            # writes docs/benchmarks.md
    .venv/bin/python -m benchmarks.learning_bench --backend tfidf --threshold 0.8   # try a cut
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.classifier_bench import banking77, per_label_subset, shared_embeddings
from classifier import IntentClassifier
from classifier.mining import (
    EMBEDDING_DISTANCE,
    TFIDF_DISTANCE,
    cluster_texts,
    embedder_for,
    granularity_cut,
)

Say = Callable[[str], None]
BACKENDS = ("tfidf", "embeddings")
# sorted(random.Random(77).sample(sorted(intents), 27)): fixed, written out so that a change of
# the data or of Python's sampler cannot silently change the protocol
HELD_OUT = (
    "Refund_not_showing_up", "apple_pay_or_google_pay", "card_acceptance", "card_arrival",
    "card_linking", "card_payment_wrong_exchange_rate", "cash_withdrawal_charge",
    "cash_withdrawal_not_recognised", "contactless_not_working", "country_support",
    "disposable_card_limits", "edit_personal_details", "exchange_charge",
    "extra_charge_on_statement", "fiat_currency_support", "getting_virtual_card", "pin_blocked",
    "request_refund", "reverted_card_payment?", "top_up_failed", "top_up_limits",
    "top_up_reverted", "topping_up_by_card", "transfer_fee_charged", "virtual_card_not_working",
    "visa_or_mastercard", "wrong_exchange_rate_for_cash_withdrawal",
)  # fmt: skip
STREAM_SEED = 0
ROUND = 500
ACCEPT_MIN_SIZE = 5
ACCEPT_PER_ROUND = 10
TARGET_PRECISION = 0.95
# Targets from the issue
DISCOVERED_TARGET = 20  # of the 27 new intents ...
DISCOVERY_HORIZON = 2000  # ... within this many messages
PURITY_TARGET = 0.90  # median over accepted clusters
PRECISION_FLOOR = 0.93  # of automatic answers, in every round
REFERENCE_GAP = 0.05  # final-round auto-answered share vs the all-77 model


@dataclass
class Round:
    messages: int  # messages seen so far (end of this round)
    n: int  # messages in this round
    answered: int
    correct: int
    reference_answered: int
    reference_correct: int
    pool: int = 0  # unanswered messages waiting after this round (before accepting)
    accepted: int = 0
    purities: list[float] = field(default_factory=list)
    discovered: int = 0  # new intents discovered so far (cumulative, after this round)
    new_intents: list[str] = field(default_factory=list)
    cluster_seconds: float = 0.0
    fit_seconds: float = 0.0


@dataclass
class Result:
    backend: str
    threshold: float
    quick: bool
    n_stream: int
    n_train: int
    rounds: list[Round] = field(default_factory=list)
    seconds: float = 0.0
    # the product's cut on a dozen-ways topics (``paraphrase_check``), filled by ``run``
    paraphrase: list[TopicFigure] = field(default_factory=list)
    product_cut: float | None = None


@dataclass(frozen=True)
class TopicFigure:
    """One topic of data/benchmarks/paraphrase-topics: its questions mixed with off-topic
    noise and clustered at the product's cut; the cluster holding most of them."""

    topic: str
    tuned: bool
    questions: int
    together: int  # of the topic's questions, in its largest cluster
    strays: int  # other messages in that cluster
    split_into: int  # clusters (of >= 3) holding at least one of its questions


ROOT = Path(__file__).resolve().parent.parent
TOPICS = ROOT / "data" / "benchmarks" / "paraphrase-topics" / "topics.yaml"
NOISE = ROOT / "data" / "benchmarks" / "offtopic" / "questions.txt"


def product_cut(backend: str) -> float:
    """The cut ``triagebot`` uses for suggestions with the bundled FAQ (``SUGGESTION_DISTANCE``
    unset): as broad as the FAQ's intents with embeddings (``granularity_cut``)."""
    from classifier import load_faq

    embed = embedder_for(backend)
    if embed is None:
        return TFIDF_DISTANCE
    texts, labels = load_faq(ROOT / "data" / "faq").training_data()
    return round(granularity_cut(texts, labels, embed) or EMBEDDING_DISTANCE, 3)


def paraphrase_check(backend: str) -> list[TopicFigure]:
    """Each topic's dozen questions, all topics and the off-topic questions in one pool (in a
    fixed shuffled order), clustered at the product's cut as the suggestions page does."""
    import yaml

    spec = yaml.safe_load(TOPICS.read_text(encoding="utf-8"))["topics"]
    noise = [
        line.strip()
        for line in NOISE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pool = [(q, name) for name, topic in spec.items() for q in topic["questions"]]
    pool += [(q, "") for q in noise]
    random.Random(STREAM_SEED).shuffle(pool)
    texts = [q for q, _ in pool]
    clusters = cluster_texts(
        texts, embed=embedder_for(backend), distance_threshold=product_cut(backend)
    )
    figures = []
    for name, topic in spec.items():
        counts = [sum(pool[i][1] == name for i in c.members) for c in clusters]
        best = max(range(len(clusters)), key=lambda k: counts[k], default=None)
        together = counts[best] if best is not None else 0
        strays = len(clusters[best].members) - together if best is not None and together else 0
        figures.append(
            TopicFigure(
                name,
                bool(topic.get("tuned")),
                len(topic["questions"]),
                together,
                strays,
                sum(c > 0 for c in counts),
            )
        )
    return figures


def stream(test: tuple[list[str], list[str]]) -> list[tuple[str, str]]:
    pairs = list(zip(*test, strict=True))
    random.Random(STREAM_SEED).shuffle(pairs)
    return pairs


def _fit(backend: str, texts: list[str], labels: list[str]) -> IntentClassifier:
    return IntentClassifier(backend=backend, target_precision=TARGET_PRECISION).fit(texts, labels)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) of each round; a remainder shorter than a round joins the last one."""
    ends = list(range(size, n, size))
    if ends and n - ends[-1] < size:
        ends.pop()
    return list(itertools.pairwise([0, *ends, n]))


def simulate(
    backend: str,
    train: tuple[list[str], list[str]],
    messages: Sequence[tuple[str, str]],
    say: Say,
    threshold: float | None = None,
    quick: bool = False,
) -> Result:
    started = time.perf_counter()
    held = set(HELD_OUT)
    known = [(t, label) for t, label in zip(*train, strict=True) if label not in held]
    base_texts, base_labels = [t for t, _ in known], [label for _, label in known]
    texts = [t for t, _ in messages]
    truth = [label for _, label in messages]
    with shared_embeddings(backend):
        embed = embedder_for(backend)
        if threshold is None and embed is not None:
            # the product's rule: new clusters as broad as the known intents
            threshold = granularity_cut(base_texts, base_labels, embed)
        default = EMBEDDING_DISTANCE if backend == "embeddings" else TFIDF_DISTANCE
        threshold = threshold or default
        result = Result(backend, threshold, quick, len(messages), len(base_texts))
        say(f"[learning/{backend}] reference: training on all 77 intents ({len(train[0])})")
        reference = _fit(backend, *train).predict(texts)
        say(f"[learning/{backend}] training on the 50 known intents ({len(base_texts)})")
        model = _fit(backend, base_texts, base_labels)
        extra_texts: list[str] = []
        extra_labels: list[str] = []
        pool: list[int] = []
        discovered: set[str] = set()
        chunks = _chunks(len(messages), ROUND)
        for k, (lo, hi) in enumerate(chunks):
            preds = model.predict(texts[lo:hi])  # scored on arrival, before any round uses it
            answered = [i for i, p in zip(range(lo, hi), preds, strict=True) if p.intent]
            right = sum(p.intent == truth[i] for i, p in zip(range(lo, hi), preds, strict=True))
            ref = reference[lo:hi]
            row = Round(
                messages=hi,
                n=hi - lo,
                answered=len(answered),
                correct=right,
                reference_answered=sum(p.intent is not None for p in ref),
                reference_correct=sum(p.intent == truth[lo + j] for j, p in enumerate(ref)),
            )
            pool += [i for i in range(lo, hi) if preds[i - lo].intent is None]
            row.pool = len(pool)
            if k < len(chunks) - 1:  # an admin round after every round but the last
                t0 = time.perf_counter()
                clusters = cluster_texts(
                    [texts[i] for i in pool], embed=embed, distance_threshold=threshold
                )
                row.cluster_seconds = time.perf_counter() - t0
                chosen = [c for c in clusters if len(c.members) >= ACCEPT_MIN_SIZE]
                used: set[int] = set()
                for cluster in chosen[:ACCEPT_PER_ROUND]:
                    members = [pool[j] for j in cluster.members]
                    label, count = Counter(truth[i] for i in members).most_common(1)[0]
                    row.purities.append(count / len(members))
                    if label in held and label not in discovered:
                        discovered.add(label)
                        row.new_intents.append(label)
                    extra_texts += [texts[i] for i in members]
                    extra_labels += [label] * len(members)
                    used.update(members)
                row.accepted = len(row.purities)
                pool = [i for i in pool if i not in used]
                if used:
                    t0 = time.perf_counter()
                    model = _fit(backend, base_texts + extra_texts, base_labels + extra_labels)
                    row.fit_seconds = time.perf_counter() - t0
            row.discovered = len(discovered)
            result.rounds.append(row)
            say(
                f"[learning/{backend}] {hi} messages: answered {row.answered}/{row.n}, "
                f"pool {row.pool}, accepted {row.accepted} clusters "
                f"(purity {_purity(row.purities)}), {row.discovered}/{len(held)} new intents"
            )
    result.seconds = time.perf_counter() - started
    return result


def run(backends: Sequence[str], quick: bool, say: Say) -> dict[str, Result]:
    train, test = banking77("train"), banking77("test")
    messages = stream(test)
    if quick:  # smaller training set, three rounds
        train = per_label_subset(*train, per_label=40)
        messages = messages[: 3 * ROUND]
    results = {b: simulate(b, train, messages, say, quick=quick) for b in backends}
    for backend, res in results.items():
        say(f"learning: the product's cut on the paraphrase topics ({backend})")
        res.paraphrase = paraphrase_check(backend)
        res.product_cut = product_cut(backend)
    return results


# --------------------------------------------------------------------- rendering
def _share(a: int, n: int) -> float:
    return a / n if n else 0.0


def _purity(purities: Sequence[float]) -> str:
    if not purities:
        return "-"
    return f"{statistics.median(purities):.0%} / {min(purities):.0%}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def targets(res: Result) -> list[str]:
    rows = res.rounds
    early = [r for r in rows if r.messages <= DISCOVERY_HORIZON]
    found = early[-1].discovered if early else 0
    purities = [p for r in rows for p in r.purities]
    median = statistics.median(purities) if purities else 0.0
    precisions = [_share(r.correct, r.answered) for r in rows]
    worst = min(range(len(rows)), key=lambda k: precisions[k])
    last = rows[-1]
    share, ref = _share(last.answered, last.n), _share(last.reference_answered, last.n)
    b = res.backend
    return [
        f"- {b}: ≥ {DISCOVERED_TARGET} of {len(HELD_OUT)} new intents discovered within "
        f"{DISCOVERY_HORIZON:,} messages: {found} — {_verdict(found >= DISCOVERED_TARGET)}",
        f"- {b}: median cluster purity ≥ {PURITY_TARGET:.0%}: {median:.1%} over {len(purities)} "
        f"accepted clusters (min {min(purities, default=0):.1%}) — "
        f"{_verdict(median >= PURITY_TARGET)}",
        f"- {b}: precision of automatic answers ≥ {PRECISION_FLOOR:.0%} in every round: "
        f"lowest {precisions[worst]:.1%} (the round ending at message {rows[worst].messages:,}) "
        f"— {_verdict(precisions[worst] >= PRECISION_FLOOR)}",
        f"- {b}: final-round auto-answered share within {REFERENCE_GAP * 100:.0f} points of the "
        f"all-77 model: {share:.1%} vs {ref:.1%} ({(share - ref) * 100:+.1f} points) — "
        f"{_verdict(share >= ref - REFERENCE_GAP)}",
    ]


def table(res: Result) -> list[str]:
    out = [
        "| messages | auto-answered | precision | all-77 reference (answered / precision) "
        "| pool | clusters accepted | purity (median / min) | new intents discovered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res.rounds:
        out.append(
            f"| {r.messages:,} | {_share(r.answered, r.n):.1%} "
            f"| {_share(r.correct, r.answered):.1%} "
            f"| {_share(r.reference_answered, r.n):.1%} / "
            f"{_share(r.reference_correct, r.reference_answered):.1%} "
            f"| {r.pool} | {r.accepted} | {_purity(r.purities)} "
            f"| {r.discovered} / {len(HELD_OUT)} |"
        )
    return out


def render(results: dict[str, Result], command: str, stamp: str) -> str:
    quick = any(r.quick for r in results.values())
    out = ["## Learning from escalations", "", f"Measured {stamp} with `{command}`."]
    if quick:
        out += [
            "",
            "> **Quick smoke run** (`--quick`): 40 training messages per intent, the first "
            f"{3 * ROUND:,} messages of the stream. Not the reference figures.",
        ]
    out += [
        "",
        "Protocol (`benchmarks/learning_bench.py`): BANKING77 replayed as a deployment. The bot "
        f"starts trained on 50 of the 77 intents (27 held out, a fixed list in the file) with "
        f"the answer rule learnt for {TARGET_PRECISION:.0%} precision; the test messages of all "
        f"77 intents arrive in a fixed random order and each is scored when it arrives. "
        "Unanswered messages wait in a pool; after every "
        f"{ROUND} messages an admin round clusters the pool (`classifier.mining.cluster_texts`), "
        f"accepts the largest clusters with ≥ {ACCEPT_MIN_SIZE} members (at most "
        f"{ACCEPT_PER_ROUND}), labels each with its majority true intent (a new intent if the "
        "bot does not know it) and retrains on the 50 intents' training data plus every "
        "accepted message. A round's row shows the messages that arrived during it, answered "
        "by the model of that moment; pool, clusters and discoveries are the admin round at its "
        "end (the last round has none). A message counts as discovered-intent evidence only "
        "through an accepted cluster whose majority is one of the 27.",
        "",
        "**The cuts.** tf-idf: `TFIDF_DISTANCE` in `classifier/mining.py`, chosen by running "
        "this simulation (in-sample; the alternatives' figures are in the file). Embeddings: "
        "the product's rule, not a constant: `classifier.mining.granularity_cut` makes new "
        "clusters as broad as the intents the bot already has (the 85th percentile over the "
        "known intents of their examples' mean pairwise cosine distance), here computed on "
        "the 50 known intents' training data; the suggestions page computes it on the FAQ. "
        "The percentile was chosen looking at two deployments, this one (narrow intents: "
        "0.49) and our FAQ (broad ones: 0.76, see the last table), not by replaying this "
        "simulation at several values. A tight fixed cut (0.35, tuned on this replay) found "
        "25 of 27 new intents by 2,000 messages at 100% median purity, but splits a "
        "customer's dozen differently worded questions into several suggestions. The "
        "acceptance rule (≥ 5 members, ≤ 10 a round) is the issue's, not "
        "tuned. The simulation models handoffs only: a wrong automatic answer never reaches "
        'the pool (no "didn\'t help" votes are simulated), so messages of unknown intents '
        "that the model answers wrongly are lost to discovery.",
        "",
        "### Targets",
        "",
    ]
    for res in results.values():
        out += targets(res)
    for res in results.values():
        minutes = res.seconds / 60
        out += [
            "",
            f"### {res.backend} (distance threshold {res.threshold:.2f}; "
            f"{res.n_train:,} training messages to start, {res.n_stream:,} in the stream; "
            f"{minutes:.1f} min)",
            "",
            *table(res),
        ]
        names = [n for r in res.rounds for n in r.new_intents]
        missed = sorted(set(HELD_OUT) - set(names))
        out += ["", f"Never discovered: {', '.join(missed) if missed else 'none'}."]
    out += paraphrase_section(results)
    return "\n".join(out)


def paraphrase_section(results: dict[str, Result]) -> list[str]:
    rows = [(r, getattr(r, "paraphrase", [])) for r in results.values()]
    if not any(figures for _, figures in rows):
        return []
    out = [
        "",
        "### The product's cut on questions asked a dozen ways",
        "",
        "BANKING77's held-out intents are near-siblings of known ones (card arrival vs card "
        "delivery estimate), so the replay above rewards a tight cut. Customers asking about "
        "one topic the FAQ lacks write much more varied questions (a dozen ways of asking "
        "for a SOC 2 report share few words: cosine distances between them average about "
        "0.6 with MiniLM, against 0.8-0.9 to other questions), and a tight cut splits them "
        "into several small suggestions. The suggestions page therefore clusters at a looser "
        "cut, derived from the FAQ's own intents (`granularity_cut` on `data/faq`; "
        "`SUGGESTION_DISTANCE` overrides it): this table shows that cut on "
        "`data/benchmarks/paraphrase-topics/topics.yaml`, every topic's questions mixed with "
        "the 60 off-topic questions. *tuned*: the topics looked at while choosing the rule; "
        "the others were written afterwards.",
        "",
        "| backend | cut | topic | tuned | questions | in its largest cluster | other messages "
        "in that cluster | clusters holding its questions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res, figures in rows:
        cut = getattr(res, "product_cut", None)
        for f in figures:
            out.append(
                f"| {res.backend} | {cut if cut is not None else '-'} | {f.topic} | "
                f"{'yes' if f.tuned else 'no'} | {f.questions} | {f.together} | {f.strays} | "
                f"{f.split_into} |"
            )
    out += [
        "",
        "With tf-idf (no embeddings extra) differently-worded questions share too few words "
        "to be grouped; the embeddings extra, installed by default, is what makes suggestions "
        "useful.",
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.run import progress

    parser = argparse.ArgumentParser(description="Replay the learning simulation (no doc write)")
    parser.add_argument("--backend", choices=BACKENDS, default="tfidf")
    parser.add_argument("--threshold", type=float, help="clustering distance threshold")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    train, test = banking77("train"), banking77("test")
    messages = stream(test)
    if args.quick:
        train = per_label_subset(*train, per_label=40)
        messages = messages[: 3 * ROUND]
    res = simulate(args.backend, train, messages, progress(), args.threshold, args.quick)
    print("\n".join([*targets(res), "", *table(res)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
