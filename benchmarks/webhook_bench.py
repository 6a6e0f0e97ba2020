"""Webhook ingestion benchmark: triagebot vs python-telegram-bot's run_webhook vs bare FastAPI.

    .venv/bin/python -m benchmarks.webhook_bench [--quick] [--no-postgres] [--out FILE]

In one run, on loopback, wrk (with ``wrk_updates.lua``: distinct update_ids, 500 recurring
chats, FAQ questions and escalations) drives:

* **triagebot** — ``triagebot serve`` (uvicorn, uvloop, httptools), SQLite in a temp dir, the
  bundled tf-idf model: every request verifies the secret, commits the update (deduplicated),
  classifies it, decides with the policy and queues the reply in the outbox, whose worker
  sends it to a fake Bot API in another process;
* **PTB** — python-telegram-bot's own ``Application.run_webhook`` with an empty handler;
* **bare** — a FastAPI endpoint answering 200 under the same uvicorn flags (the ceiling);
* **triagebot x2 on PostgreSQL** — two ``triagebot serve`` processes on one fresh database,
  the load split between their ports.

Each configuration: a warm-up, then the median of 3 runs of 10 s (``--quick``: 1 run of 3 s).
Then an open-loop sender posts updates at a fixed 500/s (one new chat per update, so each
reply is matched to its update) and the time from sending the update to the reply reaching
the fake Bot API is measured, with the worker's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness import ESCALATION_TEXTS, FAQ_TEXTS, PATH, SECRET, Proc

LUA = Path(__file__).with_name("wrk_updates.lua")
DOC = harness.ROOT / "docs" / "benchmarks.md"
Say = Callable[[str], None]

CONNECTIONS = 40  # Telegram's default max_connections for a webhook
TARGET_RATIO_PTB = 1.0
TARGET_P99_MS = 100.0
TARGET_RSS_MB = 250.0
STEADY_RATE = 500


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int


@dataclass
class Series:
    name: str
    runs: list[WrkResult] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs))


@dataclass
class SteadyResult:
    name: str
    rate: float
    sent: int
    ok: int
    replies: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    ack_p99_ms: float


def run_wrk(ports: list[int], seconds: float, base: int) -> WrkResult:
    """wrk against each port at once (connections split between them); summed throughput,
    the worst percentiles."""
    per_port = max(1, CONNECTIONS // len(ports))
    processes = []
    for index, port in enumerate(ports):
        args = ["wrk", "-t1", f"-c{per_port}", f"-d{seconds:.0f}s", "--timeout", "10s"]
        args += ["-s", str(LUA), f"http://127.0.0.1:{port}{PATH}", "--"]
        args += [str(base + index * 100_000_000), SECRET, "|".join(FAQ_TEXTS)]
        args += ["|".join(ESCALATION_TEXTS)]
        processes.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
    parsed = []
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        line = next((x for x in out.splitlines() if x.startswith("JSON:")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary:\n{out}")
        parsed.append(json.loads(line.removeprefix("JSON:")))
    requests = sum(p["requests"] for p in parsed)
    errors = sum(p[k] for p in parsed for k in ("connect", "read", "write", "status", "timeout"))
    duration = max(p["duration_us"] for p in parsed) / 1e6
    return WrkResult(
        rps=(requests - errors) / duration,
        p50_ms=max(p["p50_us"] for p in parsed) / 1000,
        p99_ms=max(p["p99_us"] for p in parsed) / 1000,
        errors=errors,
        requests=requests,
    )


async def _open_loop(ports: list[int], rate: float, seconds: float, first_chat: int) -> list[Any]:
    """Send ``rate`` updates per second for ``seconds`` whatever the responses (open loop).

    Returns, per update, [chat id, scheduled wall time, status, ack seconds].
    """
    total = int(rate * seconds)
    queue: asyncio.Queue[int] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    start_loop, start_wall = loop.time() + 0.2, time.time() + 0.2
    results: list[Any] = [None] * total
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def worker(port: int) -> None:
        connection = harness.HttpConnection(port)
        try:
            while True:
                index = await queue.get()
                if index < 0:
                    return
                chat = first_chat + index
                scheduled = start_loop + index / rate
                body = harness.update_body(chat, chat, FAQ_TEXTS[index % len(FAQ_TEXTS)])
                try:
                    status = await connection.post(PATH, body, headers)
                except OSError:
                    status = 0
                results[index] = [chat, start_wall + index / rate, status, loop.time() - scheduled]
        finally:
            connection.close()

    workers = [asyncio.create_task(worker(ports[i % len(ports)])) for i in range(64)]
    for index in range(total):
        delay = start_loop + index / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(index)
    for _ in workers:
        queue.put_nowait(-1)
    await asyncio.gather(*workers)
    return results


def wait_quiet(fake: Proc, say: Say, quiet: float = 3.0, limit: float = 300.0) -> None:
    """Wait until the replies queued by earlier runs have all been sent (the fake Bot API saw
    nothing new for ``quiet`` seconds), so that a latency run does not queue behind them."""
    started = time.monotonic()
    last, since = -1, time.monotonic()
    while time.monotonic() - started < limit:
        count = len(harness.fake_records(fake))
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            waited = time.monotonic() - started - quiet
            if waited > 1:
                say(f"waited {waited:.0f} s for earlier replies to drain")
            return
        time.sleep(0.5)
    say(f"earlier replies still draining after {limit:.0f} s")


def steady_latency(
    name: str,
    ports: list[int],
    fake: Proc,
    seconds: float,
    first_chat: int,
    say: Say,
    rate: float = STEADY_RATE,
) -> SteadyResult:
    wait_quiet(fake, say)
    harness.reset_fake(fake)
    results = asyncio.run(_open_loop(ports, rate, seconds, first_chat))
    sent = {r[0]: r[1] for r in results}
    deadline = time.monotonic() + 30
    while True:
        records = harness.fake_records(fake)
        arrived: dict[int, float] = {}
        for _seq, at, chat, _text, status, _mid in records:
            if status == 200 and int(chat) in sent:
                arrived.setdefault(int(chat), at)
        if len(arrived) >= len(sent) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    delays = [(arrived[c] - sent[c]) * 1000 for c in arrived]
    acks = [r[3] * 1000 for r in results]
    result = SteadyResult(
        name=name,
        rate=rate,
        sent=len(results),
        ok=sum(1 for r in results if r[2] == 200),
        replies=len(arrived),
        p50_ms=harness.percentile(delays, 50),
        p99_ms=harness.percentile(delays, 99),
        max_ms=max(delays) if delays else float("nan"),
        ack_p99_ms=harness.percentile(acks, 99),
    )
    say(
        f"{name} at {rate:.0f}/s: {result.ok}/{result.sent} acknowledged, "
        f"{result.replies} replies; "
        f"receipt->reply p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    )
    return result


def sustainable_rate(capacity: float) -> float:
    """Half the measured throughput, rounded down to a multiple of 5 (at least 5/s)."""
    return float(max(5, int(capacity * 0.5) // 5 * 5))


def measure(
    name: str,
    ports: list[int],
    runs: int,
    seconds: float,
    base: int,
    say: Say,
    watch: list[Proc] | None = None,
    rss: list[float] | None = None,
) -> Series:
    series = Series(name)
    run_wrk(ports, 2 if seconds < 10 else 3, base)  # warm-up
    for index in range(runs):
        result = run_wrk(ports, seconds, base + (index + 1) * 1_000_000_000)
        series.runs.append(result)
        if watch and rss is not None:
            rss.extend(p.rss_mb() for p in watch)
        say(
            f"{name} run {index + 1}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, errors {result.errors}"
        )
    return series


def run(quick: bool, postgres: bool, say: Say) -> dict[str, Any]:
    """Run every configuration; returns the figures (see :func:`render`)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    runs, seconds, steady_seconds = (1, 3.0, 3.0) if quick else (3, 10.0, 10.0)
    folder = Path(tempfile.mkdtemp(prefix="triagebot-bench-"))
    processes: list[Proc] = []
    results: dict[str, Any] = {"quick": quick, "runs": runs, "seconds": seconds}
    try:
        model = harness.ensure_model(folder)
        policy = harness.bench_policy(folder)
        fake = harness.start_fake(folder)
        processes.append(fake)
        db = f"sqlite:///{folder / 'bench.db'}"
        env = harness.triagebot_env(db, fake.port, model, policy)
        subprocess.run(
            [harness.TRIAGEBOT, "migrate"],
            env=env,
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        triagebot = harness.start_triagebot("triagebot", folder, env)
        processes.append(triagebot)
        say(f"triagebot up (pid {triagebot.pid}, RSS {triagebot.rss_mb():.0f} MiB)")
        rss: list[float] = [triagebot.rss_mb()]
        series = [
            measure("triagebot (SQLite)", [triagebot.port], runs, seconds, 1, say, [triagebot], rss)
        ]
        # First at a rate this machine sustains (half the measured capacity): the latency a
        # customer sees when the service is not saturated. Then at 500/s, which leaves a
        # backlog behind (so it goes last).
        light = sustainable_rate(series[0].median("rps"))
        steady = [
            steady_latency(
                "triagebot (SQLite)",
                [triagebot.port],
                fake,
                steady_seconds,
                90_500_000_000,
                say,
                rate=light,
            ),
            steady_latency(
                "triagebot (SQLite)", [triagebot.port], fake, steady_seconds, 90_000_000_000, say
            ),
        ]
        rss.append(triagebot.rss_mb())
        triagebot.stop()

        env_py = {**os.environ, "PYTHONPATH": str(harness.ROOT)}
        ptb_port = harness.free_port()
        ptb_args = [harness.PYTHON, "-m", "benchmarks.ptb_server", "--port", str(ptb_port)]
        ptb_args += ["--base-url", f"http://127.0.0.1:{fake.port}/bot"]
        ptb = Proc("ptb", ptb_args, env_py, folder, ptb_port).start(PATH)
        processes.append(ptb)
        series.append(measure("PTB run_webhook (empty handler)", [ptb.port], runs, seconds, 1, say))
        ptb.stop()

        bare_port = harness.free_port()
        bare_args = [harness.PYTHON, "-m", "benchmarks.bare_server", "--port", str(bare_port)]
        bare = Proc("bare", bare_args, env_py, folder, bare_port).start()
        processes.append(bare)
        series.append(measure("bare FastAPI (ceiling)", [bare.port], runs, seconds, 1, say))
        bare.stop()

        rss_pg: list[float] = []
        if postgres and harness.postgres_available():
            with harness.postgres_database() as url:
                env_pg = harness.triagebot_env(url, fake.port, model, policy)
                pair = [
                    harness.start_triagebot(f"triagebot-pg-{i}", folder, env_pg) for i in (1, 2)
                ]
                processes.extend(pair)
                ports = [p.port for p in pair]
                series.append(
                    measure("triagebot x2 (PostgreSQL)", ports, runs, seconds, 1, say, pair, rss_pg)
                )
                steady.append(
                    steady_latency(
                        "triagebot x2 (PostgreSQL)",
                        ports,
                        fake,
                        steady_seconds,
                        91_500_000_000,
                        say,
                        rate=sustainable_rate(series[-1].median("rps")),
                    )
                )
                steady.append(
                    steady_latency(
                        "triagebot x2 (PostgreSQL)",
                        ports,
                        fake,
                        steady_seconds,
                        91_000_000_000,
                        say,
                    )
                )
                rss_pg.extend(p.rss_mb() for p in pair)
                for p in pair:
                    p.stop()
        elif postgres:
            say("PostgreSQL not reachable: two-instance run skipped")
        results["series"] = [
            {
                "name": s.name,
                "rps": s.median("rps"),
                "p50_ms": s.median("p50_ms"),
                "p99_ms": s.median("p99_ms"),
                "errors": sum(r.errors for r in s.runs),
                "runs": [asdict(r) for r in s.runs],
            }
            for s in series
        ]
        results["steady"] = [asdict(s) for s in steady]
        results["rss_mb"] = max(rss)
        results["rss_pg_mb"] = max(rss_pg) if rss_pg else None
        results["cores"] = os.cpu_count()
        return results
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def render(results: dict[str, Any], command: str, stamp: str) -> str:
    """The webhook section of docs/benchmarks.md."""
    series = {s["name"]: s for s in results["series"]}
    tb = series["triagebot (SQLite)"]
    ptb = series["PTB run_webhook (empty handler)"]
    bare = series["bare FastAPI (ceiling)"]
    how = f"median of {results['runs']} runs of {results['seconds']:.0f} s after a warm-up" + (
        " (`--quick` smoke run: not reference figures)" if results["quick"] else ""
    )
    lines = [
        "## Webhook ingestion",
        "",
        f"`{command}` — {stamp}; {how}. wrk, {CONNECTIONS} keep-alive connections (Telegram's",
        "default `max_connections`), distinct `update_id`s, 500 recurring chats asking FAQ",
        "questions plus one escalation in seven (from a new chat). Everything (wrk, server,",
        f"fake Bot API, database) shares the same {results['cores']} cores on loopback.",
        "triagebot does the real work per request: secret check, commit (deduplicated),",
        "classify, decide, queue the reply in the outbox — and its outbox worker sends every",
        "reply to the fake Bot API during the run. PTB's `run_webhook` answers 200 once the",
        "update is parsed and queued, before any handler runs.",
        "",
        "| server | req/s | p50 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in results["series"]:
        lines.append(
            f"| {s['name']} | {s['rps']:,.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} "
            f"| {s['errors']} |"
        )
    ratio_ptb = tb["rps"] / ptb["rps"]
    ratio_bare = tb["rps"] / bare["rps"]
    lines += [
        "",
        f"triagebot / PTB = **{ratio_ptb:.2f}x**, triagebot / bare FastAPI = "
        f"**{ratio_bare:.2f}x**.",
        "",
        f"Receipt → reply at a steady {STEADY_RATE} updates/s, and at half the measured",
        "throughput (open-loop sender, one new chat per update; measured from the update's",
        "scheduled send time to the sendMessage call reaching the fake Bot API). Above its",
        "throughput the service queues: the 500/s rows measure the backlog, not the path.",
        "",
        "| server | rate /s | updates | acknowledged | replies | p50 ms | p99 ms | max ms "
        "| ack p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for st in results["steady"]:
        lines.append(
            f"| {st['name']} | {st['rate']:.0f} | {st['sent']} | {st['ok']} | {st['replies']} | "
            f"{st['p50_ms']:.1f} | {st['p99_ms']:.1f} | {st['max_ms']:.1f} | "
            f"{st['ack_p99_ms']:.1f} |"
        )
    rss_line = f"RSS of the triagebot worker (tf-idf): max {results['rss_mb']:.0f} MiB"
    if results.get("rss_pg_mb"):
        rss_line += f" on SQLite, {results['rss_pg_mb']:.0f} MiB per PostgreSQL instance"
    lines += ["", rss_line + ".", "", "Targets:", ""]
    lines.append(
        f"- Ingestion ≥ {TARGET_RATIO_PTB:.1f}x PTB's empty run_webhook: {_met(ratio_ptb >= 1)} "
        f"({ratio_ptb:.2f}x)."
    )
    at_target = [st for st in results["steady"] if st["rate"] == STEADY_RATE]
    worst = max(st["p99_ms"] for st in at_target)
    all_replied = all(st["replies"] == st["sent"] for st in at_target)
    lines.append(
        f"- p99 receipt→reply ≤ {TARGET_P99_MS:.0f} ms at {STEADY_RATE} updates/s: "
        f"{_met(worst <= TARGET_P99_MS and all_replied)} (worst p99 {worst:.1f} ms"
        + ("" if all_replied else "; some replies missing within 30 s")
        + ")."
    )
    rss_max = max(results["rss_mb"], results.get("rss_pg_mb") or 0)
    lines.append(
        f"- RSS ≤ {TARGET_RSS_MB:.0f} MB per worker: {_met(rss_max <= TARGET_RSS_MB)} "
        f"({rss_max:.0f} MiB)."
    )
    notes = results.get("notes")
    if notes:
        lines += ["", *notes]
    lines += ["", *WHY]
    return "\n".join(lines)


WHY = [
    "Why the throughput targets are missed, and what would close them. The ceiling is CPU in",
    "one Python process: a message costs about 7 ms of CPU in the pipeline alone (measured",
    "in-process, one thread, PostgreSQL: about a dozen ORM round trips — dedupe check,",
    "identity and conversation, rate limit and repeated-contact counts, message, outbox",
    "entry — plus classification, sentiment and the answer template), and the outbox worker",
    "adds a few more per reply (python-telegram-bot's request and response objects, the",
    "delivery record). The GIL keeps that on one core per process, whatever the thread count",
    "(2 to 40 worker threads measured the same). PTB's `run_webhook` acknowledges before",
    "any of this runs; we acknowledge after the commit, as promised. What would close the",
    "gap, not done yet: acknowledge after a single-row durable insert and run the pipeline",
    "in batches (one transaction and set-based queries for many messages), and several",
    "worker processes per host (the outbox and the jobs are already safe across instances;",
    "the web chat's live stream is in-process and would need a shared channel first). Two",
    "fixes were measured here: SQLite writers now queue on a lock in the process instead of",
    "in SQLite's sleeping busy handler, and answer templates are compiled once instead of per",
    "message (together, on SQLite under wrk: 76 → about 95 req/s, p99 2.3 s → under 1 s).",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.webhook_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s per configuration")
    parser.add_argument("--no-postgres", action="store_true", help="skip the two-instance run")
    parser.add_argument("--out", type=Path, help="Markdown file to update (default: docs)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"  [{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    results = run(args.quick, not args.no_postgres, say)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "python -m benchmarks.webhook_bench" + (" --quick" if args.quick else "")
    body = render(results, command, stamp)
    out = args.out or (
        harness.ROOT / "var" / "benchmarks" / "benchmarks-quick.md" if args.quick else DOC
    )
    harness.replace_block(out, "webhook", body)
    raw = harness.ROOT / "var" / "benchmarks" / "webhook.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(body)
    say(f"wrote {out} and {raw}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
