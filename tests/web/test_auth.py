"""Signing in through the HTTP layer: browser sessions (cookie + CSRF token), bearer tokens, roles, the users
API, and the security headers on every kind of response. Real users, sessions and audit rows in the DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import AuditLog, WebSession
from dagrunner.web.app import create_app
from dagrunner.web.security import CONTENT_SECURITY_POLICY

from .conftest import PASSWORD, WebProject

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
USERS = "/api/v1/users"


def _login(web: WebProject, username: str, password: str = PASSWORD, client: TestClient | None = None) -> TestClient:
    client = client or web.client(None)
    response = client.post(LOGIN, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return client


def _sessions(web: WebProject) -> int:
    with session_scope(web.engine, readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_login_me_logout(web: WebProject) -> None:
    web.user("operator", "olga")
    client = web.client(None)
    response = client.post(LOGIN, json={"username": "olga", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "olga" and body["role"] == "operator" and len(body["csrf_token"]) >= 32
    assert client.get(ME).json() == body  # the cookie alone identifies the browser
    assert _sessions(web) == 1

    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status_code == 204
    assert _sessions(web) == 0
    assert client.get(ME).status_code == 401


def test_a_logged_out_cookie_replayed_is_refused(web: WebProject) -> None:
    web.user("viewer", "vic")
    client = _login(web, "vic")
    cookie = client.cookies.get("dagrunner_session")
    csrf = client.get(ME).json()["csrf_token"]
    client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    replay = web.client(None)
    replay.cookies.set("dagrunner_session", cookie)
    assert replay.get(ME).status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_401(web: WebProject) -> None:
    web.user("admin", "ada")
    client = web.client(None)
    wrong = client.post(LOGIN, json={"username": "ada", "password": "not the password"})
    unknown = client.post(LOGIN, json={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong username or password"}
    assert "dagrunner_session" not in client.cookies
    assert _sessions(web) == 0


def test_missing_and_forged_credentials_are_401(web: WebProject) -> None:
    anonymous = web.client(None)
    assert anonymous.get(ME).status_code == 401
    assert anonymous.get(USERS).status_code == 401
    assert anonymous.get(ME, headers={"Authorization": "Bearer drt_forged"}).status_code == 401
    anonymous.cookies.set("dagrunner_session", "forged-session-id")
    assert anonymous.get(ME).status_code == 401


def test_an_expired_session_cookie_is_401(web: WebProject) -> None:
    now = [datetime.now(UTC)]
    app = create_app(web.settings, engine=web.engine, clock=lambda: now[0])
    web.user("viewer", "vera")
    with TestClient(app) as client:
        _login(web, "vera", client=client)
        assert client.get(ME).status_code == 200
        now[0] += timedelta(hours=web.settings.api_session_hours, seconds=1)
        assert client.get(ME).status_code == 401
        # the next login prunes the expired session
        _login(web, "vera", client=client)
    assert _sessions(web) == 1


def test_a_session_write_needs_the_csrf_token(web: WebProject) -> None:
    web.user("admin", "ada")
    client = _login(web, "ada")
    csrf = client.get(ME).json()["csrf_token"]
    new = {"username": "carl", "role": "viewer", "password": "a long password"}
    missing = client.post(USERS, json=new)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    wrong = client.post(USERS, json=new, headers={"X-CSRF-Token": csrf[:-1] + ("A" if csrf[-1] != "A" else "B")})
    assert wrong.status_code == 403
    ok = client.post(USERS, json=new, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    assert ok.json()["username"] == "carl" and ok.json()["role"] == "viewer"
    with session_scope(web.engine, readonly=True) as s:
        actors = s.scalars(select(AuditLog.actor).where(AuditLog.event == "user.created")).all()
    assert "api:ada" in actors


def test_a_bearer_write_needs_no_csrf_token(web: WebProject) -> None:
    admin = web.client("admin")
    created = admin.post(USERS, json={"username": "dora", "role": "operator", "password": "a long password"})
    assert created.status_code == 201


def test_roles_viewer_cannot_write_operator_cannot_manage_users(web: WebProject) -> None:
    new = {"username": "eve", "role": "admin", "password": "a long password"}
    viewer = web.client("viewer")
    refused = viewer.post(USERS, json=new)
    assert refused.status_code == 403 and "admin role" in refused.json()["detail"]
    assert viewer.get(USERS).status_code == 403
    operator = web.client("operator")
    assert operator.post(USERS, json=new).status_code == 403
    assert operator.delete(f"{USERS}/eve").status_code == 403


def test_users_api_lists_creates_deletes_and_issues_tokens(web: WebProject) -> None:
    admin = web.client("admin", username="root")
    assert (
        admin.post(USERS, json={"username": "fay", "role": "viewer", "password": "a long password"}).status_code == 201
    )
    duplicate = admin.post(USERS, json={"username": "fay", "role": "viewer", "password": "a long password"})
    assert duplicate.status_code == 409
    assert admin.post(USERS, json={"username": "gus", "role": "king", "password": "a long password"}).status_code == 422
    assert admin.post(USERS, json={"username": "gus", "role": "viewer", "password": "short"}).status_code == 422

    page = admin.get(USERS, params={"limit": 1}).json()
    assert page["total"] == 2 and page["limit"] == 1 and len(page["items"]) == 1
    names = {u["username"]: u for u in admin.get(USERS).json()["items"]}
    assert set(names) == {"root", "fay"} and names["fay"]["last_login"] is None
    assert "password_hash" not in names["fay"]

    token = admin.post(f"{USERS}/fay/tokens", json={"name": "ci"})
    assert token.status_code == 201 and token.json()["token"].startswith("drt_")
    fay = web.client(None)
    assert fay.get(ME, headers={"Authorization": f"Bearer {token.json()['token']}"}).json()["username"] == "fay"
    assert admin.post(f"{USERS}/nobody/tokens", json={"name": "ci"}).status_code == 404

    assert admin.delete(f"{USERS}/root").status_code == 400  # not yourself
    assert admin.delete(f"{USERS}/fay").status_code == 204
    assert admin.delete(f"{USERS}/fay").status_code == 404
    assert fay.get(ME, headers={"Authorization": f"Bearer {token.json()['token']}"}).status_code == 401
    with session_scope(web.engine, readonly=True) as s:
        events = s.execute(select(AuditLog.event, AuditLog.actor).where(AuditLog.event.like("user.%"))).all()
    assert ("user.deleted", "api:root") in events


def test_the_session_cookie_flags(web: WebProject) -> None:
    web.user("viewer", "hal")
    response = web.client(None).post(LOGIN, json={"username": "hal", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    parts = [p.strip().lower() for p in cookie.split(";")]
    assert parts[0].startswith("dagrunner_session=")
    assert "httponly" in parts and "samesite=strict" in parts and "path=/" in parts
    assert "secure" not in parts  # api_cookie_secure is off by default (plain http on 127.0.0.1)
    assert f"max-age={12 * 3600}" in parts


def test_the_cookie_is_secure_when_the_setting_says_so(web: WebProject) -> None:
    from dagrunner.settings import Settings

    settings = Settings.load(
        {"db_url": web.settings.db_url, "api_cookie_secure": True, "api_session_hours": 1}, environ={}, home=web.home
    )
    web.user("viewer", "ivy")
    with TestClient(create_app(settings, engine=web.engine), base_url="https://testserver") as client:
        response = client.post(LOGIN, json={"username": "ivy", "password": PASSWORD})
    parts = [p.strip().lower() for p in response.headers["set-cookie"].split(";")]
    assert "secure" in parts and "max-age=3600" in parts


def _assert_security_headers(headers: object, *, api: bool) -> None:
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY  # type: ignore[index]
    assert headers["x-content-type-options"] == "nosniff"  # type: ignore[index]
    assert headers["x-frame-options"] == "DENY"  # type: ignore[index]
    assert headers["referrer-policy"] == "same-origin"  # type: ignore[index]
    assert headers["cross-origin-opener-policy"] == "same-origin"  # type: ignore[index]
    assert headers["permissions-policy"] == "camera=(), microphone=(), geolocation=()"  # type: ignore[index]
    if api:
        assert headers["cache-control"] == "no-store"  # type: ignore[index]


def test_security_headers_on_health_api_errors_and_404(web: WebProject) -> None:
    client = web.client("viewer")
    _assert_security_headers(client.get("/health").headers, api=False)
    _assert_security_headers(client.get(ME).headers, api=True)
    _assert_security_headers(web.client(None).get(ME).headers, api=True)  # a 401
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    _assert_security_headers(missing.headers, api=True)
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def test_login_body_is_bounded(web: WebProject) -> None:
    client = web.client(None)
    assert client.post(LOGIN, json={"username": "", "password": "x"}).status_code == 422
    assert client.post(LOGIN, json={"username": "a" * 251, "password": "x"}).status_code == 422
    assert client.post(LOGIN, content=b"username=a&password=b").status_code == 422


def test_names_with_control_characters_are_refused_before_the_database(web: WebProject) -> None:
    # PostgreSQL's text cannot hold NUL: such a name must be a 422, never a database error (500)
    assert web.client(None).post(LOGIN, json={"username": "a\x00b", "password": "x"}).status_code == 422
    admin = web.client("admin")
    new = {"username": "a\x00b", "role": "viewer", "password": "a long password"}
    assert admin.post(USERS, json=new).status_code == 422
    assert admin.post(USERS, json={**new, "username": " padded"}).status_code == 422
    assert admin.delete(f"{USERS}/a%00b").status_code == 422
    assert admin.post(f"{USERS}/a%00b/tokens", json={"name": "ci"}).status_code == 422
    admin.post(USERS, json={**new, "username": "kim"})
    assert admin.post(f"{USERS}/kim/tokens", json={"name": "c\x00i"}).status_code == 422


def test_an_unexpected_error_is_a_500_with_the_security_headers_and_no_details(web: WebProject) -> None:
    from fastapi.testclient import TestClient

    def boom() -> None:
        raise RuntimeError("secret internals")

    web.app.add_api_route("/api/v1/test-only-boom", boom)
    web.app.router.routes.insert(0, web.app.router.routes.pop())  # before the UI's catch-all

    with TestClient(web.app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/test-only-boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    _assert_security_headers(response.headers, api=False)


def test_the_openapi_document_needs_credentials_like_every_endpoint_but_health(web: WebProject) -> None:
    assert web.client(None).get("/api/v1/openapi.json").status_code == 401
    document = web.client("viewer").get("/api/v1/openapi.json")
    assert document.status_code == 200
    assert "/api/v1/dags" in document.json()["paths"]
    assert "/api/v1/openapi.json" not in document.json()["paths"]
