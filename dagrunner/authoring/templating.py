"""Rendering templated fields with Jinja2 against a run's context (a plain dict; no database here).

Strings are templates; lists, tuples, sets and dict values are rendered recursively; anything else is
left alone. Undefined variables are errors (StrictUndefined, as in Airflow), reported with the task, the
field, the template and the variables that *are* available, because "'dss' is undefined" alone sends
people hunting. A string ending in one of the operator's `template_ext` (e.g. `.sh`) names a template
file, looked up in the DAG's `template_searchpath` and the DAG file's folder (Airflow's rule).

An XComArg (or a @dag function's DagParam) found in a field is replaced by its value while rendering,
and that value is *not* rendered again: an upstream task's output, or a run's conf, that happens to
contain `{{ ... }}` stays data and is never executed as a template (Airflow behaves the same way).

Values from a trigger (the run's conf, and the params it overrides) come from people who may not write
DAGs, so they must not reach a shell unquoted (docs/security.md; Airflow does not do this). While a task
renders, those values are `Untrusted` strings that remember where they came from; in a *shell field*
(BashOperator's `bash_command`) one that contains a character the shell treats specially is refused
unless the template quotes it with the `shell_quote` filter. Every other field, and the task's code, get
plain values.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.nativetypes import NativeEnvironment

from dagrunner.authoring.xcom_arg import DagParam, XComArg
from dagrunner.errors import TemplateRenderError, UntrustedValueError

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator


#: Fetches an XCom: (task_id, key) -> value.
XComPull = Callable[[str, str], Any]


def build_template_env(
    *,
    native: bool = False,
    searchpath: Iterable[str] = (),
    macros: Mapping[str, Any] | None = None,
    filters: Mapping[str, Callable[..., Any]] | None = None,
    undefined: type[jinja2.Undefined] | None = None,
    options: Mapping[str, Any] | None = None,
) -> jinja2.Environment:
    """A Jinja environment with StrictUndefined; `native` renders to Python objects instead of text.

    `macros` become globals and `filters` filters (a DAG's `user_defined_macros` / `user_defined_filters`);
    `undefined` replaces StrictUndefined (`template_undefined`) and `options` are further
    `jinja2.Environment` arguments (`jinja_environment_kwargs`), applied over ours as Airflow does.
    """
    env_class = NativeEnvironment if native else jinja2.Environment
    arguments: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(list(searchpath)),
        "undefined": undefined or jinja2.StrictUndefined,
        "keep_trailing_newline": True,
        "autoescape": False,
        **(options or {}),
    }
    env = env_class(**arguments)
    env.globals.update(macros or {})
    env.filters.update(filters or {})
    env.filters["shell_quote"] = shell_quote
    return env


# --- values from a trigger ------------------------------------------------------------------------------

#: What `shlex.quote` leaves unquoted; anything else means something to the shell.
_SHELL_SAFE = re.compile(r"[\w@%+=:,./-]*", re.ASCII)


class Untrusted(str):
    """A string from a trigger; `origin` names where (`conf.a.b`, `params.x`, `conf.files[2]`)."""

    origin: str

    def __new__(cls, value: str, origin: str) -> Untrusted:
        self = super().__new__(cls, value)
        self.origin = origin
        return self

    def __reduce__(self) -> Any:  # pickled (an XCom crossing processes): it travels as the plain string
        return (str, (str(self),))


class ShellQuoted(str):
    """The output of `shell_quote`: safe in a shell command whatever it came from."""


def shell_quote(value: Any) -> ShellQuoted:
    """Jinja filter: `value` quoted for a POSIX shell (`shlex.quote`); a list becomes its items quoted
    and joined with spaces (one shell word each)."""
    if isinstance(value, list | tuple):
        return ShellQuoted(" ".join(shlex.quote(str(v)) for v in value))
    return ShellQuoted(shlex.quote("" if value is None else str(value)))


def mark_untrusted(value: Any, origin: str) -> Any:
    """`value` with every string in it (through dicts and lists) an `Untrusted` naming its place."""
    if isinstance(value, str):
        return Untrusted(value, origin)
    if isinstance(value, Mapping):
        return {k: mark_untrusted(v, f"{origin}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mark_untrusted(v, f"{origin}[{i}]") for i, v in enumerate(value)]
    return value


def plain(value: Any) -> Any:
    """`value` with the `Untrusted` marks removed (what a task's code receives)."""
    if isinstance(value, Untrusted | ShellQuoted):
        return str.__str__(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if type(value) is tuple:
        return tuple(plain(v) for v in value)
    return value


def _untrusted_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """`context` as templates see it: the run's conf, the params it overrode and `dag_run.conf` marked."""
    conf = context.get("conf")
    marked = dict(context)
    if not conf:
        return marked
    marked["conf"] = mark_untrusted(conf, "conf")
    params = context.get("params")
    if isinstance(params, Mapping):
        marked["params"] = {k: mark_untrusted(v, f"params.{k}") if k in conf else v for k, v in params.items()}
    if context.get("dag_run") is not None:
        marked["dag_run"] = _RunWithMarkedConf(context["dag_run"], mark_untrusted(conf, "dag_run.conf"))
    return marked


class _RunWithMarkedConf:
    """`dag_run` with its conf marked; every other attribute is the run's own."""

    def __init__(self, run: Any, conf: Any) -> None:
        self._run = run
        self.conf = conf

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)


def _refuse_unquoted(value: Any, risky: Sequence[Untrusted]) -> Any:
    """The finalize of a shell field: refuse an untrusted string (the value, or one inside it) that holds
    a shell metacharacter, and a string built from one (`~`, a filter); a quoted value passes."""
    if isinstance(value, ShellQuoted):
        return value
    if isinstance(value, Untrusted):
        if not _SHELL_SAFE.fullmatch(value):
            raise UntrustedValueError(_refusal(value))
    elif isinstance(value, Mapping | list | tuple):
        if inner := _risky(value):
            raise UntrustedValueError(_refusal(inner[0]))
    elif isinstance(value, str):
        for text in risky:
            if text in value:
                raise UntrustedValueError(_refusal(text))
    return value


def _refusal(value: Untrusted) -> str:
    return (
        f"{value.origin} contains shell metacharacters ({_clip(str.__str__(value), 60)}) and comes from the "
        f"run's trigger, so it may not reach the shell unquoted; quote it with "
        f"{{{{ {value.origin} | shell_quote }}}} or pass it through env="
    )


def _risky(value: Any) -> list[Untrusted]:
    """Every untrusted string in `value` that the shell would not read as one plain word."""
    if isinstance(value, Untrusted):
        return [] if _SHELL_SAFE.fullmatch(value) else [value]
    if isinstance(value, Mapping):
        return [u for v in value.values() for u in _risky(v)]
    if isinstance(value, list | tuple):
        return [u for v in value for u in _risky(v)]
    return []


def shell_env(env: jinja2.Environment, context: Mapping[str, Any]) -> jinja2.Environment:
    """An overlay of `env` for a shell field, refusing unquoted untrusted values of `context`."""
    risky = _risky(context.get("conf"))
    return env.overlay(finalize=lambda value: _refuse_unquoted(value, risky))


def render_value(
    value: Any,
    context: Mapping[str, Any],
    env: jinja2.Environment,
    *,
    what: str,
    template_ext: Sequence[str] = (),
    pull: XComPull | None = None,
) -> Any:
    """`value` with every string in it rendered; `what` names the field in errors ("task 'x' field 'y'").

    `pull(task_id, key)` fetches an XCom for the XComArgs in `value`; without it an XComArg is an error.
    """
    if isinstance(value, str):
        return _render_string(value, context, env, what=what, template_ext=template_ext)
    if isinstance(value, XComArg | DagParam):
        return _resolve_reference(value, context, what=what, pull=pull)
    if isinstance(value, list | tuple | set | frozenset):
        items = [render_value(v, context, env, what=what, template_ext=template_ext, pull=pull) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    if isinstance(value, dict):
        return {
            k: render_value(v, context, env, what=what, template_ext=template_ext, pull=pull) for k, v in value.items()
        }
    return value


def render_templated_fields(
    task: BaseOperator,
    context: Mapping[str, Any],
    env: jinja2.Environment,
    *,
    pull: XComPull | None = None,
    shell_fields: Collection[str] = (),
) -> None:
    """Replace each of `task.template_fields` with its rendered value.

    Templates see the trigger's values marked `Untrusted`; in the `shell_fields` an unquoted one that holds
    a shell metacharacter is an UntrustedValueError. The values set on the task are plain again.
    """
    marked = _untrusted_context(context)
    shell = shell_env(env, marked) if shell_fields else env
    for field in task.template_fields:
        rendered = render_value(
            getattr(task, field),
            marked,
            shell if field in shell_fields else env,
            what=f"task {task.task_id!r} field {field!r}",
            template_ext=task.template_ext,
            pull=pull,
        )
        setattr(task, field, plain(rendered))


def render_shell_command(text: str, context: Mapping[str, Any], env: jinja2.Environment, *, what: str) -> str:
    """`text` rendered as a shell field (see `render_templated_fields`): for a command built at run time."""
    marked = _untrusted_context(context)
    return str(plain(render_value(text, marked, shell_env(env, marked), what=what)))


def _resolve_reference(
    value: XComArg | DagParam, context: Mapping[str, Any], *, what: str, pull: XComPull | None
) -> Any:
    if isinstance(value, DagParam):
        try:
            return value.resolve(context.get("params") or {})
        except KeyError as exc:
            raise TemplateRenderError(f"{what}: {exc.args[0]}") from None
    if pull is None:
        raise TemplateRenderError(
            f"{what} holds {value!r}, the output of an upstream task; rendering it needs XCom access (pull=)"
        )
    return pull(value.operator.task_id, value.key)


def _render_string(
    text: str, context: Mapping[str, Any], env: jinja2.Environment, *, what: str, template_ext: Sequence[str]
) -> Any:
    try:
        if template_ext and text.endswith(tuple(template_ext)):
            template = env.get_template(text)
        else:
            template = env.from_string(text)
        return template.render(dict(context))
    except jinja2.TemplateNotFound as exc:
        searched = getattr(env.loader, "searchpath", [])
        raise TemplateRenderError(
            f"{what}: template file {exc.name!r} not found in {searched} (a value ending in "
            f"{', '.join(template_ext)} is read as a file; end it with a space to use it as is)"
        ) from None
    except jinja2.UndefinedError as exc:
        available = ", ".join(sorted(context)) or "(none)"
        raise TemplateRenderError(
            f"{what}: {exc.message} in template {_clip(text)}; available variables: {available}"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateRenderError(
            f"{what}: template syntax error on line {exc.lineno}: {exc.message} in {_clip(text)}"
        ) from None
    except UntrustedValueError as exc:
        raise UntrustedValueError(f"{what}: {exc}") from None
    except TemplateRenderError:
        raise
    except Exception as exc:  # a macro or filter raised: still say which field, then chain the cause
        raise TemplateRenderError(f"{what}: rendering {_clip(text)} failed: {type(exc).__name__}: {exc}") from exc


def _clip(text: str, limit: int = 200) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
