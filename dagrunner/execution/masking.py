"""Keeping secret values out of try logs, error summaries and CLI output (DESIGN section 8, docs/security.md).

A variable whose name looks secret (password, secret, token, api_key, passwd, credential) and a param
with such a name have their values registered with the try's `SecretMasker`. Masking happens where
output reaches the log (`logs.OutputRedirect`): Python's sys.stdout / sys.stderr are a `MaskedStream`,
and the try's fds 1 and 2 are a pipe whose reader masks what it copies to the log, so print, logging,
tracebacks, `os.write` and subprocesses writing to their inherited descriptors are all masked. XCom values
are stored as they are (downstream tasks need them) and masked where they are shown (`tasks test`).

A secret is masked as a whole and, when it has several lines (a PEM key), line by line, because output
often arrives a line at a time. A secret of 8 or more characters that contains `$` is also masked in the
pieces a shell would leave of it (`ab$cdefgh` echoed by bash prints `ab` plus whatever `$cdefgh` expands
to): each piece between `$` expansions of at least MIN_SECRET_LENGTH characters is masked too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from dagrunner.authoring._secrets import CONN_ENV_PREFIX, SENSITIVE_WORDS, VAR_ENV_PREFIX, is_sensitive

__all__ = ["MASK", "SENSITIVE_WORDS", "VAR_ENV_PREFIX", "MaskedStream", "SecretMasker", "is_sensitive"]

MASK = "***"
#: Shorter values are not masked: masking "a" or "on" would garble every line (Airflow's rule too).
MIN_SECRET_LENGTH = 5
#: A secret this long that contains `$` is masked also in what is left of it after shell expansion.
SHELL_FRAGMENT_MIN_SECRET = 8
#: What bash expands after a `$`: ${...}, a name, a special parameter (or a lone `$`, which stays).
_SHELL_EXPANSION = re.compile(r"\$(?:\{[^}]*\}?|[A-Za-z_][A-Za-z0-9_]*|[0-9!#$*?@-])")


class SecretMasker:
    """The secret values known in this try; `mask(text)` hides them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SecretMasker:
        """A masker that knows every `DAGRUNNER_VAR_*` value whose variable name looks secret, and the
        password (and secret-looking extras) of every `DAGRUNNER_CONN_*` connection: a task that echoes
        its environment shows them masked."""
        env = os.environ if environ is None else environ
        masker = cls(
            value
            for name, value in env.items()
            if name.startswith(VAR_ENV_PREFIX) and is_sensitive(name[len(VAR_ENV_PREFIX) :])
        )
        for name, value in env.items():
            if name.startswith(CONN_ENV_PREFIX):
                for secret in _connection_secrets(name[len(CONN_ENV_PREFIX) :].lower(), value):
                    masker.add(secret)
        return masker

    def add(self, value: Any) -> None:
        """Mask `value` from now on (with its lines and shell fragments: see the module docstring)."""
        text = value if isinstance(value, str) else str(value)
        new = {piece for piece in _pieces(text) if len(piece) >= MIN_SECRET_LENGTH} - self._secrets
        if new:
            self._secrets |= new
            # longest first, so a secret that contains another is replaced whole
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def mask(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def mask_bytes(self, data: bytes) -> bytes:
        """`mask` for raw output: bytes that are not UTF-8 pass through unchanged."""
        pattern = self._pattern
        if pattern is None or not data:
            return data
        text = data.decode("utf-8", errors="surrogateescape")
        masked = pattern.sub(MASK, text)
        return data if masked == text else masked.encode("utf-8", errors="surrogateescape")

    def mask_value(self, value: Any) -> Any:
        """`value` (str, or lists / dicts of them, as an XCom is) with secrets masked in every string."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        return value


def _connection_secrets(conn_id: str, text: str) -> list[str]:
    """The secrets of an environment connection; none when it does not parse (reading it says why)."""
    from dagrunner.authoring.connection import Connection
    from dagrunner.errors import InvalidConnectionError

    try:
        return Connection.from_text(conn_id, text).secrets()
    except InvalidConnectionError:
        return []


def _pieces(secret: str) -> set[str]:
    """What to mask for `secret`: itself, its lines, and what a shell leaves of it around `$` expansions."""
    pieces = {secret}
    lines = secret.splitlines()
    if len(lines) > 1:
        pieces.update(line.strip() for line in lines)
        pieces.update(line.rstrip("\r") for line in secret.split("\n"))
    if len(secret) >= SHELL_FRAGMENT_MIN_SECRET and "$" in secret:
        for line in lines or [secret]:
            pieces.update(_SHELL_EXPANSION.split(line))
    return pieces


class MaskedStream:
    """A text stream wrapper that masks secrets in everything written through it."""

    def __init__(self, stream: TextIO, masker: SecretMasker) -> None:
        self._stream = stream
        self._masker = masker

    def write(self, text: str) -> int:
        self._stream.write(self._masker.mask(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, isatty, buffer...
        return getattr(self._stream, name)
