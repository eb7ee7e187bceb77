"""The UI's shell as the server serves it (no browser needed): the page, its files, and that it never
shadows the API's own answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ..conftest import make_web_project

STATIC = Path(__file__).resolve().parents[3] / "dagrunner" / "web" / "static"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    project = make_web_project(tmp_path / "home", f"sqlite:///{tmp_path / 'db.sqlite'}")
    with TestClient(project.app) as c:
        yield c
    project.engine.dispose()


def test_the_page_and_its_files_need_no_login(client: TestClient) -> None:
    for path in ("/", "/dags", "/dags/some_dag/grid"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app.js">' in response.text
    for path in ("/static/app.js", "/static/app.css", "/static/js/api.js"):
        assert client.get(path).status_code == 200, path


def test_api_paths_keep_their_json_404(client: TestClient) -> None:
    for path in ("/api/v1/no-such-thing", "/api", "/static/no-such-file.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "text/html" not in response.headers.get("content-type", ""), path
    assert client.get("/api/v1/auth/me").status_code == 401


def test_the_static_files_obey_the_content_security_policy() -> None:
    """No inline scripts, inline styles, style blocks or eval: the CSP (script-src/style-src 'self') would
    block them in the browser. Styles are set with classes (or element.style from JS, which CSP allows)."""
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> in index.html"
    assert "style=" not in html and "<style" not in html
    for path in STATIC.rglob("*.js"):
        source = path.read_text()
        assert "innerHTML" not in source and "outerHTML" not in source, path
        assert not re.search(r"\beval\(|new Function\(|setAttribute\(\s*[\"']style", source), path
        outside = source.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace, not a fetch
        assert "http://" not in outside and "https://" not in outside, f"{path} loads from another site"
