"""Rendering templated fields with Jinja2 against a run's context (a plain dict; no database here).

Strings are templates; lists, tuples, sets and dict values are rendered recursively; anything else is
left alone. Undefined variables are errors (StrictUndefined, as in Airflow), reported with the task, the
field, the template and the variables that *are* available, because "'dss' is undefined" alone sends
people hunting. A string ending in one of the operator's `template_ext` (e.g. `.sh`) names a template
file, looked up in the DAG's `template_searchpath` and the DAG file's folder (Airflow's rule).

An XComArg (or a @dag function's DagParam) found in a field is replaced by its value while rendering,
and that value is *not* rendered again: an upstream task's output, or a run's conf, that happens to
contain `{{ ... }}` stays data and is never executed as a template (Airflow behaves the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.nativetypes import NativeEnvironment

from dagrunner.authoring.xcom_arg import DagParam, XComArg
from dagrunner.errors import TemplateRenderError

if TYPE_CHECKING:
    from dagrunner.authoring.baseoperator import BaseOperator


#: Fetches an XCom: (task_id, key) -> value.
XComPull = Callable[[str, str], Any]


def build_template_env(
    *, native: bool = False, searchpath: Iterable[str] = (), macros: Mapping[str, Any] | None = None
) -> jinja2.Environment:
    """A Jinja environment with StrictUndefined; `native` renders to Python objects instead of text."""
    env_class = NativeEnvironment if native else jinja2.Environment
    env = env_class(
        loader=jinja2.FileSystemLoader(list(searchpath)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals.update(macros or {})
    return env


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
    task: BaseOperator, context: Mapping[str, Any], env: jinja2.Environment, *, pull: XComPull | None = None
) -> None:
    """Replace each of `task.template_fields` with its rendered value."""
    for field in task.template_fields:
        rendered = render_value(
            getattr(task, field),
            context,
            env,
            what=f"task {task.task_id!r} field {field!r}",
            template_ext=task.template_ext,
            pull=pull,
        )
        setattr(task, field, rendered)


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
    except TemplateRenderError:
        raise
    except Exception as exc:  # a macro or filter raised: still say which field, then chain the cause
        raise TemplateRenderError(f"{what}: rendering {_clip(text)} failed: {type(exc).__name__}: {exc}") from exc


def _clip(text: str, limit: int = 200) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
