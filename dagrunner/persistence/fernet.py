"""The Fernet key that encrypts connections' passwords and extras and variables' values at rest.

`DAGRUNNER_FERNET_KEY` when set: one key, or several separated by commas to rotate (the first encrypts,
every one decrypts; `dagrunner rotate-fernet-key` re-encrypts what is stored with the first). Otherwise
the key in `<state folder>/fernet.key`, generated on first use with mode 0600. The key is never printed.
A malformed key, or a stored value the key cannot decrypt, is a `FernetKeyError` naming where the key
came from: never plaintext, never an empty value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from dagrunner.errors import FernetKeyError

KEY_ENV = "DAGRUNNER_FERNET_KEY"
KEY_FILE = "fernet.key"


@dataclass(frozen=True)
class SecretBox:
    """Encrypts and decrypts with the configured key(s); `source` says where they came from (for errors)."""

    fernet: MultiFernet
    source: str

    def encrypt(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str, what: str) -> str:
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise FernetKeyError(
                f"{what} cannot be decrypted with the Fernet key from {self.source}: it was stored with another "
                f"key; set {KEY_ENV} to that key (or 'new,old' while rotating)"
            ) from None

    def rotate(self, token: str, what: str) -> str:
        try:
            return self.fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise FernetKeyError(f"{what} cannot be decrypted with the Fernet key(s) from {self.source}") from None


def secret_box(state_folder: Path, environ: Mapping[str, str] | None = None) -> SecretBox:
    """The key(s) from the environment, else the state folder's key file (created on first use)."""
    env = os.environ if environ is None else environ
    configured = env.get(KEY_ENV, "").strip()
    if configured:
        return SecretBox(_fernet(configured.split(","), KEY_ENV), KEY_ENV)
    path = Path(state_folder) / KEY_FILE
    return SecretBox(_fernet([_key_file(path)], str(path)), str(path))


def _key_file(path: Path) -> str:
    """The key in `path`, written there first (mode 0600, never replaced) when the file does not exist."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: theirs is the key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def _fernet(keys: list[str], source: str) -> MultiFernet:
    fernets = []
    for number, key in enumerate(k.strip() for k in keys):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            which = f"key {number + 1} in {source}" if len(keys) > 1 else f"the key in {source}"
            raise FernetKeyError(
                f"{which} is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return MultiFernet(fernets)
