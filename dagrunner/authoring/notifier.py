"""Notifiers: callback objects with templated fields (Airflow's `BaseNotifier`), and two that need no service.

A notifier is given wherever a callback is accepted: a task's `on_*_callback`, a DAG's
`on_success_callback` / `on_failure_callback`, or anything else that calls a callable with a context
(an approval's escalation). When called it renders a copy of itself against the context (so one
notifier object serves every run) and calls `notify(context)` on that copy:

    from dagrunner.notifications import FileNotifier
    alert = FileNotifier(path="/var/log/etl-alerts.log", message="{{ dag.dag_id }} {{ run_id }} failed: {{ reason }}")
    with DAG("etl", on_failure_callback=alert, default_args={"on_failure_callback": alert}): ...

A notifier's exception is what any callback's exception is: logged and audited, never a change of state.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from dagrunner.authoring.templating import build_template_env, plain, render_value
from dagrunner.errors import InvalidArgumentError

__all__ = ["BaseNotifier", "FileNotifier", "LogNotifier"]


class BaseNotifier:
    """Subclass it: list the attributes to render in `template_fields` and implement `notify(context)`."""

    template_fields: Sequence[str] = ()
    #: A templated value ending in one of these names a template file (as for operators).
    template_ext: Sequence[str] = ()

    def notify(self, context: Mapping[str, Any]) -> None:
        """Send the notification; the templated fields are already rendered."""
        raise NotImplementedError(f"{type(self).__name__} must implement notify(self, context)")

    def render_template_fields(self, context: Mapping[str, Any], jinja_env: jinja2.Environment | None = None) -> None:
        """Render every field named in `template_fields` in place, against `context`."""
        env = jinja_env or _template_env(context)
        for name in self.template_fields:
            value = render_value(
                getattr(self, name),
                context,
                env,
                what=f"notifier {type(self).__name__} field {name!r}",
                template_ext=self.template_ext,
            )
            setattr(self, name, plain(value))

    def __call__(self, *args: Any) -> None:
        """Called as a callback: `notifier(context)`. Renders a copy, so the definition stays a template."""
        if len(args) != 1 or not isinstance(args[0], Mapping):
            raise TypeError(f"{type(self).__name__} is called with one argument, the callback's context dict")
        context = args[0]
        rendered = copy.copy(self)
        rendered.render_template_fields(context)
        rendered.notify(context)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class FileNotifier(BaseNotifier):
    """Append `message` (templated) as one line to the file at `path` (templated), creating the file.

    The line is written with one `write` on a file opened for appending, so lines from processes that
    notify at the same time do not interleave.
    """

    template_fields = ("path", "message")

    def __init__(self, *, path: str | os.PathLike[str], message: str) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise InvalidArgumentError(f"FileNotifier: path must be a non-empty path, got {path!r}")
        if not isinstance(message, str):
            raise InvalidArgumentError(f"FileNotifier: message must be a string (a template), got {message!r}")
        self.path = str(path)
        self.message = message

    def notify(self, context: Mapping[str, Any]) -> None:  # noqa: ARG002 - rendered into the fields already
        line = (str(self.message).replace("\n", " ") + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<FileNotifier {self.path}>"


class LogNotifier(BaseNotifier):
    """Print `message` (templated) to stderr: the try's log for a task callback, the callback's log for
    a DAG callback. Useful as a placeholder until a real channel is wired up."""

    template_fields = ("message",)

    def __init__(self, *, message: str) -> None:
        if not isinstance(message, str):
            raise InvalidArgumentError(f"LogNotifier: message must be a string (a template), got {message!r}")
        self.message = message

    def notify(self, context: Mapping[str, Any]) -> None:  # noqa: ARG002 - rendered into the fields already
        print(f"[notify] {self.message}", file=sys.stderr, flush=True)


def _template_env(context: Mapping[str, Any]) -> jinja2.Environment:
    """The DAG's environment (its macros and template search path) when the context names a DAG."""
    get_env = getattr(context.get("dag"), "get_template_env", None)
    return get_env() if callable(get_env) else build_template_env()
