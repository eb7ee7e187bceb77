"""The web UI: plain static files shipped in the package (`static/`), served by the api-server.

The UI is a single page (hash routing) that holds no data itself: every page fetches the REST API, which is
where authentication happens. So the shell and its files are served to anyone, like a login page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
INDEX = STATIC / "index.html"
#: Paths the SPA shell never answers: the API and /health keep their own 404s (JSON, not a page).
_NOT_THE_UI = ("api/", "api", "static/", "health")


def _index() -> FileResponse:
    # no-cache: after an upgrade the browser asks again (304 when unchanged) instead of running an old shell.
    return FileResponse(INDEX, media_type="text/html", headers={"Cache-Control": "no-cache"})


def mount_ui(app: FastAPI) -> None:
    """Serve the UI at / (index.html), its files under /static, and index.html for other page paths.

    Called after the API's routers are included, so the catch-all route never shadows an endpoint.
    """
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return _index()

    @app.get("/{path:path}", include_in_schema=False)
    def page(path: str) -> FileResponse:
        if path.startswith(_NOT_THE_UI) or path in _NOT_THE_UI:
            raise HTTPException(404, f"no such path: /{path}")
        return _index()
