"""Staff users: API tokens (stored hashed) and passwords (argon2 via pwdlib)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from pwdlib import PasswordHash
from sqlmodel import Session, col, func, select

from handoff.errors import InvalidInput, NotFound
from handoff.models import Role, StaffSession, User, utcnow

TOKEN_PREFIX = "tb_"  # noqa: S105 - a public prefix, not a secret
_passwords = PasswordHash.recommended()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_api_token(session: Session, user: User) -> str:
    """A new API token for ``user`` (replacing any previous one). Shown once, stored hashed."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.api_token_hash = _digest(token)
    session.add(user)
    session.flush()
    return token


def user_for_token(session: Session, token: str | None) -> User | None:
    """The active user holding ``token``, or None. Lookup by hash; compare in constant time."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _digest(token)
    user = session.exec(select(User).where(User.api_token_hash == digest)).first()
    if user is None or not user.is_active or user.api_token_hash is None:
        return None
    return user if hmac.compare_digest(user.api_token_hash, digest) else None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidInput("passwords need at least 8 characters")
    return _passwords.hash(password)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash or not user.is_active:
        _passwords.hash("timing-equaliser")  # same cost whether or not the user exists
        return False
    return bool(_passwords.verify(password, user.password_hash))


def by_email(session: Session, email: str) -> User:
    user = session.exec(select(User).where(func.lower(User.email) == email.lower())).first()
    if user is None:
        raise NotFound(f"no user with email {email}")
    return user


def create_user(
    session: Session, email: str, name: str, role: str, password: str | None = None
) -> User:
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}")
    existing = session.exec(select(User).where(func.lower(User.email) == email.lower())).first()
    if existing is not None:
        raise InvalidInput(f"a user with email {email} exists")
    user = User(
        email=email.lower(),
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    """Every staff user, active ones first, then by name."""
    found = session.exec(select(User)).all()
    return sorted(found, key=lambda u: (not u.is_active, u.name.lower(), u.email))


def _other_active_admins(session: Session, user: User) -> int:
    stmt = select(func.count()).select_from(User).where(User.role == Role.admin.value)
    stmt = stmt.where(User.is_active == True).where(User.id != user.id)  # noqa: E712
    return int(session.exec(stmt).one())


def set_role(session: Session, user_id: int, role: str) -> User:
    """Change a user's role; the last active admin cannot stop being one."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    demoted = user.role == Role.admin.value and role != Role.admin.value
    if demoted and user.is_active and _other_active_admins(session, user) == 0:
        raise InvalidInput("the last active admin must stay an admin")
    user.role = role
    session.add(user)
    session.flush()
    return user


def set_active(session: Session, user_id: int, active: bool) -> User:
    """Deactivate (no login, no API token) or reactivate a user; never the last admin."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if not active and user.role == Role.admin.value and _other_active_admins(session, user) == 0:
        raise InvalidInput("the last active admin cannot be deactivated")
    user.is_active = active
    if not active:  # reactivating later must not bring back the sessions open today
        revoke_sessions(session, user)
    session.add(user)
    session.flush()
    return user


def open_session(session: Session, user: User, lifetime: timedelta) -> str:
    """Record a new console session of ``user``; its id goes into the signed cookie."""
    now = utcnow()
    # forget sessions that ended a day ago or more (they can no longer be presented)
    stale = select(StaffSession).where(col(StaffSession.expires_at) < now - timedelta(days=1))
    for old in session.exec(stale).all():
        session.delete(old)
    session_id = secrets.token_urlsafe(32)
    session.add(
        StaffSession(id=session_id, user_id=user.id or 0, created_at=now, expires_at=now + lifetime)
    )
    session.flush()
    return session_id


def session_active(session: Session, user: User, session_id: str | None) -> bool:
    """Whether the console session ``session_id`` of ``user`` is open (not revoked, not over)."""
    if not session_id:
        return False
    found = session.get(StaffSession, session_id)
    return (
        found is not None
        and found.user_id == user.id
        and found.revoked_at is None
        and found.expires_at > utcnow()
    )


def revoke_sessions(session: Session, user: User) -> None:
    """End every open console session of ``user`` (logout everywhere, deactivation), by id:
    copies of their cookies die with them, and a login right after opens a new one."""
    now = utcnow()
    user.sessions_valid_from = now
    session.add(user)
    open_ones = (
        select(StaffSession)
        .where(StaffSession.user_id == user.id)
        .where(col(StaffSession.revoked_at).is_(None))
    )
    for found in session.exec(open_ones).all():
        found.revoked_at = now
        session.add(found)
    session.flush()
