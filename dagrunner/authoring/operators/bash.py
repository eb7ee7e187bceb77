"""BashOperator: run a (templated) command with `bash -c`, stream its output, return its last line.

The command runs in a new session (its own process group) so that `on_kill` can stop the command and
everything it started, as a timeout must. Output goes to our stdout line by line as it arrives — the
runner captures stdout into the try's log — and the last line becomes the XCom, as in Airflow.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dagrunner.authoring.baseoperator import BaseOperator
from dagrunner.authoring.xcom_arg import XComArg
from dagrunner.errors import SkipTask

if TYPE_CHECKING:
    import jinja2


class BashCommandError(RuntimeError):
    """The command could not run or exited non-zero (a task failure, retried if tries are left)."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BashOperator(BaseOperator):
    """`bash_command` runs in `cwd` with `env` (or the worker's environment); exit code 99 skips."""

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env", "cwd")
    template_ext: ClassVar[Sequence[str]] = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | Sequence[int] | None = 99,
        output_encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        if isinstance(bash_command, XComArg):  # an upstream task computes the command; resolved at run time
            self.bash_command: Any = bash_command
        else:
            self.bash_command = check.string("bash_command", bash_command, what="a non-empty command string")
        if env is not None and not (
            isinstance(env, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        ):
            check.fail("env", env, "a dict of str to str, or None")
        self.env: dict[str, str] | None = None if env is None else dict(env)
        self.append_env = check.boolean("append_env", append_env)
        self.cwd = check.optional_string("cwd", cwd)
        self.skip_on_exit_code = _exit_codes(check, skip_on_exit_code)
        try:
            codecs.lookup(output_encoding)
        except (LookupError, TypeError):
            check.fail("output_encoding", output_encoding, "a Python codec name such as 'utf-8'")
        self.output_encoding = output_encoding
        self._process: subprocess.Popen[bytes] | None = None

    def render_template_fields(
        self,
        context: Mapping[str, Any],
        jinja_env: jinja2.Environment | None = None,
        *,
        pull: Callable[[str, str], Any] | None = None,
    ) -> None:
        """As every operator's, with `bash_command` a shell field: a value from the run's trigger that holds
        a shell metacharacter must be quoted (`| shell_quote`) or passed through `env=` (docs/security.md)."""
        from dagrunner.authoring.templating import render_templated_fields

        env = jinja_env or self.dag.get_template_env()
        render_templated_fields(self, context, env, pull=pull, shell_fields=("bash_command",))

    def execute(self, context: Mapping[str, Any]) -> str:  # noqa: ARG002 - the command was rendered from it already
        return self.run_command(self.bash_command)

    def run_command(self, command: str) -> str:
        """Run `command`; return its last output line; raise SkipTask / BashCommandError on exit codes."""
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise BashCommandError(f"task {self.task_id!r}: cwd {self.cwd!r} is not an existing directory")
        last_line = ""
        try:
            self._process = subprocess.Popen(
                ["bash", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self._environment(),
                start_new_session=True,
            )
            assert self._process.stdout is not None
            for raw in self._process.stdout:
                line = raw.decode(self.output_encoding, errors="backslashreplace").rstrip("\r\n")
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                last_line = line
            exit_code = self._process.wait()
        except BaseException:
            self.on_kill()  # interrupted (timeout signal, Ctrl-C): do not leave the command running
            raise
        finally:
            self._process = None
        if exit_code in self.skip_on_exit_code:
            raise SkipTask(f"task {self.task_id!r}: bash command exited with {exit_code}, which skips the task")
        if exit_code != 0:
            raise BashCommandError(
                f"task {self.task_id!r}: bash command failed with exit code {exit_code}", exit_code=exit_code
            )
        return last_line

    def on_kill(self) -> None:
        """Stop the command's whole process group: SIGTERM, then SIGKILL after 5 seconds."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def _environment(self) -> dict[str, str]:
        if self.env is None:
            return dict(os.environ)
        return {**os.environ, **self.env} if self.append_env else dict(self.env)


def _exit_codes(check: Any, value: Any) -> frozenset[int]:
    if value is None:
        return frozenset()
    items = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= 255 for i in items):
        check.fail("skip_on_exit_code", value, "an exit code 0-255, a list of them, or None")
    return frozenset(items)
