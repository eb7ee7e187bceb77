"""Values from a run's trigger (conf, params it overrides) never reach a shell command unquoted."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

from dagrunner import DAG
from dagrunner.authoring.templating import Untrusted, build_template_env, mark_untrusted, plain, shell_quote
from dagrunner.errors import UntrustedValueError
from dagrunner.operators import BashOperator, PythonOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
EVIL = "$(touch pwned)"


def _render(command: str, conf: dict[str, Any], *, params: dict[str, Any] | None = None, **kwargs: Any) -> BashOperator:
    with DAG("d", schedule=None, start_date=START, params=params or {}):
        task = BashOperator(task_id="b", bash_command=command, **kwargs)
    copy = task.prepare_for_execution()
    context = {"conf": conf, "params": {**(params or {}), **conf}, "ds": "2026-01-05"}
    copy.render_template_fields(context)
    return copy


@pytest.mark.parametrize(
    ("command", "conf", "origin"),
    [
        ('echo "x={{ conf.x }}"', {"x": EVIL}, "conf.x"),
        ("echo {{ params.x }}", {"x": "a; rm -rf /"}, "params.x"),
        ("echo {{ conf.a.b }}", {"a": {"b": "`id`"}}, "conf.a.b"),
        ("echo {{ conf.files[1] }}", {"files": ["ok", "x|y"]}, "conf.files[1]"),
        ("echo {{ conf.files }}", {"files": ["ok", "x > y"]}, "conf.files[1]"),
        ("echo {{ conf.a }}", {"a": {"b": "$HOME"}}, "conf.a.b"),
        ('echo "{{ conf.x ~ "" }}"', {"x": EVIL}, "conf.x"),  # a string built from it is refused too
        ("echo {{ conf.x | trim }}", {"x": EVIL}, "conf.x"),
    ],
)
def test_unquoted_trigger_values_with_metacharacters_are_refused(
    command: str, conf: dict[str, Any], origin: str
) -> None:
    with pytest.raises(UntrustedValueError) as info:
        _render(command, conf)
    message = str(info.value)
    assert "task 'b' field 'bash_command'" in message
    assert f"{origin} contains shell metacharacters" in message
    assert "shell_quote" in message and "env=" in message


def test_quoted_and_plain_values_render() -> None:
    assert _render("echo {{ conf.x | shell_quote }}", {"x": EVIL}).bash_command == "echo '$(touch pwned)'"
    assert _render("cp {{ conf.files | shell_quote }} /d", {"files": ["a b", "c"]}).bash_command == "cp 'a b' c /d"
    assert _render("echo {{ conf.x }} {{ conf.n }}", {"x": "plain-value_1.csv", "n": 3}).bash_command == (
        "echo plain-value_1.csv 3"
    )
    # a DAG author's own params (not overridden by the trigger) are trusted
    assert _render("echo {{ params.q }}", {}, params={"q": "a | b"}).bash_command == "echo a | b"


def test_env_is_the_other_way_and_renders_plain_values() -> None:
    task = _render('echo "$X"', {"x": EVIL}, env={"X": "{{ conf.x }}"})
    assert task.env == {"X": EVIL}
    assert type(task.env["X"]) is str


def test_other_operators_get_plain_values() -> None:
    with DAG("p", schedule=None, start_date=START):
        task = PythonOperator(task_id="p", python_callable=print, op_kwargs={"v": "{{ conf.x }}", "n": "{{ conf.a }}"})
    copy = task.prepare_for_execution()
    copy.render_template_fields({"conf": {"x": EVIL, "a": {"b": "c"}}, "params": {}})
    assert copy.op_kwargs["v"] == EVIL and type(copy.op_kwargs["v"]) is str


def test_native_rendering_hands_back_plain_values() -> None:
    with DAG("n", schedule=None, start_date=START, render_template_as_native_obj=True):
        task = PythonOperator(task_id="p", python_callable=print, op_kwargs={"v": "{{ conf.a }}"})
    copy = task.prepare_for_execution()
    copy.render_template_fields({"conf": {"a": {"b": [EVIL]}}, "params": {}})
    assert copy.op_kwargs["v"] == {"b": [EVIL]}
    assert type(copy.op_kwargs["v"]["b"][0]) is str


def test_shell_quote_filter_and_marks() -> None:
    env = build_template_env()
    assert env.from_string("{{ v | shell_quote }}").render(v="it's") == "'it'\"'\"'s'"
    assert shell_quote(None) == "''"
    marked = mark_untrusted({"a": ["x", 1], "b": "y"}, "conf")
    assert isinstance(marked["a"][0], Untrusted) and marked["a"][0].origin == "conf.a[0]"
    assert marked["a"][1] == 1
    assert plain(marked) == {"a": ["x", 1], "b": "y"} and type(plain(marked)["b"]) is str
