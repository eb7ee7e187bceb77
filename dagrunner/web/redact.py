"""Secrets out of responses: a value under a key that looks secret (password, token, api_key, ...) is masked,
at any depth, in everything the API returns that users or tasks wrote (conf, params, XCom-like extras, audit
details, dead-letter headers). The rule is the one logs use (`execution.masking.is_sensitive`), so a value
hidden in a try's log is hidden on a page too. Values already masked in logs stay masked: logs are stored
masked.
"""

from __future__ import annotations

from typing import Any

from dagrunner.execution.masking import MASK, is_sensitive


def redact(value: Any) -> Any:
    """`value` with every entry whose key looks secret replaced by "***" (dicts and lists, recursively)."""
    if isinstance(value, dict):
        return {
            k: MASK if isinstance(k, str) and is_sensitive(k) and v is not None else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
