"""Notifiers: rendered against the callback's context on a copy, usable wherever a callback is accepted."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pendulum
import pytest

from dagrunner import DAG, BaseNotifier
from dagrunner.errors import InvalidArgumentError, TemplateRenderError
from dagrunner.notifications import FileNotifier, LogNotifier
from dagrunner.operators import EmptyOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")


class Recorder(BaseNotifier):
    template_fields = ("subject", "recipients")

    def __init__(self, subject: str, recipients: list[str]) -> None:
        self.subject = subject
        self.recipients = recipients
        self.sent: list[tuple[str, list[str]]] = []

    def notify(self, context: Mapping[str, Any]) -> None:  # noqa: ARG002
        self.sent.append((self.subject, self.recipients))


def test_a_notifier_renders_its_fields_on_a_copy_and_notifies() -> None:
    sent: list[tuple[str, list[str]]] = []
    notifier = Recorder("{{ dag_id }} {{ run_id }} is {{ reason }}", ["ops-{{ dag_id }}@example.com"])
    notifier.sent = sent  # the copy shares this list, so what it sent is visible here
    notifier({"dag_id": "etl", "run_id": "manual__1", "reason": "task_failure"})
    notifier({"dag_id": "etl", "run_id": "manual__2", "reason": "success"})
    assert sent == [
        ("etl manual__1 is task_failure", ["ops-etl@example.com"]),
        ("etl manual__2 is success", ["ops-etl@example.com"]),
    ]
    assert notifier.subject == "{{ dag_id }} {{ run_id }} is {{ reason }}"  # the definition stays a template


def test_a_notifier_uses_the_dag_template_environment() -> None:
    with DAG("macros", start_date=START, user_defined_macros={"team": "data-eng"}) as dag:
        EmptyOperator(task_id="a")
    sent: list[tuple[str, list[str]]] = []
    notifier = Recorder("{{ team }}", [])
    notifier.sent = sent
    notifier({"dag": dag})
    assert sent == [("data-eng", [])]


def test_an_undefined_name_is_a_render_error_naming_the_field() -> None:
    with pytest.raises(TemplateRenderError, match="notifier Recorder field 'subject'"):
        Recorder("{{ nope }}", [])({"dag_id": "x"})


def test_a_notifier_is_accepted_as_task_and_dag_callbacks() -> None:
    alert = FileNotifier(path="/tmp/x.log", message="{{ run_id }}")
    with DAG("cb", start_date=START, on_failure_callback=alert, on_success_callback=[alert]) as dag:
        task = EmptyOperator(
            task_id="a", on_failure_callback=alert, on_skipped_callback=alert, on_execute_callback=[alert]
        )
    assert dag.on_failure_callback == [alert] and dag.on_success_callback == [alert]
    assert task.on_failure_callback == [alert] and task.on_skipped_callback == [alert]


def test_on_skipped_callback_comes_from_default_args_and_is_checked() -> None:
    def hook(context: Mapping[str, Any]) -> None: ...

    with DAG("defaults", start_date=START, default_args={"on_skipped_callback": hook}):
        task = EmptyOperator(task_id="a")
    assert task.on_skipped_callback == [hook]
    with pytest.raises(InvalidArgumentError, match="on_skipped_callback"), DAG("bad", start_date=START):
        EmptyOperator(task_id="b", on_skipped_callback="not callable")


def test_file_notifier_appends_one_rendered_line(tmp_path: Path) -> None:
    path = tmp_path / "alerts.log"
    notifier = FileNotifier(path=str(tmp_path / "{{ dag_id }}.log"), message="{{ dag_id }}: {{ reason }}\nsecond")
    notifier({"dag_id": "alerts", "reason": "timed_out"})
    notifier({"dag_id": "alerts", "reason": "success"})
    assert path.read_text() == "alerts: timed_out second\nalerts: success second\n"


def test_log_notifier_prints_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    LogNotifier(message="run {{ run_id }} done")({"run_id": "r1"})
    assert capsys.readouterr().err == "[notify] run r1 done\n"


def test_bad_notifier_arguments_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="path must be a non-empty path"):
        FileNotifier(path="", message="x")
    with pytest.raises(InvalidArgumentError, match="message must be a string"):
        LogNotifier(message=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="one argument"):
        LogNotifier(message="x")()


def test_base_notifier_without_notify_says_what_to_implement() -> None:
    class Half(BaseNotifier):
        pass

    with pytest.raises(NotImplementedError, match="Half must implement notify"):
        Half()({})
