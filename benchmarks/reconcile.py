"""The zero-loss checks: what the database and the fake Bot API say happened, against the plan.

Pure functions over plain rows (no sockets, no database), so the rules can be read in one
place. :func:`reconcile` returns a :class:`Reconciliation` with the counts and, for every
broken invariant, a few examples:

* every update of the plan is stored exactly once (deduplicated on ``update_id``), nothing
  else is stored, nothing is dead-lettered;
* per chat, the stored messages are in the order the chat sent them;
* every stored inbound message is answered exactly once while the bot owns the conversation,
  and queued (no answer, the conversation's one open handoff) once a person owns it;
* every reply's outbox entry is ``sent``, and the provider accepted exactly the message the
  entry recorded (matched on the ``message_id`` the provider returned, with chat and text);
* per chat, the replies reached the provider in the order they were queued;
* an accepted send that no entry recorded is a duplicate: tolerated only when the service
  was killed right after the provider accepted it (before we could record it), reported
  with its count; anything else is a failure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

HANDOFF_PREFIX = "Thanks, I've passed this to our support team."
KILL_WINDOW = 2.0  # at most this long between the provider's acceptance and the blamed kill
EXAMPLES = 5


@dataclass(frozen=True)
class MessageRow:
    id: int
    conversation_id: int
    external_id: str | None
    direction: str
    author: str
    text: str


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    target: str
    status: str
    text: str
    message_id: int | None
    provider_message_id: str | None


@dataclass(frozen=True)
class SendRecord:
    """One sendMessage call as the fake Bot API recorded it."""

    seq: int
    at: float
    chat: str
    text: str
    status: int
    message_id: int | None


@dataclass
class Reconciliation:
    counts: dict[str, int] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    duplicate_causes: Counter[str] = field(default_factory=Counter)
    max_kill_gap: float = 0.0  # largest acceptance -> kill gap among blamed duplicates

    def fail(self, invariant: str, example: str) -> None:
        examples = self.problems.setdefault(invariant, [])
        self.counts[f"violations: {invariant}"] = self.counts.get(f"violations: {invariant}", 0)
        self.counts[f"violations: {invariant}"] += 1
        if len(examples) < EXAMPLES:
            examples.append(example)

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(
    plan: dict[str, list[int]],
    messages: list[MessageRow],
    conversation_chat: dict[int, str],
    outbox: list[OutboxRow],
    handoffs: list[tuple[int, int, str]],
    dead_letters: int,
    records: list[SendRecord],
    kills: list[float],
    pg_window: tuple[float, float] | None,
    t0: float = 0.0,
) -> Reconciliation:
    """Check every invariant; ``plan`` maps a chat id to its update ids in sending order.

    ``kills`` and ``pg_window`` are wall-clock times; ``t0`` (the run's start) only makes
    the times in the examples readable."""
    result = Reconciliation()
    _stored_once(result, plan, messages, conversation_chat, dead_letters)
    replies_of = _answered_once(result, messages, handoffs)
    _delivered_once(result, outbox, records, replies_of, kills, pg_window, t0)
    return result


def _stored_once(
    result: Reconciliation,
    plan: dict[str, list[int]],
    messages: list[MessageRow],
    conversation_chat: dict[int, str],
    dead_letters: int,
) -> None:
    chat_of = {update_id: chat for chat, ids in plan.items() for update_id in ids}
    inbound = [m for m in messages if m.direction == "inbound"]
    stored = Counter(m.external_id for m in inbound)
    result.counts["updates sent"] = len(chat_of)
    result.counts["inbound messages stored"] = len(inbound)
    for external_id, count in stored.items():
        if count > 1:
            result.fail("stored more than once", f"update {external_id} stored {count} times")
        if external_id is None or not external_id.isdigit() or int(external_id) not in chat_of:
            result.fail("stored but never sent", f"message external id {external_id!r}")
    lost = sorted(set(chat_of) - {int(e) for e in stored if e and e.isdigit()})
    result.counts["updates lost"] = len(lost)
    for update_id in lost:
        result.fail("update lost", f"update {update_id} (chat {chat_of[update_id]})")
    if dead_letters:
        result.fail("dead-lettered", f"{dead_letters} inbound events dead-lettered or ignored")
    order: dict[str, list[int]] = defaultdict(list)
    for m in sorted(inbound, key=lambda m: m.id):
        if m.external_id is None or not m.external_id.isdigit():
            continue
        update_id = int(m.external_id)
        chat = conversation_chat.get(m.conversation_id)
        if update_id in chat_of and chat != chat_of[update_id]:
            result.fail(
                "stored in the wrong chat",
                f"update {update_id} of chat {chat_of[update_id]} in chat {chat}",
            )
        order[chat_of.get(update_id, str(chat))].append(update_id)
    for chat, ids in plan.items():
        wanted = set(ids)
        kept = list(dict.fromkeys(i for i in order.get(chat, []) if i in wanted))
        expected = [i for i in ids if i in set(kept)]
        if kept != expected:
            first = next(k for k, (a, b) in enumerate(zip(kept, expected, strict=True)) if a != b)
            result.fail(
                "stored out of order",
                f"chat {chat}: position {first} holds update {kept[first]}, "
                f"expected {expected[first]}",
            )


def _answered_once(
    result: Reconciliation, messages: list[MessageRow], handoffs: list[tuple[int, int, str]]
) -> dict[int, int]:
    """Walk each conversation; returns outbound bot message id -> its inbound message id.

    An inbound message is judged with the bot replies that follow it (up to the next inbound
    message) and with who owned the conversation when it arrived: the bot until a reply
    said the conversation was passed to a person.
    """
    replies_of: dict[int, int] = {}
    handoffs_of: Counter[int] = Counter(h[1] for h in handoffs)
    by_conversation: dict[int, list[MessageRow]] = defaultdict(list)
    for m in sorted(messages, key=lambda m: m.id):
        by_conversation[m.conversation_id].append(m)
    verdicts: Counter[str] = Counter()
    for conversation_id, rows in by_conversation.items():
        human = False
        turns: list[tuple[MessageRow, bool, list[MessageRow]]] = []  # (inbound, human, replies)
        for m in rows:
            if m.direction == "inbound":
                turns.append((m, human, []))
            elif m.direction == "outbound" and m.author == "bot":
                if not turns:
                    result.fail("bot message without a cause", f"message {m.id}")
                    continue
                turns[-1][2].append(m)
                replies_of[m.id] = turns[-1][0].id
                human = human or m.text.startswith(HANDOFF_PREFIX)
        for inbound, human_before, answers in turns:
            verdict = _judge(inbound, human_before, len(answers))
            if verdict in ("answered", "forwarded"):
                verdicts[verdict] += 1
                if any(a.text.startswith(HANDOFF_PREFIX) for a in answers):
                    verdicts["escalated"] += 1
            else:
                result.fail(
                    verdict,
                    f"message {inbound.id} ({inbound.text[:40]!r}): {len(answers)} bot replies",
                )
        expected = 1 if human else 0
        if handoffs_of[conversation_id] != expected:
            result.fail(
                "queued more than once" if handoffs_of[conversation_id] > 1 else "handoff mismatch",
                f"conversation {conversation_id}: {handoffs_of[conversation_id]} handoffs, "
                f"expected {expected}",
            )
    result.counts["answered by the bot"] = verdicts["answered"] - verdicts["escalated"]
    result.counts["escalated (handoff reply)"] = verdicts["escalated"]
    result.counts["queued to a person (no bot reply)"] = verdicts["forwarded"]
    result.counts["handoffs"] = len(handoffs)
    return replies_of


def _judge(inbound: MessageRow, human_before: bool, answers: int) -> str:
    if human_before:
        return "answered by the bot after the handoff" if answers else "forwarded"
    if answers == 0:
        return "inbound never answered"
    return "inbound answered more than once" if answers > 1 else "answered"


def _delivered_once(
    result: Reconciliation,
    outbox: list[OutboxRow],
    records: list[SendRecord],
    replies_of: dict[int, int],
    kills: list[float],
    pg_window: tuple[float, float] | None,
    t0: float,
) -> None:
    entries = [e for e in outbox if e.kind == "customer_message"]
    result.counts["outbox entries"] = len(entries)
    has_entry = {e.message_id for e in entries}
    for message_id in replies_of:
        if message_id not in has_entry:
            result.fail("reply never queued", f"bot message {message_id} has no outbox entry")
    for status, count in Counter(e.status for e in entries).items():
        result.counts[f"outbox {status}"] = count
        if status != "sent":
            examples = [e.id for e in entries if e.status == status][:EXAMPLES]
            result.fail(f"reply {status}", f"{count} entries, e.g. {examples}")
    accepted = [r for r in records if r.status == 200]
    result.counts["provider calls"] = len(records)
    result.counts["provider refusals (429/5xx)"] = len(records) - len(accepted)
    result.counts["provider accepted"] = len(accepted)
    by_mid = {str(r.message_id): r for r in accepted}
    entry_of_mid: dict[str, OutboxRow] = {}
    for e in entries:
        if e.status != "sent":
            continue
        record = by_mid.get(e.provider_message_id or "")
        if record is None:
            result.fail("recorded as sent, never accepted", f"entry {e.id}")
            continue
        if record.chat != e.target or record.text != e.text:
            result.fail("sent to the wrong chat or text", f"entry {e.id} vs record {record.seq}")
        if str(record.message_id) in entry_of_mid:
            result.fail("two entries recorded the same send", f"entry {e.id}, record {record.seq}")
        entry_of_mid[str(record.message_id)] = e
    per_chat: dict[str, list[SendRecord]] = defaultdict(list)
    for r in sorted(accepted, key=lambda r: r.seq):
        per_chat[r.chat].append(r)
    duplicates = 0
    for chat, sends in per_chat.items():
        last_entry = 0
        for index, r in enumerate(sends):
            entry = entry_of_mid.get(str(r.message_id))
            if entry is not None:
                if entry.id <= last_entry:
                    result.fail(
                        "replies out of order",
                        f"chat {chat}: entry {entry.id} reached the provider after {last_entry}",
                    )
                last_entry = max(last_entry, entry.id)
                continue
            # An accepted send no entry recorded: it must be repeated by the next recorded
            # send of this chat (the entry's retry), with nothing else in between.
            later = sends[index + 1 :]
            recorded = next((x for x in later if str(x.message_id) in entry_of_mid), None)
            between = later[: later.index(recorded)] if recorded is not None else later
            if recorded is None or any(x.text != r.text for x in [*between, recorded]):
                result.fail("unexpected send", f"chat {chat}: record {r.seq} {r.text[:40]!r}")
                continue
            duplicates += 1
            cause = _cause(r.at, recorded.at, kills, pg_window, result)
            result.duplicate_causes[cause] += 1
            if cause != "kill":
                kill = min(kills, key=lambda k: abs(k - r.at), default=None)
                result.fail(
                    f"duplicate send ({cause}; only a kill between acceptance and record is "
                    "tolerated)",
                    f"chat {chat}: entry {entry_of_mid[str(recorded.message_id)].id} accepted "
                    f"at {r.at - t0:.2f} s and again at {recorded.at - t0:.2f} s; nearest kill "
                    + (f"at {kill - t0:.2f} s" if kill is not None else "none"),
                )
    result.counts["duplicate sends"] = duplicates


def _cause(
    at: float,
    resent_at: float,
    kills: list[float],
    pg_window: tuple[float, float] | None,
    result: Reconciliation,
) -> str:
    """Why an accepted send was not recorded: a kill right after it (and before the resend),
    the PostgreSQL restart, or nothing we did (a bug)."""
    gaps = [k - at for k in kills if 0 <= k - at <= KILL_WINDOW and k < resent_at]
    if gaps:
        result.max_kill_gap = max(result.max_kill_gap, min(gaps))
        return "kill"
    if pg_window is not None and pg_window[0] - 1 <= at <= pg_window[1] + KILL_WINDOW:
        return "postgres restart"
    return "unexplained"


def summary_rows(result: Reconciliation) -> list[tuple[str, Any]]:
    """The counts in a stable, readable order."""
    return sorted(result.counts.items(), key=lambda kv: (kv[0].startswith("violations"), kv[0]))
