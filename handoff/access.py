"""Authorization in one place: who may see which accounts, and who may do what.

Every route and service asks here instead of comparing roles itself:

* admins and agents see every account and work every handoff;
* a CSM sees only the accounts they own, their handoffs and contacts — anything else is
  reported as not found by the callers (ids and emails are not an oracle);
* only admins change users, accounts, contacts, signals, the FAQ and the policy.

The rules take a :class:`Principal` (who is acting) and never import the web layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from handoff import queue
from handoff.errors import PermissionDenied
from handoff.models import Account, Contact, Handoff, Role, User

STAFF_ROLES = frozenset({Role.admin.value, Role.agent.value, Role.csm.value})
EVERY_ACCOUNT_ROLES = frozenset({Role.admin.value, Role.agent.value})


@dataclass(frozen=True)
class Principal:
    """The person acting, as far as authorization is concerned."""

    user_id: int
    role: str
    name: str = ""

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user_id=user.id or 0, role=user.role, name=user.name)

    @property
    def actor(self) -> queue.Actor:
        return queue.Actor(self.role, self.user_id)


def is_admin(principal: Principal) -> bool:
    return principal.role == Role.admin.value


def is_staff(principal: Principal) -> bool:
    return principal.role in STAFF_ROLES


def sees_every_account(principal: Principal) -> bool:
    """Admins and agents; a CSM sees only their own accounts."""
    return principal.role in EVERY_ACCOUNT_ROLES


def require_admin(principal: Principal, what: str) -> None:
    """PermissionDenied unless an admin is acting (``what``: "change accounts", ...)."""
    if not is_admin(principal):
        raise PermissionDenied(f"only admins may {what}")


def require_staff(principal: Principal) -> None:
    """PermissionDenied unless an agent, a CSM or an admin is acting."""
    if not is_staff(principal):
        raise PermissionDenied("only agents, CSMs and admins work the queue")


def owned_accounts(principal: Principal) -> Any:
    """A select of the ids of the accounts a CSM owns (for ``IN`` clauses)."""
    return select(Account.id).where(Account.csm_id == principal.user_id)


def visible_handoffs(stmt: Any, principal: Principal) -> Any:
    """``stmt`` (a select over handoffs) narrowed to what ``principal`` may see."""
    if sees_every_account(principal):
        return stmt
    if principal.role == Role.csm.value:
        return stmt.where(col(Handoff.account_id).in_(owned_accounts(principal)))
    return stmt.where(col(Handoff.id) == -1)  # unknown role sees nothing


def visible_accounts(stmt: Any, principal: Principal) -> Any:
    """``stmt`` (a select over accounts) narrowed to what ``principal`` may see."""
    if sees_every_account(principal):
        return stmt
    if principal.role == Role.csm.value:
        return stmt.where(Account.csm_id == principal.user_id)
    return stmt.where(col(Account.id) == -1)


def visible_contacts(stmt: Any, principal: Principal) -> Any:
    """``stmt`` (a select over contacts) narrowed to the contacts ``principal`` may link a
    chat to: every contact for admins and agents, a CSM's accounts' contacts for a CSM."""
    if sees_every_account(principal):
        return stmt
    if principal.role == Role.csm.value:
        return stmt.where(col(Contact.account_id).in_(owned_accounts(principal)))
    return stmt.where(col(Contact.id) == -1)


def account_ids(session: Session, principal: Principal) -> set[int] | None:
    """None when ``principal`` sees every account; else the ids of the CSM's accounts."""
    if sees_every_account(principal):
        return None
    if principal.role == Role.csm.value:
        return {i for i in session.exec(owned_accounts(principal)).all() if i is not None}
    raise PermissionDenied("only staff see accounts")


def may_see_account(principal: Principal, account: Account | None) -> bool:
    if sees_every_account(principal):
        return True
    return (
        account is not None
        and principal.role == Role.csm.value
        and account.csm_id == principal.user_id
    )


def may_link_to(session: Session, principal: Principal, contact: Contact) -> bool:
    """Whether ``principal`` may link a chat to ``contact`` (a CSM: only their accounts')."""
    if sees_every_account(principal):
        return True
    account = session.get(Account, contact.account_id) if contact.account_id else None
    return may_see_account(principal, account)


def may_override_assignee(principal: Principal, handoff: Handoff) -> bool:
    """Whether ``principal`` may act on a handoff someone else is assigned (admins may)."""
    return handoff.assignee_id == principal.user_id or is_admin(principal)


def may_edit_canned_reply(principal: Principal, owner_user_id: int | None) -> bool:
    """Shared canned replies (no owner): admins; personal ones: their owner only."""
    if owner_user_id is None:
        return is_admin(principal)
    return owner_user_id == principal.user_id
