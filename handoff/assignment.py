"""Automatic assignment: who a handoff goes to, and giving it back when they went away.

Owner first: a strategic handoff (``strategic_intent``) of an account goes to the account's
CSM when ``assignment.strategic_to_csm`` is set, then an account's support owner gets its
handoffs; each only while online (``handoff/availability.py``) and under their capacity.
Otherwise the online agent (or admin) with the fewest open handoffs under their capacity
gets it. Waiting handoffs are handed out most urgent first, then oldest. Nobody online: the
handoff waits for a claim, as before. Manual claims and transfers are not limited by
capacity (a person chose); only automatic assignment is.

Why it went to whom is kept on the handoff (``assignment_reason``: "owner of Acme",
"account CSM of Acme (strategic)", "fewest open (2 of 5)") and in its ``assign`` event.

Race-free: capacity is a count over many rows, so every automatic assignment decision runs
under one transaction-scoped lock — ``pg_advisory_xact_lock`` on PostgreSQL, the database
write lock (taken by a first write, plus this process's ``write_lock``) on SQLite — and each
change is still a guarded transition on (status, version), so a handoff a person claimed in
the meantime is skipped, never assigned twice. Waiting handoffs are read with ``FOR UPDATE
SKIP LOCKED`` so a concurrent "take next" is not blocked.

The sweep (:func:`sweep`, every instance runs it) returns the handoffs of anyone away for
``away_return_minutes`` to the queue (a ``requeue`` event with the reason) and hands waiting
ones to whoever is online; each change is a guarded transition, so however many instances
sweep at once, each happens once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, text, update
from sqlmodel import Session, col, select

from handoff import access, availability, collision, queue
from handoff.access import Principal
from handoff.db import write_lock
from handoff.errors import Conflict, InvalidInput, NotFound
from handoff.escalation import AssignmentPolicy
from handoff.models import (
    Account,
    AgentPresence,
    Handoff,
    HandoffStatus,
    Role,
    User,
    utcnow,
)

logger = logging.getLogger(__name__)

LOCK_KEY = 0x7472_6961  # "tria": the advisory lock every assignment decision takes
POOL_ROLES = frozenset({Role.agent.value, Role.admin.value})
OWNER_ROLES = POOL_ROLES
MAX_CAPACITY = 100
BATCH = 200


@dataclass(frozen=True)
class Choice:
    user: User
    reason: str


def _serialize(session: Session) -> None:
    """Take the assignment lock until the end of this transaction (see the module doc)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    else:  # a write takes SQLite's one write lock; the reads that follow see the latest data
        session.execute(
            update(AgentPresence).where(col(AgentPresence.user_id) == -1).values(status="away")
        )


def _loads(session: Session, user_ids: list[int]) -> dict[int, int]:
    rows = session.exec(
        select(Handoff.assignee_id, func.count())
        .where(Handoff.status == HandoffStatus.assigned.value)
        .where(col(Handoff.assignee_id).in_(user_ids))
        .group_by(col(Handoff.assignee_id))
    ).all()
    counts = {i: 0 for i in user_ids}
    counts.update({int(i): int(n) for i, n in rows if i is not None})
    return counts


def choose(
    handoff: Handoff,
    account: Account | None,
    online: dict[int, User],
    loads: dict[int, int],
    policy: AssignmentPolicy,
) -> Choice | None:
    """Who gets ``handoff`` among the ``online`` people with their open ``loads``; pure."""

    def free(user_id: int | None) -> User | None:
        user = online.get(user_id or 0)
        return user if user is not None and loads.get(user.id or 0, 0) < user.capacity else None

    if account is not None:
        strategic = "strategic_intent" in (handoff.reasons or [])
        csm = free(account.csm_id) if policy.strategic_to_csm and strategic else None
        if csm is not None:
            return Choice(csm, f"account CSM of {account.name} (strategic)")
        owner = free(account.support_owner_id)
        if owner is not None and (owner.role in OWNER_ROLES or owner.id == account.csm_id):
            return Choice(owner, f"owner of {account.name}")
    pool = [u for u in online.values() if u.role in POOL_ROLES and free(u.id) is not None]
    if not pool:
        return None
    best = min(pool, key=lambda u: (loads.get(u.id or 0, 0), u.id or 0))
    return Choice(best, f"fewest open ({loads.get(best.id or 0, 0)} of {best.capacity})")


def _assign(
    session: Session,
    handoff: Handoff,
    online: dict[int, User],
    loads: dict[int, int],
    policy: AssignmentPolicy,
) -> Choice | None:
    account = session.get(Account, handoff.account_id) if handoff.account_id else None
    choice = choose(handoff, account, online, loads, policy)
    if choice is None:
        return None
    try:
        queue.transition(
            session,
            handoff,
            "assign",
            queue.SYSTEM,
            assignee_id=choice.user.id,
            reason=choice.reason,
            assignment_reason=choice.reason,
        )
    except Conflict:  # a person claimed it meanwhile; the failed update wrote nothing
        return None
    loads[choice.user.id or 0] = loads.get(choice.user.id or 0, 0) + 1
    logger.info("handoff %s assigned to %s: %s", handoff.id, choice.user.id, choice.reason)
    return choice


def assign_new(session: Session, handoff: Handoff, policy: AssignmentPolicy) -> Choice | None:
    """Assign a just-opened (or reopened) waiting handoff, in the caller's transaction.

    Nobody online (or assignment disabled): None, and the handoff waits as before.
    """
    if not policy.enabled or handoff.status != HandoffStatus.waiting.value:
        return None
    if not availability.online_users(session):
        return None
    _serialize(session)
    online = availability.online_users(session)
    return _assign(session, handoff, online, _loads(session, list(online)), policy)


def assign_waiting(engine: Engine, policy: AssignmentPolicy, *, limit: int = BATCH) -> int:
    """Hand waiting handoffs to online people with room, most urgent then oldest first;
    its own transaction. Returns how many were assigned."""
    if not policy.enabled:
        return 0
    with write_lock(engine), Session(engine, expire_on_commit=False) as session:
        if not availability.online_users(session):
            return 0
        _serialize(session)
        online = availability.online_users(session)
        loads = _loads(session, list(online))
        stmt = (
            select(Handoff)
            .where(Handoff.status == HandoffStatus.waiting.value)
            .order_by(col(Handoff.priority), col(Handoff.waiting_since), col(Handoff.id))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        assigned = 0
        for handoff in session.exec(stmt).all():
            if not any(loads.get(i, 0) < u.capacity for i, u in online.items()):
                break
            if _assign(session, handoff, online, loads, policy) is not None:
                assigned += 1
        session.commit()
    return assigned


def requeue_away(engine: Engine, policy: AssignmentPolicy, now: datetime | None = None) -> int:
    """Return the handoffs of anyone away for ``away_return_minutes`` to the queue."""
    if not policy.enabled:
        return 0
    now = now or utcnow()
    limit = timedelta(minutes=policy.away_return_minutes)
    returned = 0
    with write_lock(engine), Session(engine, expire_on_commit=False) as session:
        gone = {u: t for u, t in availability.away_since(session, now).items() if t <= now - limit}
        if not gone:
            return 0
        names = {u.id: u.name for u in session.exec(select(User).where(col(User.id).in_(gone)))}
        stmt = (
            select(Handoff)
            .where(Handoff.status == HandoffStatus.assigned.value)
            .where(col(Handoff.assignee_id).in_(list(gone)))
            .order_by(col(Handoff.id))
        )
        for handoff in session.exec(stmt).all():
            who = names.get(handoff.assignee_id, "the assignee")
            try:
                queue.transition(
                    session,
                    handoff,
                    "requeue",
                    queue.SYSTEM,
                    reason=f"{who} away for {policy.away_return_minutes}+ min",
                )
            except Conflict:  # someone acted on it meanwhile
                continue
            returned += 1
        session.commit()
    if returned:
        logger.info("%s handoff(s) of people who went away returned to the queue", returned)
    return returned


def sweep(engine: Engine, policy: AssignmentPolicy) -> tuple[int, int]:
    """One round of the periodic sweep: (returned to the queue, assigned)."""
    returned = requeue_away(engine, policy)
    assigned = assign_waiting(engine, policy)
    with write_lock(engine), Session(engine) as session:
        collision.prune(session)
        session.commit()
    return returned, assigned


def change_availability(
    engine: Engine,
    principal: Principal,
    status: str,
    policy: AssignmentPolicy,
    *,
    session_id: str | None = None,
    minutes: int | None = None,
) -> availability.State:
    """Go online (and receive waiting handoffs up to capacity) or away."""
    access.require_staff(principal)
    with write_lock(engine), Session(engine, expire_on_commit=False) as session:
        _serialize(session)
        state = availability.set_availability(
            session, principal.user_id, status, session_id=session_id, minutes=minutes
        )
        session.commit()
    if state.status == "online":
        assign_waiting(engine, policy)
    return state


# ------------------------------------------------------------------------- settings
def set_capacity(session: Session, principal: Principal, user_id: int, capacity: int) -> User:
    """How many open handoffs ``user_id`` gets automatically (admins only; 1 to 100)."""
    access.require_admin(principal, "change capacities")
    if isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInput(f"capacity must be between 1 and {MAX_CAPACITY}")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    user.capacity = capacity
    session.add(user)
    session.flush()
    return user


def set_support_owner(
    session: Session, principal: Principal, account_ref: int | str, user_id: int | None
) -> Account:
    """Name the person an account's conversations go to first (None: nobody; admins only).
    ``account_ref``: the account's id, or its external (CRM) id as a string.

    The owner is an active agent or admin, or the account's own CSM."""
    access.require_admin(principal, "change accounts")
    if isinstance(account_ref, str):
        account = session.exec(select(Account).where(Account.external_id == account_ref)).first()
    else:
        account = session.get(Account, account_ref)
    if account is None:
        raise NotFound(f"account {account_ref} not found")
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise InvalidInput(f"support_owner_id: no active user {user_id}")
        if user.role not in OWNER_ROLES and user.id != account.csm_id:
            raise InvalidInput(
                f"support_owner_id: {user.name} is a {user.role}; the owner is an agent, "
                "an admin or the account's CSM"
            )
    account.support_owner_id = user_id
    session.add(account)
    session.flush()
    return account
