"""The web UI: plain static files shipped in the package (`static/`), served by the api-server."""

from __future__ import annotations

from fastapi import FastAPI


def mount_ui(app: FastAPI) -> None:
    """Serve the UI at / (index.html) and its files under /static."""
