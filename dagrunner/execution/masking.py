"""Keeping secret values out of try logs and error summaries (DESIGN section 8).

A variable whose name looks secret (password, secret, token, api_key, passwd, credential) has its value
registered with the try's `SecretMasker`; everything the task writes through `sys.stdout` / `sys.stderr`
(print, logging, BashOperator's streamed output, our tracebacks) passes through a `MaskedStream` that
replaces registered values with `***`. Bytes a subprocess writes straight to the file descriptor are not
seen by Python and so cannot be masked; BashOperator re-writes its command's output through sys.stdout,
which is why its output is masked too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

MASK = "***"
VAR_ENV_PREFIX = "DAGRUNNER_VAR_"
SENSITIVE_WORDS = ("password", "secret", "token", "api_key", "apikey", "passwd", "credential", "private_key")
#: Shorter values are not masked: masking "a" or "on" would garble every line (Airflow's rule too).
MIN_SECRET_LENGTH = 5


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


class SecretMasker:
    """The secret values known in this try; `mask(text)` hides them."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SecretMasker:
        """A masker that knows every `DAGRUNNER_VAR_*` value whose variable name looks secret."""
        env = os.environ if environ is None else environ
        return cls(
            value
            for name, value in env.items()
            if name.startswith(VAR_ENV_PREFIX) and is_sensitive(name[len(VAR_ENV_PREFIX) :])
        )

    def add(self, value: Any) -> None:
        text = value if isinstance(value, str) else str(value)
        if len(text) >= MIN_SECRET_LENGTH and text not in self._secrets:
            self._secrets.add(text)
            # longest first, so a secret that contains another is replaced whole
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)


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
