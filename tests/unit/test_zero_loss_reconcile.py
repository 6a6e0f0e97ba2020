"""The zero-loss load test's checker catches what it claims to catch (benchmarks.reconcile)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmarks.reconcile import MessageRow, OutboxRow, SendRecord, reconcile

CHAT = "700"


def _scenario() -> dict[str, Any]:
    """Chat 700 sends updates 1 and 2; each is answered once, in order."""
    return {
        "plan": {CHAT: [1, 2]},
        "messages": [
            MessageRow(1, 9, "1", "inbound", "customer", "reset password?"),
            MessageRow(2, 9, None, "outbound", "bot", "A"),
            MessageRow(3, 9, "2", "inbound", "customer", "invoices?"),
            MessageRow(4, 9, None, "outbound", "bot", "B"),
        ],
        "conversation_chat": {9: CHAT},
        "outbox": [
            OutboxRow(1, "customer_message", CHAT, "sent", "A", 2, "10"),
            OutboxRow(2, "customer_message", CHAT, "sent", "B", 4, "11"),
        ],
        "handoffs": [],
        "dead_letters": 0,
        "records": [
            SendRecord(0, 100.0, CHAT, "A", 200, 10),
            SendRecord(1, 100.5, CHAT, "B", 429, None),
            SendRecord(2, 101.0, CHAT, "B", 200, 11),
        ],
        "kills": [],
        "pg_window": None,
    }


def _renumber(records: list[SendRecord]) -> list[SendRecord]:
    return [replace(r, seq=i) for i, r in enumerate(records)]


def test_a_clean_run_passes_with_its_counts() -> None:
    result = reconcile(**_scenario())
    assert result.ok, result.problems
    assert result.counts["updates lost"] == 0
    assert result.counts["answered by the bot"] == 2
    assert result.counts["duplicate sends"] == 0
    assert result.counts["provider refusals (429/5xx)"] == 1


def test_a_lost_update_fails() -> None:
    s = _scenario()
    s["messages"] = s["messages"][:2]
    s["outbox"] = s["outbox"][:1]
    s["records"] = s["records"][:1]
    result = reconcile(**s)
    assert "update lost" in result.problems


def test_an_unanswered_message_fails() -> None:
    s = _scenario()
    s["messages"] = s["messages"][:3]
    s["outbox"] = s["outbox"][:1]
    s["records"] = s["records"][:1]
    assert "inbound never answered" in reconcile(**s).problems


def test_a_message_answered_twice_fails() -> None:
    s = _scenario()
    s["messages"].insert(2, MessageRow(5, 9, None, "outbound", "bot", "A again"))
    assert "inbound answered more than once" in reconcile(**s).problems


def test_messages_stored_out_of_order_fail() -> None:
    s = _scenario()
    s["messages"][0] = replace(s["messages"][0], external_id="2")
    s["messages"][2] = replace(s["messages"][2], external_id="1")
    assert "stored out of order" in reconcile(**s).problems


def test_replies_reaching_the_provider_out_of_order_fail() -> None:
    s = _scenario()
    s["records"] = [
        SendRecord(0, 100.0, CHAT, "B", 200, 11),
        SendRecord(1, 101.0, CHAT, "A", 200, 10),
    ]
    assert "replies out of order" in reconcile(**s).problems


def test_a_reply_never_delivered_fails() -> None:
    s = _scenario()
    s["outbox"][1] = replace(s["outbox"][1], status="pending", provider_message_id=None)
    s["records"] = s["records"][:2]
    assert "reply pending" in reconcile(**s).problems


def test_a_reply_recorded_but_never_accepted_fails() -> None:
    s = _scenario()
    s["records"] = s["records"][:2]
    assert "recorded as sent, never accepted" in reconcile(**s).problems


def test_a_duplicate_send_right_before_a_kill_is_tolerated_and_counted() -> None:
    s = _scenario()
    s["records"].insert(1, SendRecord(0, 100.2, CHAT, "B", 200, 99))  # accepted, not recorded
    s["records"] = _renumber(s["records"])
    s["kills"] = [100.3]
    result = reconcile(**s)
    assert result.ok, result.problems
    assert result.counts["duplicate sends"] == 1
    assert result.duplicate_causes == {"kill": 1}


def test_a_duplicate_send_without_a_kill_fails() -> None:
    s = _scenario()
    s["records"] = _renumber(
        [*s["records"][:1], SendRecord(0, 100.2, CHAT, "B", 200, 99), *s["records"][1:]]
    )
    s["kills"] = [130.0]  # too late to explain it
    result = reconcile(**s)
    assert any(name.startswith("duplicate send (unexplained") for name in result.problems)


def test_a_send_nobody_queued_fails() -> None:
    s = _scenario()
    s["records"].append(SendRecord(7, 102.0, CHAT, "spam", 200, 98))
    assert "unexpected send" in reconcile(**s).problems


def test_forwarded_messages_after_a_handoff_count_as_queued() -> None:
    s = _scenario()
    s["messages"][1] = replace(
        s["messages"][1], text="Thanks, I've passed this to our support team. A person..."
    )
    s["messages"] = s["messages"][:3]  # the second message gets no bot reply: a person owns it
    s["outbox"] = [replace(s["outbox"][0], text=s["messages"][1].text)]
    s["records"] = [replace(s["records"][0], text=s["messages"][1].text)]
    s["handoffs"] = [(1, 9, "waiting")]
    result = reconcile(**s)
    assert result.ok, result.problems
    assert result.counts["queued to a person (no bot reply)"] == 1
    s["handoffs"] = [(1, 9, "waiting"), (2, 9, "waiting")]
    assert "queued more than once" in reconcile(**s).problems
