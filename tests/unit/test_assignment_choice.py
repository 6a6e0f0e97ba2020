"""Issue 16: who a new handoff goes to (``handoff.assignment.choose``, pure)."""

from __future__ import annotations

from handoff.assignment import choose
from handoff.escalation import AssignmentPolicy
from handoff.models import Account, Handoff, User

AGENT = User(id=1, email="a@t.test", name="Alan", role="agent", capacity=2)
OWNER = User(id=2, email="o@t.test", name="Olga", role="agent", capacity=2)
CSM = User(id=3, email="c@t.test", name="Cora", role="csm", capacity=2)
ACME = Account(id=9, external_id="A", name="Acme", csm_id=3, support_owner_id=2)


def _handoff(*reasons: str) -> Handoff:
    return Handoff(conversation_id=1, reasons=list(reasons))


def _online(*people: User) -> dict[int, User]:
    return {p.id or 0: p for p in people}


def test_strategic_goes_to_the_online_csm_when_configured() -> None:
    policy = AssignmentPolicy(strategic_to_csm=True)
    choice = choose(_handoff("strategic_intent"), ACME, _online(AGENT, OWNER, CSM), {}, policy)
    assert choice is not None and choice.user is CSM
    assert choice.reason == "account CSM of Acme (strategic)"


def test_strategic_goes_to_the_owner_when_csm_routing_is_off() -> None:
    choice = choose(
        _handoff("strategic_intent"), ACME, _online(AGENT, OWNER, CSM), {}, AssignmentPolicy()
    )
    assert choice is not None and choice.user is OWNER and choice.reason == "owner of Acme"


def test_an_owner_at_capacity_passes_to_the_agent_with_fewest_open() -> None:
    loads = {1: 1, 2: 2}
    choice = choose(_handoff(), ACME, _online(AGENT, OWNER), loads, AssignmentPolicy())
    assert choice is not None and choice.user is AGENT
    assert choice.reason == "fewest open (1 of 2)"


def test_nobody_with_room_means_it_waits() -> None:
    loads = {1: 2, 2: 2}
    assert choose(_handoff(), ACME, _online(AGENT, OWNER), loads, AssignmentPolicy()) is None


def test_a_csm_is_never_in_the_general_pool() -> None:
    assert choose(_handoff(), None, _online(CSM), {}, AssignmentPolicy()) is None
