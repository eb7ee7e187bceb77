"""The headers every response carries, so a browser confines the UI to itself.

The Content-Security-Policy allows scripts, styles, fetches and images from this server only (no inline
script or style, no eval, no framing), so an injected string cannot run as code even if some page forgot to
escape it. The other headers stop MIME sniffing, framing (clickjacking), leaking URLs to other sites and
access to camera, microphone and location. API responses are never cached: they hold run data and CSRF
tokens that should not outlive the page on a shared machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
API_PATH_PREFIX = "/api/"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SecurityHeaders:
    """ASGI middleware adding `SECURITY_HEADERS` to every HTTP response (and Cache-Control: no-store to
    the API's). Plain ASGI rather than Starlette's BaseHTTPMiddleware: it does not buffer bodies, so the
    log tail and static files stream as before."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if str(scope.get("path", "")).startswith(API_PATH_PREFIX):
            extra.append(("Cache-Control", "no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in extra:
                    key = name.lower().encode("latin-1")
                    if key == b"cache-control":  # ours wins: an API answer must never be cached
                        headers = [(n, v) for n, v in headers if n.lower() != key]
                    elif key in present:
                        continue
                    headers.append((key, value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
