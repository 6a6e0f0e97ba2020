"""Shared pieces of the webhook benchmarks and the zero-loss load test.

Processes (``triagebot serve``, the fake Bot API, the comparison servers) run as real
subprocesses on loopback; this module starts them, waits until they answer, measures their
memory and stops them (only the processes it started). It also holds the message texts, a
throw-away PostgreSQL database and a minimal keep-alive HTTP/1.1 client for the load
generators (cheaper per request than a full client, so the generator does not eat the CPU the
server under test needs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TRIAGEBOT = str(Path(PYTHON).with_name("triagebot"))
BOT_TOKEN = "123456789:AAHbenchTOKENbenchTOKENbenchTOKEN1"
SECRET = "bench-webhook-secret-0123456789"
PG_ADMIN_URL = os.environ.get("TRIAGEBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PATH = "/webhooks/telegram"

# Questions the bundled FAQ answers (each classified with confidence >= 0.99 by the tf-idf
# model), and messages that hand the conversation to a person.
FAQ_TEXTS = (
    "How do I reset my password?",
    "I never got the password reset email",
    "Where can I download my invoices?",
    "My card payment failed, what should I do?",
    "How do I update my credit card?",
    "How can I add more users to our plan?",
    "How do I remove a user from our workspace?",
    "How do I export all my data to CSV?",
    "Do you have an integration with Slack?",
    "What are the API rate limits?",
    "How do I turn off email notifications?",
    "Is the service down right now?",
    "How do I set up two factor authentication?",
    "I can't log in to my account",
    "How do I change my email address?",
    "Is there a mobile app for iPhone?",
    "How do I set up SSO with Okta?",
    "How do I add our VAT number to invoices?",
)
ESCALATION_TEXTS = (
    "I want to talk to a person",
    "I want to cancel my subscription",
    "We want a refund for last month",
    "Your service is terrible and I am very unhappy",
    "Can we discuss our contract renewal?",
    "What would it cost to upgrade to enterprise?",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def update_body(update_id: int, chat_id: int, text: str, message_id: int | None = None) -> bytes:
    """A private-chat text update as Telegram sends it."""
    update = {
        "update_id": update_id,
        "message": {
            "message_id": message_id if message_id is not None else update_id,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Bench", "language_code": "en"},
            "chat": {"id": chat_id, "first_name": "Bench", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }
    return json.dumps(update, separators=(",", ":")).encode()


def bench_policy(folder: Path) -> Path:
    """data/policy.yaml with per-chat flood protection and repeated-contact escalation relaxed.

    A load generator sends far more messages per chat per minute than a person does; with the
    production limits most of them would be stored but not answered (throttled) or escalated
    as "repeated contact", and the benchmark would measure the cheap path.
    """
    policy = yaml.safe_load((ROOT / "data" / "policy.yaml").read_text(encoding="utf-8"))
    policy["rate_limit"] = {"max_messages": 1_000_000, "per_seconds": 60}
    policy["repeated_contact"]["same_intent_count"] = 1_000_000
    path = folder / "bench-policy.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    return path


def ensure_model(folder: Path) -> Path:
    """The bundled tf-idf model: var/models' copy when current, else trained into ``folder``."""
    default = ROOT / "var" / "models" / "faq-tfidf.joblib"
    from classifier import model_is_current

    if default.exists() and model_is_current(ROOT / "data" / "faq", default, "tfidf") is None:
        return default
    path = folder / "faq-tfidf.joblib"
    # The served default is the embeddings backend: ask for tf-idf, or a restart under the
    # zero-loss test would spend 10-25 s loading torch on a busy machine.
    env = {**os.environ, "MODEL_PATH": str(path), "MODEL_BACKEND": "tfidf"}
    subprocess.run(
        [TRIAGEBOT, "ensure-model"], env=env, cwd=folder, check=True, stdout=subprocess.DEVNULL
    )
    return path


def triagebot_env(database_url: str, fake_port: int, model: Path, policy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
    env.update(
        DATABASE_URL=database_url,
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{fake_port}/bot",
        MODEL_PATH=str(model),
        MODEL_BACKEND="tfidf",
        POLICY_PATH=str(policy),
        LOG_LEVEL="WARNING",
        ENVIRONMENT="test",
    )
    return env


class Proc:
    """A server subprocess we started (stdout/stderr go to a log file)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path, port: int):
        self.name = name
        self.args = args
        self.env = env
        self.cwd = cwd
        self.port = port
        self.log = cwd / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self, ready_path: str = "/healthz", timeout: float = 60.0) -> Proc:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        wait_http(f"http://127.0.0.1:{self.port}{ready_path}", timeout, self)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def rss_mb(self) -> float:
        """Resident memory of the process, in MiB (psutil, else /proc)."""
        try:
            import psutil

            return float(psutil.Process(self.pid).memory_info().rss) / 2**20
        except ImportError:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, like a crash or an OOM kill."""
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_http(url: str, timeout: float, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited during start-up:\n{proc.tail()}")
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def start_fake(folder: Path, p429: float = 0.0, p5xx: float = 0.0) -> Proc:
    port = free_port()
    args = [PYTHON, "-m", "benchmarks.fake_bot_api", "--port", str(port)]
    args += ["--p429", str(p429), "--p5xx", str(p5xx)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return Proc("fake-bot-api", args, env, folder, port).start("/_stats")


def start_triagebot(name: str, folder: Path, env: dict[str, str]) -> Proc:
    port = free_port()
    return Proc(name, [TRIAGEBOT, "serve", "--port", str(port)], env, folder, port).start()


def fake_records(fake: Proc) -> list[list[Any]]:
    """The fake's sendMessage records: [seq, wall time, chat id, text, status, message id]."""
    response = httpx.get(f"http://127.0.0.1:{fake.port}/_records", timeout=60)
    response.raise_for_status()
    return list(response.json())


def reset_fake(fake: Proc) -> None:
    httpx.post(f"http://127.0.0.1:{fake.port}/_reset", timeout=10).raise_for_status()


@contextlib.contextmanager
def postgres_database(prefix: str = "triagebot_bench") -> Iterator[str]:
    """A fresh PostgreSQL database, migrated with ``triagebot migrate``, dropped at the end."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        env = {**os.environ, "DATABASE_URL": url}
        subprocess.run([TRIAGEBOT, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def postgres_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and returns the status code
    (the body of the last answer is kept in ``last_body``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.last_body = b""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self._reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
            ).encode()
            + body
        )
        try:
            await self._writer.drain()
            status_line = await self._reader.readline()
            if not status_line:
                raise ConnectionResetError("server closed the connection")
            status = int(status_line.split()[1])
            length, close = 0, False
            while True:
                line = await self._reader.readline()
                if line in (b"\r\n", b""):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                key = key.strip().lower()
                if key == "content-length":
                    length = int(value)
                elif key == "connection" and value.strip().lower() == "close":
                    close = True
            self.last_body = await self._reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def replace_block(path: Path, name: str, body: str) -> None:
    """Rewrite the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    document = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    content = f"{start}\n{body.rstrip()}\n{end}"
    if start in document and end in document:
        head, _, rest = document.partition(start)
        _, _, tail = rest.partition(end)
        document = head + content + tail
    else:
        document = document.rstrip() + "\n\n" + content + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
