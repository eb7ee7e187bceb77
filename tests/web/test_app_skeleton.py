"""The app's frame: /health without credentials, every other endpoint refuses anonymous callers, tokens work."""

from __future__ import annotations

from .conftest import WebProject


def test_health_needs_no_credentials(web: WebProject) -> None:
    response = web.client(None).get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_a_bearer_token_identifies_its_user_and_a_forged_one_is_refused(web: WebProject) -> None:
    client = web.client("operator", username="olga")
    assert client.get("/api/v1/auth/me").json() == {"username": "olga", "role": "operator", "csrf_token": None}
    anonymous = web.client(None)
    assert anonymous.get("/api/v1/auth/me").status_code == 401
    forged = anonymous.get("/api/v1/auth/me", headers={"Authorization": "Bearer drt_forged"})
    assert forged.status_code == 401
