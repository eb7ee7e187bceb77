"""BashSensor: poke by running a bash command; exit code 0 means the condition holds (Airflow's rule)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagrunner.authoring.operators.bash import BashCommandError, BashOperator
from dagrunner.authoring.sensors.base import BaseSensorOperator
from dagrunner.errors import FailTask


class BashSensor(BaseSensorOperator, BashOperator):
    """Runs `bash_command` (templated, in `cwd` with `env`, as BashOperator does) at every poke.

    Exit code 0: done. Any other exit code: not yet, unless `retry_exit_code` is set; then only that code
    means not yet and any other non-zero code fails the task without retries (Airflow's BashSensor). The
    command's output goes to the try's log; nothing is pushed as XCom.
    """

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        if "skip_on_exit_code" in kwargs:  # BashOperator's; for a sensor a non-zero exit means "not yet"
            self._arg_check.fail("skip_on_exit_code", kwargs["skip_on_exit_code"], "no value: a BashSensor does "
                                 "not skip on an exit code (a non-zero one means not yet; see retry_exit_code)")  # fmt: skip
        super().__init__(
            bash_command=bash_command, env=env, append_env=append_env, cwd=cwd, output_encoding=output_encoding,
            skip_on_exit_code=None, **kwargs,
        )  # fmt: skip
        if retry_exit_code is not None and not (
            isinstance(retry_exit_code, int) and not isinstance(retry_exit_code, bool) and 1 <= retry_exit_code <= 255
        ):
            self._arg_check.fail("retry_exit_code", retry_exit_code, "an exit code 1-255, or None")
        self.retry_exit_code = retry_exit_code

    def poke(self, context: Mapping[str, Any]) -> bool:  # noqa: ARG002 - the command was rendered from it already
        try:
            self.run_command(self.bash_command)
        except BashCommandError as exc:
            if exc.exit_code is None:  # it could not run at all (a missing cwd): that is no "not yet"
                raise
            if self.retry_exit_code is not None and exc.exit_code != self.retry_exit_code:
                raise FailTask(
                    f"sensor {self.task_id!r}: bash command exited with {exc.exit_code}, not 0 (done) or "
                    f"retry_exit_code {self.retry_exit_code} (not yet)"
                ) from None
            print(f"[dagrunner] sensor {self.task_id!r}: bash command exited with {exc.exit_code}: not yet")
            return False
        return True
