"""Users of the api-server, their API tokens and browser sessions (#14).

Passwords are hashed with Argon2id (argon2-cffi, the `web` extra); tokens and session ids are random and
stored only as their SHA-256, so a copy of the database lets no one log in. Creating and deleting a user or
a token is audited (`user.created`, `user.deleted`, `token.created`, `token.deleted`); logins are not state
changes and are not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dagrunner.errors import WEB_EXTRA_HINT, InvalidArgumentError, NotFoundError, WebExtraMissingError
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.models import ApiToken, WebSession, WebUser
from dagrunner.roles import Role

TOKEN_PREFIX = "drt_"
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class UserView:
    id: int
    username: str
    role: Role
    created_at: datetime
    last_login: datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "username": self.username,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "last_login": self.last_login.isoformat() if self.last_login else None,
        }


def _hasher():  # type: ignore[no-untyped-def]
    try:
        from argon2 import PasswordHasher
    except ImportError as exc:  # pragma: no cover - the web extra is missing
        raise WebExtraMissingError(f"password hashing needs argon2-cffi: {WEB_EXTRA_HINT}") from exc
    return PasswordHasher()


def digest(secret: str) -> str:
    """The SHA-256 hex digest under which a token or session id is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _view(user: WebUser) -> UserView:
    return UserView(user.id, user.username, Role(user.role), user.created_at, user.last_login)


def create_user(
    session: Session, username: str, role: Role | str, password: str, *, actor: str, when: datetime
) -> UserView:
    """Add a user; refuses an existing name, an unknown role or a password shorter than 8 characters."""
    try:
        role = Role(role)
    except ValueError as exc:
        raise InvalidArgumentError(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}") from exc
    if not username or username != username.strip() or len(username) > 250 or not username.isprintable():
        raise InvalidArgumentError(
            f"username {username!r}: 1 to 250 printable characters, no leading or trailing spaces"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgumentError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(WebUser.id).where(WebUser.username == username)) is not None:
        raise InvalidArgumentError(f"user {username!r} exists; `dagrunner users delete {username}` first to replace it")
    user = WebUser(username=username, password_hash=_hasher().hash(password), role=role.value, created_at=when)
    session.add(user)
    session.flush()
    record_event(session, "user.created", actor=actor, when=when, detail={"username": username, "role": role.value})
    return _view(user)


def has_users(session: Session) -> bool:
    """Whether anyone may sign in yet (`standalone` creates the first admin when not)."""
    return session.scalar(select(WebUser.id).limit(1)) is not None


def list_users(session: Session) -> list[UserView]:
    return [_view(u) for u in session.scalars(select(WebUser).order_by(WebUser.username))]


def get_user(session: Session, username: str) -> UserView:
    user = session.scalar(select(WebUser).where(WebUser.username == username))
    if user is None:
        raise NotFoundError(f"no user {username!r}; `dagrunner users list` shows them")
    return _view(user)


def delete_user(session: Session, username: str, *, actor: str, when: datetime) -> None:
    """Remove a user with their tokens and sessions (ON DELETE CASCADE, and explicitly for SQLite)."""
    user = get_user(session, username)
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.execute(delete(WebUser).where(WebUser.id == user.id))
    record_event(session, "user.deleted", actor=actor, when=when, detail={"username": username})


def verify_password(session: Session, username: str, password: str, *, when: datetime) -> UserView | None:
    """The user if the password is theirs (and their last login is updated), else None.

    An unknown user costs the same hash as a wrong password, so timing does not tell which names exist.
    """
    hasher = _hasher()  # first: without argon2-cffi, the error that says what to install
    from argon2.exceptions import VerificationError

    user = session.scalar(select(WebUser).where(WebUser.username == username))
    try:
        if user is None:
            hasher.verify(_DUMMY_HASH(), password)
            return None
        hasher.verify(user.password_hash, password)
    except VerificationError:
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    user.last_login = when
    return _view(user)


_dummy: list[str] = []


def _DUMMY_HASH() -> str:  # noqa: N802 - a constant computed once, on first use
    if not _dummy:
        _dummy.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _dummy[0]


def create_token(session: Session, username: str, name: str, *, actor: str, when: datetime) -> str:
    """A new bearer token for `username`; returned once, stored only as its digest."""
    if not name or len(name) > 250 or not name.isprintable():
        raise InvalidArgumentError(f"token name {name[:40]!r}: 1 to 250 characters, saying what the token is for")
    user = get_user(session, username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=digest(token), created_at=when))
    session.flush()
    record_event(session, "token.created", actor=actor, when=when, detail={"username": username, "name": name})
    return token


def user_for_token(session: Session, token: str) -> UserView | None:
    """The owner of a bearer token, or None for an unknown one. A read: it works in a read-only session,
    so an API call by token never takes SQLite's write lock."""
    row = session.execute(
        select(ApiToken.id, WebUser)
        .join(WebUser, WebUser.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest(token))
    ).first()
    if row is None:
        return None
    return _view(row[1])


# --- browser sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionView:
    """A signed-in browser: its user and the CSRF token its writes must send back."""

    user: UserView
    csrf_token: str
    expires_at: datetime


def create_session(session: Session, username: str, *, when: datetime, lifetime: timedelta) -> tuple[str, SessionView]:
    """A new browser session for `username`: (the id for the cookie, the session). Only the id's digest is
    stored, so the database alone cannot be used to sign in. Expired sessions are pruned here, on the
    write that a login is anyway, rather than on reads."""
    user = session.scalar(select(WebUser).where(WebUser.username == username))
    if user is None:
        raise NotFoundError(f"no user {username!r}; `dagrunner users list` shows them")
    prune_sessions(session, now=when)
    session_id = secrets.token_urlsafe(32)
    row = WebSession(
        id_hash=digest(session_id), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
        created_at=when, expires_at=when + lifetime,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return session_id, SessionView(_view(user), row.csrf_token, row.expires_at)


def session_for_id(session: Session, session_id: str, *, now: datetime) -> SessionView | None:
    """The live session a cookie names, or None (unknown, expired, or its user deleted). A read: a request
    signed in by cookie takes no write lock."""
    row = session.execute(
        select(WebSession, WebUser)
        .join(WebUser, WebUser.id == WebSession.user_id)
        .where(WebSession.id_hash == digest(session_id), WebSession.expires_at > now)
    ).first()
    if row is None:
        return None
    web_session, user = row
    return SessionView(_view(user), web_session.csrf_token, web_session.expires_at)


def delete_session(session: Session, session_id: str) -> bool:
    """End the session a cookie names (logout); False when there was none."""
    result = session.execute(delete(WebSession).where(WebSession.id_hash == digest(session_id)))
    return bool(getattr(result, "rowcount", 0))


def prune_sessions(session: Session, *, now: datetime) -> int:
    """Delete the sessions that have expired; returns how many."""
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
