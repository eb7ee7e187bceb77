"""Who is calling: a bearer token (scripts) or a session cookie (the browser), and the CSRF check on writes."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

from dagrunner.web.deps import CSRF_HEADER, Principal, WebState


def authenticate(request: Request, state: WebState) -> Principal | None:
    """The caller, or None when the request proves no identity (or a wrong one)."""
    from dagrunner.persistence.users import user_for_token

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        with state.read() as session:
            user = user_for_token(session, token.strip())
        return Principal(user.username, user.role, "token") if user else None
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
