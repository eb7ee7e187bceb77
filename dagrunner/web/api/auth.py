"""/api/v1 endpoints: signing in and out, the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from dagrunner.web.auth import clear_session_cookie, session_lifetime, set_session_cookie
from dagrunner.web.deps import SESSION_COOKIE, Viewer, Web

router = APIRouter(tags=["auth"])

#: The one answer to a failed login, whether the name or the password was wrong: it tells no one which
#: user names exist.
BAD_CREDENTIALS = "wrong username or password"


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=250, pattern=r"^[^\x00]+$")
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    role: str
    csrf_token: str | None = Field(description="Send it as X-CSRF-Token on every write (browser sessions).")


@router.post("/auth/login", response_model=Me, responses={401: {"description": BAD_CREDENTIALS}})
def login(body: Login, request: Request, response: Response, state: Web) -> dict[str, Any]:
    """Sign in a browser: sets the `dagrunner_session` cookie and returns the CSRF token its writes send."""
    from dagrunner.persistence.users import create_session, delete_session, verify_password

    now = state.now()
    with state.write() as session:
        user = verify_password(session, body.username, body.password, when=now)
        if user is None:
            raise HTTPException(401, BAD_CREDENTIALS)
        if old := request.cookies.get(SESSION_COOKIE):
            delete_session(session, old)  # one browser, one session: the previous login ends here
        session_id, web_session = create_session(session, user.username, when=now, lifetime=session_lifetime(state))
    set_session_cookie(response, session_id, state)
    return {"username": user.username, "role": user.role.value, "csrf_token": web_session.csrf_token}


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(user: Viewer, request: Request, state: Web) -> Response:
    """Sign out: the session ends on the server (its cookie is useless from now on) and the cookie is cleared.
    A bearer token's caller has no session; the call does nothing for it."""
    from dagrunner.persistence.users import delete_session

    session_id = request.cookies.get(SESSION_COOKIE)
    if user.via == "session" and session_id:
        with state.write() as session:
            delete_session(session, session_id)
    response = Response(status_code=204)
    clear_session_cookie(response, state)
    return response


@router.get("/auth/me", response_model=Me)
def me(user: Viewer) -> dict[str, Any]:
    """The caller: username, role, and (for a browser session) the CSRF token its writes must send."""
    return {"username": user.username, "role": user.role.value, "csrf_token": user.csrf_token}
