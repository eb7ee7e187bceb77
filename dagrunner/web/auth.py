"""Who is calling: a bearer token (scripts) or a session cookie (the browser), and the CSRF check on writes.

A browser signs in with POST /api/v1/auth/login and gets a random session id in the `dagrunner_session`
cookie (HttpOnly: page scripts cannot read it; SameSite=Strict: other sites' pages cannot make the browser
send it) and a CSRF token in the response body, which the page keeps in memory and sends back as
X-CSRF-Token on every write. Both are checked on every request; neither lookup writes to the database.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from fastapi import HTTPException, Request, Response

from dagrunner.web.deps import CSRF_HEADER, SESSION_COOKIE, Principal, WebState


def authenticate(request: Request, state: WebState) -> Principal | None:
    """The caller, or None when the request proves no identity (or a wrong one: an unknown token, an
    unknown or expired session). A bearer header wins over a cookie: a script that sends one means it."""
    from dagrunner.persistence.users import session_for_id, user_for_token

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        with state.read() as session:
            user = user_for_token(session, token.strip())
        return Principal(user.username, user.role, "token") if user else None
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        with state.read() as session:
            found = session_for_id(session, session_id, now=state.now())
        if found is not None:
            return Principal(found.user.username, found.user.role, "session", found.csrf_token)
    return None


def check_csrf(request: Request, principal: Principal) -> None:
    """A browser session's write must echo the session's CSRF token in the X-CSRF-Token header.

    A cross-site form or fetch can make the browser send our cookie but cannot read the token to send back.
    """
    if principal.via != "session":
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not principal.csrf_token or not hmac.compare_digest(sent.encode(), principal.csrf_token.encode()):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header: reload the page and try again")


def session_lifetime(state: WebState) -> timedelta:
    return timedelta(hours=state.settings.api_session_hours)


def set_session_cookie(response: Response, session_id: str, state: WebState) -> None:
    """The cookie that carries a browser's session: HttpOnly, SameSite=Strict, Path=/, Secure when the
    `api_cookie_secure` setting says the server is reached over HTTPS; it ends with the session."""
    response.set_cookie(
        SESSION_COOKIE, session_id, max_age=int(session_lifetime(state).total_seconds()), path="/",
        secure=state.settings.api_cookie_secure, httponly=True, samesite="strict",
    )  # fmt: skip


def clear_session_cookie(response: Response, state: WebState) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=state.settings.api_cookie_secure, httponly=True, samesite="strict"
    )
