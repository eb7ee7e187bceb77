"""What the host needs of a broker consumer, whatever the broker: connect, poll, close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from dagrunner.scheduling.watchers.handler import Handled


class BrokerUnavailable(Exception):  # noqa: N818 - a condition the host waits out, not a bug
    """The broker cannot be reached or refused us (wrong URL, down, the connection lost): reconnect later."""


#: Told about every handled message (the host counts them and reports created runs).
OnHandled = Callable[[Handled], None]


class Consumer(Protocol):
    def connect(self) -> None:
        """Connect and set up (consumer group, queue); BrokerUnavailable when that cannot be done."""

    def poll(self, timeout_s: float) -> int:
        """Handle what arrives within about `timeout_s`; how many messages. BrokerUnavailable on loss."""

    def close(self) -> None:
        """Let go of the connection (never raises)."""
