"""Zero-loss load test: crash the service and its database under load, then count everything.

    .venv/bin/python -m benchmarks.zero_loss [--updates 20000] [--chats 500]
        [--kill-every 30] [--no-pg-restart] [--out docs/benchmarks.md]

(``make test-load``; ``ZERO_LOSS_UPDATES`` / ``ZERO_LOSS_CHATS`` / ``ZERO_LOSS_KILL_EVERY`` set
the defaults.) On a fresh PostgreSQL database, one ``triagebot serve`` with its outbox worker
sends replies to a fake Bot API that refuses 5% of ``sendMessage`` calls with 429
(``retry_after``) and 5% with a 502. A load generator behaves like Telegram: each chat's
updates go one at a time, in order (the next only once the previous one was acknowledged),
over at most 40 connections, and a non-2xx answer, a timeout or a connection error is
retried with backoff. Meanwhile the service is killed with SIGKILL every ``--kill-every``
seconds of uptime (scaled down for small runs) and restarted, and PostgreSQL is restarted
once, halfway (``pg_ctlcluster ... restart``; it is started again at the end whatever
happens).

When every update is acknowledged, the outbox is left to drain and the service is stopped;
then ``benchmarks.reconcile`` checks the database against the plan and the fake's records
(stored exactly once, answered or queued exactly once, per-chat order of messages and of
replies, nothing lost; duplicate sends counted, tolerated only right after a kill). The exit
status is non-zero when an invariant fails. A summary goes to ``docs/benchmarks.md``
(block ``zero-loss``).

It restarts the machine's PostgreSQL cluster, which cuts every client of it: the restart
waits while other databases have clients (until 90% of the updates are in, then goes ahead
and says so), but do not run it beside the test suite; ``--no-pg-restart`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import harness, pg_cluster, reconcile
from benchmarks.harness import ESCALATION_TEXTS, FAQ_TEXTS, PATH, SECRET, Proc

DOC = harness.ROOT / "docs" / "benchmarks.md"
Say = Callable[[str], None]

FULL_UPDATES = 20_000
FULL_CHATS = 500
FULL_KILL_EVERY = 30.0
CONNECTIONS = 40  # Telegram's default max_connections for a webhook
REQUEST_TIMEOUT = 30.0
FIRST_CHAT = 880_000_000
DRAIN_TIMEOUT = 15 * 60.0
STALL_TIMEOUT = 120.0  # longer than the outbox lease (60 s) of entries a kill left behind
RUN_TIMEOUT = 20 * 60.0
# The FAQ questions the bot answers by itself. harness.FAQ_TEXTS also holds "My card payment
# failed, what should I do?", which the shipped policy hands to a person: every chat would
# end up with a person after a few rounds and the bot would answer nothing.
ANSWERED_TEXTS = tuple(t for t in FAQ_TEXTS if "payment failed" not in t)


@dataclass
class Plan:
    """Which update each chat sends, in order; one chat in ten ends by asking for a person."""

    updates: int
    chats: int
    bodies: dict[int, bytes] = field(default_factory=dict)
    per_chat: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, updates: int, chats: int) -> Plan:
        plan = cls(updates, chats)
        rounds = -(-updates // chats)
        escalate_at = rounds - max(1, rounds // 5)
        update_id = 0
        for k in range(rounds):
            for c in range(chats):
                if update_id == updates:
                    break
                update_id += 1
                chat = FIRST_CHAT + c
                if c % 10 == 0 and k == escalate_at:
                    text = ESCALATION_TEXTS[(c // 10) % len(ESCALATION_TEXTS)]
                else:
                    text = ANSWERED_TEXTS[(c + k) % len(ANSWERED_TEXTS)]
                plan.bodies[update_id] = harness.update_body(update_id, chat, text, k + 1)
                plan.per_chat.setdefault(str(chat), []).append(update_id)
        return plan


@dataclass
class Telemetry:
    """What happened during the run, for the report and for blaming duplicates."""

    started: float = field(default_factory=time.time)
    acked: int = 0
    attempts: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    duplicate_acks: int = 0
    kills: list[float] = field(default_factory=list)
    downtime: list[float] = field(default_factory=list)
    pg_window: tuple[float, float] | None = None
    pg_note: str = ""
    load_seconds: float = 0.0
    drain_seconds: float = 0.0
    done: bool = False


# ---------------------------------------------------------------------------- load generator
async def send_chat(
    updates: list[int],
    plan: Plan,
    pool: asyncio.Queue[harness.HttpConnection],
    tel: Telemetry,
) -> None:
    """One chat, like Telegram: each update until it is acknowledged, then the next."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    for update_id in updates:
        failures = 0
        while True:
            connection = await pool.get()
            tel.attempts += 1
            body = b""
            try:
                status = await asyncio.wait_for(
                    connection.post(PATH, plan.bodies[update_id], headers), REQUEST_TIMEOUT
                )
                body, reason = connection.last_body, f"HTTP {status}"
            except (OSError, EOFError) as exc:  # refused, reset, closed mid-answer
                status, reason = 0, type(exc).__name__
            except TimeoutError:
                connection.close()
                status, reason = 0, "timeout"
            finally:
                pool.put_nowait(connection)
            if 200 <= status < 300:
                tel.acked += 1
                tel.duplicate_acks += b'"duplicate":true' in body
                break
            tel.retries[reason] += 1
            failures += 1
            await asyncio.sleep(min(2.0, 0.05 * 2**failures) * random.uniform(0.5, 1.0))


async def generate(plan: Plan, port: int, tel: Telemetry) -> None:
    pool: asyncio.Queue[harness.HttpConnection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(harness.HttpConnection(port))
    try:
        await asyncio.gather(*(send_chat(ids, plan, pool, tel) for ids in plan.per_chat.values()))
    finally:
        while not pool.empty():
            pool.get_nowait().close()


# ------------------------------------------------------------------------------------ chaos
def restart(proc: Proc, say: Say) -> None:
    for attempt in range(1, 6):
        try:
            proc.start(timeout=60)
            return
        except RuntimeError as exc:
            say(f"restart attempt {attempt} failed: {exc}")
            proc.kill()
            time.sleep(1)
    raise RuntimeError(f"triagebot would not start again:\n{proc.tail()}")


async def chaos(
    proc: Proc, tel: Telemetry, plan: Plan, kill_every: float, database: str | None, say: Say
) -> None:
    """SIGKILL the service every ``kill_every`` s of uptime; restart PostgreSQL once, halfway.

    The restart waits (until 90% of the updates at most) while other databases of the
    cluster have clients, such as a test suite running beside us.
    """
    up_since = time.monotonic()
    checked, postponed = 0.0, False
    while not tel.done:
        await asyncio.sleep(0.1)
        due = database is not None and tel.pg_window is None and tel.acked >= plan.updates // 2
        if due and time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            others = await asyncio.to_thread(pg_cluster.foreign_clients, str(database))
            if others and tel.acked < plan.updates * 9 // 10:
                if not postponed:
                    say(f"PostgreSQL restart postponed: other databases in use {others}")
                    postponed = True
            else:
                if others:
                    tel.pg_note = f"restarted while other databases had clients: {others}"
                say(f"restarting PostgreSQL ({tel.acked} updates acknowledged)")
                tel.pg_window = await asyncio.to_thread(pg_cluster.restart)
                say(f"PostgreSQL back after {tel.pg_window[1] - tel.pg_window[0]:.1f} s")
        if time.monotonic() - up_since < kill_every or tel.done:
            continue
        tel.kills.append(time.time())
        proc.kill()
        down = time.monotonic()
        await asyncio.to_thread(restart, proc, say)
        tel.downtime.append(time.monotonic() - down)
        up_since = time.monotonic()
        say(
            f"kill {len(tel.kills)}: back in {tel.downtime[-1]:.1f} s "
            f"({tel.acked}/{plan.updates} acknowledged)"
        )


async def load(
    proc: Proc, plan: Plan, tel: Telemetry, kill_every: float, database: str | None, say: Say
) -> None:
    """Send the plan while the chaos task kills the service (and restarts ``database``'s
    cluster, unless None)."""
    chaos_task = asyncio.create_task(chaos(proc, tel, plan, kill_every, database, say))
    started = time.monotonic()
    try:
        await asyncio.wait_for(generate(plan, proc.port, tel), RUN_TIMEOUT)
    finally:
        tel.done = True
        tel.load_seconds = time.monotonic() - started
        await chaos_task


# -------------------------------------------------------------------------------- database
def pending_outbox(url: str) -> int:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ).fetchone()
    return int(row[0]) if row else 0


def drain(url: str, proc: Proc, say: Say) -> float:
    """Wait until the outbox has nothing left to send; returns how long it took.

    Gives up when nothing moved for ``STALL_TIMEOUT`` (longer than the outbox lease that
    entries left ``sending`` by a kill wait for) or after ``DRAIN_TIMEOUT`` in all.
    """
    started = time.monotonic()
    moved, last = started, -1
    while time.monotonic() - started < DRAIN_TIMEOUT and time.monotonic() - moved < STALL_TIMEOUT:
        if not proc.alive():
            raise RuntimeError(f"triagebot died while draining:\n{proc.tail()}")
        left = pending_outbox(url)
        if left == 0:
            return time.monotonic() - started
        if left != last:
            if last < 0 or left // 1000 != last // 1000 or left < 100:
                say(f"draining the outbox: {left} entries left")
            moved, last = time.monotonic(), left
        time.sleep(1.0)
    say(f"outbox not drained: {last} entries left after {time.monotonic() - started:.0f} s")
    return time.monotonic() - started


def read_database(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        messages = [
            reconcile.MessageRow(*row)
            for row in conn.execute(
                "SELECT id, conversation_id, external_id, direction, author, text FROM messages"
            )
        ]
        chats = {
            int(cid): str(ext)
            for cid, ext in conn.execute(
                "SELECT c.id, i.external_id FROM conversations c "
                "JOIN channel_identities i ON i.id = c.identity_id"
            )
        }
        outbox = [
            reconcile.OutboxRow(
                id=row[0],
                kind=row[1],
                target=row[2],
                status=row[3],
                text=str((row[4] or {}).get("text", "")),
                message_id=row[5],
                provider_message_id=row[6],
            )
            for row in conn.execute(
                "SELECT id, kind, target, status, payload, message_id, provider_message_id "
                "FROM outbox"
            )
        ]
        handoffs = [
            (int(h), int(c), str(s))
            for h, c, s in conn.execute("SELECT id, conversation_id, status FROM handoffs")
        ]
        dead = conn.execute("SELECT count(*) FROM inbound_events").fetchone()
        attempts = conn.execute("SELECT coalesce(sum(attempts), 0) FROM outbox").fetchone()
    return {
        "messages": messages,
        "chats": chats,
        "outbox": outbox,
        "handoffs": handoffs,
        "dead": int(dead[0]) if dead else 0,
        "attempts": int(attempts[0]) if attempts else 0,
    }


# ------------------------------------------------------------------------------------ run
def run(
    updates: int, chats: int, kill_every: float, pg_restart: bool, say: Say
) -> tuple[reconcile.Reconciliation, Telemetry, dict[str, Any]]:
    plan = Plan.build(updates, chats)
    tel = Telemetry()
    folder = Path(tempfile.mkdtemp(prefix="triagebot-zero-loss-"))
    processes: list[Proc] = []
    extra: dict[str, Any] = {}
    if pg_restart and pg_cluster.version() is None:
        pg_restart = False
        tel.pg_note = "not restarted: pg_ctlcluster is not available"
    try:
        model = harness.ensure_model(folder)
        policy = harness.bench_policy(folder)
        fake = harness.start_fake(folder, p429=0.05, p5xx=0.05)
        processes.append(fake)
        with harness.postgres_database("triagebot_zero_loss") as url:
            try:
                env = harness.triagebot_env(url, fake.port, model, policy)
                env["SESSION_SECRET"] = secrets.token_urlsafe(32)  # as in production
                proc = harness.start_triagebot("triagebot", folder, env)
                processes.append(proc)
                say(
                    f"triagebot up (pid {proc.pid}); {updates} updates from {chats} chats, "
                    f"SIGKILL every {kill_every:.0f} s"
                )
                database = url.rsplit("/", 1)[1] if pg_restart else None
                asyncio.run(load(proc, plan, tel, kill_every, database, say))
                if pg_restart and tel.pg_window is None:
                    tel.pg_note = "not restarted: the load ended before it was due"
                say(
                    f"all {tel.acked} updates acknowledged in {tel.load_seconds:.0f} s "
                    f"({len(tel.kills)} kills)"
                )
                if not proc.alive():
                    restart(proc, say)
                tel.drain_seconds = drain(url, proc, say)
                proc.stop()
                records = [
                    reconcile.SendRecord(seq, at, str(chat), text, status, mid)
                    for seq, at, chat, text, status, mid in harness.fake_records(fake)
                ]
                rows = read_database(url)
            finally:
                pg_cluster.ensure_running(
                    say
                )  # the database is dropped next: PostgreSQL must be up
        extra["outbox attempts"] = rows["attempts"]
        extra["log"] = _log_summary(folder)
        result = reconcile.reconcile(
            plan.per_chat,
            rows["messages"],
            rows["chats"],
            rows["outbox"],
            rows["handoffs"],
            rows["dead"],
            records,
            tel.kills,
            tel.pg_window,
            tel.started,
        )
        return result, tel, extra
    finally:
        for process in reversed(processes):
            process.stop()
        pg_cluster.ensure_running(say)
        shutil.rmtree(folder, ignore_errors=True)


def _log_summary(folder: Path) -> dict[str, int]:
    """The service's WARNING and ERROR records over all its lives, by kind (digits masked)."""
    counts: Counter[str] = Counter()
    log = folder / "triagebot.log"
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            for level in (" WARNING ", " ERROR "):
                if level in line:
                    kind = re.sub(r"\d+", "#", line.split(level, 1)[1])[:90]
                    counts[f"{level.strip()} {kind}"] += 1
    return dict(counts.most_common(8))


def render(
    result: reconcile.Reconciliation,
    tel: Telemetry,
    extra: dict[str, Any],
    command: str,
    sizes: dict[str, Any],
    duration: float,
) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(tel.started))
    verdict = "**all invariants hold**" if result.ok else "**INVARIANTS BROKEN**"
    down = sum(tel.downtime) / len(tel.downtime) if tel.downtime else 0.0
    pg = (
        f"restarted once, down {tel.pg_window[1] - tel.pg_window[0]:.1f} s"
        if tel.pg_window
        else "not restarted (`--no-pg-restart`)"
    )
    if tel.pg_note:
        pg = tel.pg_note if tel.pg_window is None else f"{pg} ({tel.pg_note})"
    retries = ", ".join(f"{k} {v}" for k, v in tel.retries.most_common()) or "none"
    causes = ", ".join(f"{k} {v}" for k, v in sorted(result.duplicate_causes.items())) or "none"
    lines = [
        "## Zero loss under crashes",
        "",
        f"`{command}` — {stamp}; {duration:.0f} s in all (load {tel.load_seconds:.0f} s, "
        f"outbox drain {tel.drain_seconds:.0f} s). {verdict}.",
        "",
        f"{sizes['updates']:,} numbered updates from {sizes['chats']} chats (sent like Telegram:",
        f"per chat one at a time, in order; {CONNECTIONS} connections; retried with backoff) to",
        "one `triagebot serve` (tf-idf model) on a fresh PostgreSQL database; the fake Bot API",
        "refused 5% of sends with 429 (`retry_after` 1 s) and 5% with 502. The service was",
        f"killed with SIGKILL every {sizes['kill_every']:.0f} s of uptime and restarted "
        f"({len(tel.kills)} kills, back in {down:.1f} s on average); PostgreSQL: {pg}.",
        f"Webhook retries by the sender: {retries}; redeliveries answered as duplicates: "
        f"{tel.duplicate_acks}. Duplicate sends by cause: {causes}"
        + (f" (largest acceptance→kill gap {result.max_kill_gap:.2f} s)." if causes else "."),
        "",
        "| count | value |",
        "| --- | ---: |",
    ]
    for name, value in reconcile.summary_rows(result):
        lines.append(f"| {name} | {value:,} |")
    lines.append(f"| outbox send attempts | {extra.get('outbox attempts', 0):,} |")
    if extra.get("log"):
        lines += ["", "The service's own warnings and errors over the run (digits masked):", ""]
        lines += [f"- {count}x `{kind}`" for kind, count in extra["log"].items()]
    if result.problems:
        lines += ["", "Broken invariants (first examples):", ""]
        for name, examples in result.problems.items():
            lines.append(f"- {name}: " + "; ".join(examples))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zero_loss", description=__doc__)
    env = os.environ.get
    parser.add_argument("--updates", type=int, default=int(env("ZERO_LOSS_UPDATES", FULL_UPDATES)))
    parser.add_argument("--chats", type=int, default=int(env("ZERO_LOSS_CHATS", FULL_CHATS)))
    parser.add_argument(
        "--kill-every",
        type=float,
        default=float(env("ZERO_LOSS_KILL_EVERY", "0")) or None,
        help="seconds of uptime between kills (default 30, scaled down for smaller runs)",
    )
    parser.add_argument("--no-pg-restart", action="store_true", help="do not restart PostgreSQL")
    parser.add_argument("--out", type=Path, default=DOC, help="Markdown file to update")
    args = parser.parse_args(argv)
    if args.updates < 1 or args.chats < 1:
        parser.error("--updates and --chats must be positive")
    kill_every = args.kill_every or max(
        5.0, FULL_KILL_EVERY * min(1.0, args.updates / FULL_UPDATES)
    )
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"  [{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    if not harness.postgres_available():
        say(f"PostgreSQL is not reachable at {harness.PG_ADMIN_URL}")
        return 2
    result, tel, extra = run(args.updates, args.chats, kill_every, not args.no_pg_restart, say)
    duration = time.perf_counter() - started
    command = " ".join(
        ["python -m benchmarks.zero_loss", *(sys.argv[1:] if argv is None else argv)]
    )
    sizes = {"updates": args.updates, "chats": args.chats, "kill_every": kill_every}
    body = render(result, tel, extra, command, sizes, duration)
    harness.replace_block(args.out, "zero-loss", body)
    print(body)
    if extra.get("log"):
        print("\nservice log, most common warnings and errors:", json.dumps(extra["log"], indent=2))
    say(f"wrote {args.out}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
