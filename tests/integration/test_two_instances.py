"""Two `triagebot serve` processes with their outbox workers on one PostgreSQL database.

Real subprocesses (benchmarks.harness), one fresh database, one fake Bot API process that
records every sendMessage. What a second instance must not break: an update delivered to
both at once is stored, processed and answered once; agents racing on both instances get
one owner per handoff.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, func, select

from benchmarks import harness
from handoff import users
from handoff.db import build_engine
from handoff.migrate import upgrade
from handoff.models import Handoff, HandoffEvent, Message, OutboxEntry, User
from tests.conftest import PG_ADMIN_URL, _pg_available

pytestmark = pytest.mark.postgres

HEADERS = {"X-Telegram-Bot-Api-Secret-Token": harness.SECRET}
RACE_CHATS = range(931_000_001, 931_000_021)  # one new chat per raced update
ESCALATING_CHATS = range(932_000_001, 932_000_007)
AGENTS = 20


@dataclass
class Pair:
    """Two instances, the fake Bot API they send to, and their shared database."""

    ports: tuple[int, int]
    fake: harness.Proc
    url: str
    engine: Any

    def accepted_sends(self) -> Counter[str]:
        """Messages the fake Bot API accepted, per chat id."""
        return Counter(str(r[2]) for r in harness.fake_records(self.fake) if r[4] == 200)

    def unfinished_outbox(self) -> int:
        with Session(self.engine) as s:
            return int(
                s.exec(
                    select(func.count())
                    .select_from(OutboxEntry)
                    .where(col(OutboxEntry.status).in_(["pending", "sending"]))
                ).one()
            )


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:.0f} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pair(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} (CI must start it)")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: two-instance tests skipped")
    folder = tmp_path_factory.mktemp("two-instances")
    name = f"triagebot_pair_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    processes: list[harness.Proc] = []
    engine = build_engine(url)
    try:
        upgrade(url)
        fake = harness.start_fake(folder)
        processes.append(fake)
        env = harness.triagebot_env(
            url, fake.port, model_path, harness.ROOT / "data" / "policy.yaml"
        )
        env["SCHEDULER_ENABLED"] = "false"
        instances = [
            harness.Proc(
                f"triagebot-{i}",
                [harness.TRIAGEBOT, "serve", "--port", str(port)],
                env,
                folder,
                port,
            )
            for i, port in enumerate((harness.free_port(), harness.free_port()))
        ]
        processes.extend(instances)
        with ThreadPoolExecutor(2) as pool:  # start both at once: start-up is the slow part
            list(pool.map(lambda p: p.start(), instances))
        yield Pair((instances[0].port, instances[1].port), fake, url, engine)
    finally:
        for process in reversed(processes):
            process.stop()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


async def _post_to_both(ports: tuple[int, int], body: bytes) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(
                        f"http://127.0.0.1:{port}/webhooks/telegram",
                        content=body,
                        headers={**HEADERS, "Content-Type": "application/json"},
                    )
                    for port in ports
                )
            )
        )


def test_an_update_delivered_to_both_instances_is_stored_and_answered_once(pair: Pair) -> None:
    update_ids = {}
    for offset, chat in enumerate(RACE_CHATS):
        update_id = 931_000_000 + offset
        update_ids[chat] = update_id
        body = harness.update_body(update_id, chat, "How do I reset my password?")
        answers = asyncio.run(_post_to_both(pair.ports, body))
        assert [a.status_code for a in answers] == [200, 200]
        verdicts = sorted(a.json()["duplicate"] for a in answers)
        assert verdicts == [False, True], f"update {update_id}: {[a.json() for a in answers]}"
        assert {a.json()["action"] for a in answers if not a.json()["duplicate"]} == {"answered"}

    # Every reply leaves, then nothing is left to send: the fake's count is final.
    wait_until(
        lambda: (
            pair.unfinished_outbox() == 0
            and all(pair.accepted_sends()[str(c)] >= 1 for c in RACE_CHATS)
        )
    )
    sends = pair.accepted_sends()
    assert {chat: sends[str(chat)] for chat in RACE_CHATS} == {chat: 1 for chat in RACE_CHATS}
    with Session(pair.engine) as s:
        stored = s.exec(
            select(Message.external_id, func.count())
            .where(col(Message.external_id).in_([str(u) for u in update_ids.values()]))
            .group_by(col(Message.external_id))
        ).all()
        assert dict(stored) == {str(u): 1 for u in update_ids.values()}
        targets = s.exec(
            select(OutboxEntry.target, func.count())
            .where(col(OutboxEntry.target).in_([str(c) for c in RACE_CHATS]))
            .group_by(col(OutboxEntry.target))
        ).all()
        assert dict(targets) == {str(c): 1 for c in RACE_CHATS}


def _agents(pair: Pair) -> list[tuple[int, str]]:
    """Twenty agents with API tokens: (user id, token)."""
    with Session(pair.engine) as s:
        agents = []
        for i in range(AGENTS):
            user = User(email=f"racer-{uuid.uuid4().hex[:8]}@pair.test", name=f"R{i}", role="agent")
            s.add(user)
            s.flush()
            agents.append((user.id or 0, users.issue_api_token(s, user)))
        s.commit()
    return agents


def _escalate(pair: Pair, chats: range) -> list[int]:
    """Each chat asks for a person (alternating instances); returns the new handoff ids."""
    with httpx.Client(timeout=30) as client:
        for index, chat in enumerate(chats):
            port = pair.ports[index % 2]
            r = client.post(
                f"http://127.0.0.1:{port}/webhooks/telegram",
                content=harness.update_body(chat, chat, "I want to talk to a person"),
                headers={**HEADERS, "Content-Type": "application/json"},
            )
            assert r.status_code == 200 and r.json()["action"] == "escalated"
    with Session(pair.engine) as s:
        ids = s.exec(
            select(Handoff.id)
            .join(Message, col(Message.conversation_id) == col(Handoff.conversation_id))
            .where(col(Message.external_id).in_([str(c) for c in chats]))
        ).all()
    assert len(ids) == len(chats)
    return sorted(i for i in ids if i is not None)


def _race(pair: Pair, agents: list[tuple[int, str]], path: str) -> list[tuple[int, httpx.Response]]:
    """Every agent POSTs ``path`` at the same moment, half of them on each instance."""
    barrier = threading.Barrier(len(agents))

    def call(index: int) -> tuple[int, httpx.Response]:
        user_id, token = agents[index]
        port = pair.ports[index % 2]
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            return user_id, client.post(
                f"http://127.0.0.1:{port}/api/v1{path}",
                headers={"Authorization": f"Bearer {token}"},
            )

    with ThreadPoolExecutor(len(agents)) as pool:
        return list(pool.map(call, range(len(agents))))


def test_twenty_agents_on_two_instances_get_one_owner_per_handoff(pair: Pair) -> None:
    agents = _agents(pair)
    handoffs = _escalate(pair, ESCALATING_CHATS[:3])
    for handoff_id in handoffs:
        results = _race(pair, agents, f"/handoffs/{handoff_id}/claim")
        statuses = Counter(r.status_code for _, r in results)
        assert statuses == {200: 1, 409: AGENTS - 1}, f"handoff {handoff_id}: {statuses}"
        winner = next(user_id for user_id, r in results if r.status_code == 200)
        with Session(pair.engine) as s:
            handoff = s.get(Handoff, handoff_id)
            assert handoff is not None
            assert (handoff.status, handoff.assignee_id) == ("assigned", winner)
            claims = s.exec(
                select(func.count())
                .select_from(HandoffEvent)
                .where(HandoffEvent.handoff_id == handoff_id, HandoffEvent.transition == "claim")
            ).one()
            assert claims == 1


def test_twenty_agents_taking_next_on_two_instances_each_get_a_different_handoff(
    pair: Pair,
) -> None:
    agents = _agents(pair)
    mine = _escalate(pair, ESCALATING_CHATS[3:])
    with Session(pair.engine) as s:
        waiting = sorted(
            h for h in s.exec(select(Handoff.id).where(Handoff.status == "waiting")).all() if h
        )
    assert set(mine) <= set(waiting) and len(waiting) < AGENTS  # more agents than handoffs
    results = _race(pair, agents, "/handoffs/take-next")
    assert {r.status_code for _, r in results} == {200}
    taken = {user_id: r.json()["id"] for user_id, r in results if r.json() is not None}
    assert sorted(taken.values()) == waiting  # every waiting handoff once, none twice
    with Session(pair.engine) as s:
        for user_id, handoff_id in taken.items():
            handoff = s.get(Handoff, handoff_id)
            assert handoff is not None
            assert (handoff.status, handoff.assignee_id) == ("assigned", user_id)
