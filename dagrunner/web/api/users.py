"""/api/v1 endpoints: users and their API tokens (admin only).

The same library calls as `dagrunner users ...` (persistence.users), which audit each change with the
admin as the actor (`api:<name>`). A user's password hash and a token's digest never leave the server; a new
token is shown once, in the response that creates it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field

from dagrunner.persistence.users import MIN_PASSWORD_LENGTH
from dagrunner.web.deps import Admin, PageArgs, Web

router = APIRouter(tags=["users"])

#: A user or token name: printable (no control characters, which PostgreSQL's text refuses in part), with no
#: space at either end; up to 250 characters.
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
NAME = Field(
    min_length=1, max_length=250, pattern=NAME_PATTERN, description="No control characters; no space at either end."
)
UsernamePath = Annotated[str, Path(min_length=1, max_length=250, pattern=NAME_PATTERN)]


class User(BaseModel):
    username: str
    role: str
    created_at: str
    last_login: str | None


class UserPage(BaseModel):
    items: list[User]
    total: int
    limit: int
    offset: int


class NewUser(BaseModel):
    username: str = NAME
    role: Literal["viewer", "operator", "admin"]
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)


class NewToken(BaseModel):
    name: str = NAME


class Token(BaseModel):
    token: str = Field(description="Send it as `Authorization: Bearer <token>`; it is shown only this once.")


@router.get("/users", response_model=UserPage)
def list_users(_user: Admin, state: Web, paging: PageArgs) -> dict[str, Any]:
    """Every user, by name, with their role and last login."""
    from dagrunner.persistence.users import list_users

    with state.read() as session:
        users = list_users(session)
    window = users[paging.offset : paging.offset + paging.limit]
    return paging.page([u.to_json() for u in window], len(users))


@router.post("/users", status_code=201, response_model=User, responses={409: {"description": "the name is taken"}})
def create_user(body: NewUser, user: Admin, state: Web) -> dict[str, Any]:
    """Add a user (audited `user.created`); 409 when the name is taken."""
    from sqlalchemy import select

    from dagrunner.persistence.models import WebUser
    from dagrunner.persistence.users import create_user

    with state.write() as session:
        if session.scalar(select(WebUser.id).where(WebUser.username == body.username)) is not None:
            raise HTTPException(409, f"user {body.username!r} exists; delete it first to replace it")
        created = create_user(session, body.username, body.role, body.password, actor=user.actor, when=state.now())
    return created.to_json()


@router.delete("/users/{username}", status_code=204, response_class=Response)
def delete_user(username: UsernamePath, user: Admin, state: Web) -> Response:
    """Remove a user with their tokens and sessions (audited `user.deleted`). An admin cannot remove
    themselves here, so the API never locks out the last one by accident (`dagrunner users delete` can)."""
    from dagrunner.persistence.users import delete_user

    if username == user.username:
        raise HTTPException(400, "you cannot delete your own user; another admin (or `dagrunner users delete`) can")
    with state.write() as session:
        delete_user(session, username, actor=user.actor, when=state.now())
    return Response(status_code=204)


@router.post("/users/{username}/tokens", status_code=201, response_model=Token)
def create_token(username: UsernamePath, body: NewToken, user: Admin, state: Web) -> dict[str, str]:
    """A new API token for `username` (audited `token.created`), shown once."""
    from dagrunner.persistence.users import create_token

    with state.write() as session:
        token = create_token(session, username, body.name, actor=user.actor, when=state.now())
    return {"token": token}
