"""/api/v1 endpoints: signing in and out, the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dagrunner.web.deps import Viewer

router = APIRouter(tags=["auth"])


@router.get("/auth/me")
def me(user: Viewer) -> dict[str, Any]:
    """The caller: username, role, and (for a browser session) the CSRF token its writes must send."""
    return {"username": user.username, "role": user.role.value, "csrf_token": user.csrf_token}
