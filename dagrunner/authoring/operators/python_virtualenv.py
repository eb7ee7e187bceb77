"""Run a Python function in another interpreter: ExternalPythonOperator and PythonVirtualenvOperator.

As in Airflow, the function travels as its *source*: it must be self-contained (imports inside it), its
arguments and result travel pickled through files, and it may ask for the run-context values that make
sense outside the scheduler's process (ds, ts, run_id, the dates, params...). Its output goes to the task
log; its return value becomes the `return_value` XCom.

PythonVirtualenvOperator makes the virtualenv once (`python -m venv` + pip from the machine's index) and
caches it under `<state folder>/venvs` (or `venv_cache_path`), keyed by the requirements, the Python
version and the pip options, so later tries and runs start at once.

Deliberate differences from Airflow: the venv is always cached (Airflow caches only with
`venv_cache_path`); `serializer` accepts only "pickle" (cloudpickle/dill are not assumed on the machine);
dates handed to the function are plain `datetime`s, not pendulum's, so the interpreter needs nothing
installed; `expect_airflow` is accepted and ignored (nothing of dagrunner is needed in the interpreter).
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from dagrunner.authoring._settings import get_settings
from dagrunner.authoring.operators.python import PythonOperator, determine_kwargs
from dagrunner.errors import ExecutionError, SkipTask

#: Context values that are plain strings/numbers, handed over as they are (Airflow's serializable keys).
_PLAIN_KEYS = (
    "ds",
    "ds_nodash",
    "ts",
    "ts_nodash",
    "ts_nodash_with_tz",
    "run_id",
    "map_index",
    "task_instance_key_str",
    "expanded_ti_count",
    "test_mode",
)
#: Context values that are datetimes: handed over as plain aware `datetime`s.
_DATE_KEYS = (
    "logical_date",
    "data_interval_start",
    "data_interval_end",
    "prev_data_interval_start_success",
    "prev_data_interval_end_success",
    "prev_start_date_success",
    "prev_end_date_success",
)

_SCRIPT = """\
import pickle
import sys

{source}

with open(sys.argv[1], "rb") as _f:
    _call = pickle.load(_f)
virtualenv_string_args = _call["string_args"]
_result = {name}(*_call["args"], **_call["kwargs"])
with open(sys.argv[2], "wb") as _f:
    pickle.dump(_result, _f, protocol=4)
"""


class PythonInterpreterError(ExecutionError):
    """The function failed in the other interpreter, or the interpreter could not be used."""


def function_source(function: Callable[..., Any]) -> str:
    """The function's source, dedented, without its decorators (they belong to the DAG file, not the venv)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as exc:
        raise PythonInterpreterError(
            f"cannot read the source of {function!r} to run it in another interpreter: {exc}"
        ) from None
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(("def ", "async def ")))
    return "\n".join(lines[start:]) + "\n"


def serializable_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context values that can travel to another interpreter needing nothing installed."""
    found: dict[str, Any] = {k: context[k] for k in _PLAIN_KEYS if k in context}
    for key in _DATE_KEYS:
        value = context.get(key)
        if isinstance(value, datetime):
            found[key] = datetime.fromtimestamp(value.timestamp(), UTC)
        elif key in context:
            found[key] = None
    if "params" in context:
        found["params"] = json.loads(json.dumps(dict(context["params"]), default=str))
    return found


class _InterpreterOperator(PythonOperator):
    """What both operators share: run `python_callable` from its source in `self._interpreter()`."""

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs", "env_vars")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        string_args: Iterable[str] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        templates_exts: list[str] | None = None,  # noqa: ARG002 - Airflow's; template files are not read here
        expect_airflow: bool = True,  # noqa: ARG002 - see the module docstring
        skip_on_exit_code: int | Iterable[int] | None = None,
        serializer: str | None = None,
        use_dill: bool = False,
        show_return_value_in_logs: bool = True,
        env_vars: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            templates_dict=templates_dict,
            **kwargs,
        )
        check = self._arg_check
        if use_dill or serializer not in (None, "pickle"):
            check.fail("serializer", "dill" if use_dill else serializer, '"pickle" (or None); see the docstring')
        if getattr(python_callable, "__name__", "<lambda>") == "<lambda>":
            check.fail("python_callable", python_callable, "a function defined with def (its source is what runs)")
        self.string_args = [str(a) for a in string_args or ()]
        codes = [] if skip_on_exit_code is None else skip_on_exit_code
        self.skip_on_exit_code = frozenset([codes] if isinstance(codes, int) else codes)
        self.show_return_value_in_logs = check.boolean("show_return_value_in_logs", show_return_value_in_logs)
        self.env_vars = None if env_vars is None else check.mapping("env_vars", env_vars)
        self.inherit_env = check.boolean("inherit_env", inherit_env)

    def _interpreter(self) -> str:
        raise NotImplementedError

    def execute_callable(self, context: Mapping[str, Any]) -> Any:
        python = self._interpreter()
        available = {**serializable_context(context), "templates_dict": self.templates_dict}
        kwargs = determine_kwargs(self.python_callable, self.op_args, self.op_kwargs, available)
        _refuse_unavailable(self.python_callable, self.op_args, self.op_kwargs, available, context, self.task_id)
        call = {"args": list(self.op_args), "kwargs": kwargs, "string_args": self.string_args}
        with tempfile.TemporaryDirectory(prefix="dagrunner-python-") as tmp:
            folder = Path(tmp)
            (folder / "script.py").write_text(
                _SCRIPT.format(source=function_source(self.python_callable), name=self.python_callable.__name__)
            )
            (folder / "input.pickle").write_bytes(pickle.dumps(call, protocol=4))
            exit_code = self._run(
                [python, str(folder / "script.py"), str(folder / "input.pickle"), str(folder / "output.pickle")]
            )
            if exit_code in self.skip_on_exit_code:
                raise SkipTask(
                    f"task {self.task_id!r}: the function's interpreter exited with {exit_code}, which skips the task"
                )
            if exit_code != 0:
                raise PythonInterpreterError(
                    f"task {self.task_id!r}: {self.python_callable.__name__} failed in {python} (exit code "
                    f"{exit_code}); its traceback is in the log above"
                )
            result = pickle.loads((folder / "output.pickle").read_bytes())
        if self.show_return_value_in_logs:
            print(f"Returned value was: {result!r}")
        return result

    def _run(self, command: list[str]) -> int:
        env = {**(os.environ if self.inherit_env else {}), **(self.env_vars or {})}
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        assert process.stdout is not None
        try:
            for raw in process.stdout:
                sys.stdout.write(raw.decode(errors="backslashreplace"))
                sys.stdout.flush()
            return process.wait()
        except BaseException:
            process.kill()
            raise


def _refuse_unavailable(
    function: Callable[..., Any],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    available: Mapping[str, Any],
    context: Mapping[str, Any],
    task_id: str,
) -> None:
    """A parameter named after a context value that cannot travel (ti, dag_run...) is an error, not None."""
    wanted = set(determine_kwargs(function, args, kwargs, context)) - set(kwargs)
    missing = sorted(name for name in wanted - set(available) if name in context)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(function).parameters.values())
    if missing and not takes_any:
        raise PythonInterpreterError(
            f"task {task_id!r}: {function.__name__} asks for {', '.join(missing)}, which cannot be handed to "
            f"another interpreter; it can have: {', '.join(sorted(available))}"
        )


class ExternalPythonOperator(_InterpreterOperator):
    """Run the function with an existing interpreter: `python` is its path (e.g. a venv's bin/python)."""

    template_fields: ClassVar[Sequence[str]] = (*_InterpreterOperator.template_fields, "python")

    def __init__(self, *, python: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.python = self._arg_check.string("python", python)

    def _interpreter(self) -> str:
        if not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise PythonInterpreterError(
                f"task {self.task_id!r}: python={self.python!r} is not an executable file; give the path of "
                "an interpreter, e.g. /opt/venvs/etl/bin/python"
            )
        return self.python


class PythonVirtualenvOperator(_InterpreterOperator):
    """Run the function in a virtualenv with `requirements` installed, made once and cached."""

    template_fields: ClassVar[Sequence[str]] = (*_InterpreterOperator.template_fields, "requirements")

    def __init__(
        self,
        *,
        requirements: None | Iterable[str] | str = None,
        python_version: str | None = None,
        system_site_packages: bool = True,
        pip_install_options: list[str] | None = None,
        index_urls: None | Sequence[str] | str = None,
        venv_cache_path: None | os.PathLike[str] | str = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check = self._arg_check
        if isinstance(requirements, str):
            requirements = [line.strip() for line in requirements.splitlines() if line.strip()]
        self.requirements = sorted(str(r) for r in requirements or ())
        self.python_version = None if python_version is None else str(python_version)
        self.system_site_packages = check.boolean("system_site_packages", system_site_packages)
        self.pip_install_options = [str(o) for o in pip_install_options or ()]
        self.index_urls = [index_urls] if isinstance(index_urls, str) else list(index_urls or ())
        self.venv_cache_path = None if venv_cache_path is None else Path(venv_cache_path)

    def _interpreter(self) -> str:
        base = self._base_python()
        cache = self.venv_cache_path or get_settings().state_folder / "venvs"
        return str(cached_venv(cache, base, self.venv_key(base), self._pip_args(), self.system_site_packages))

    def _base_python(self) -> str:
        if self.python_version is None:
            return sys.executable
        found = shutil.which(f"python{self.python_version}")
        if found is None:
            raise PythonInterpreterError(
                f"task {self.task_id!r}: python_version={self.python_version!r} needs python{self.python_version} "
                "on PATH, and there is none"
            )
        return found

    def _pip_args(self) -> list[str]:
        index = [f"--index-url={self.index_urls[0]}"] if self.index_urls else []
        index += [f"--extra-index-url={url}" for url in self.index_urls[1:]]
        return [*index, *self.pip_install_options, *self.requirements]

    def venv_key(self, base_python: str) -> str:
        """The cache key: the interpreter's version and every input of the pip install."""
        version = subprocess.run(
            [base_python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
        ).stdout.strip()
        facts = {"python": version, "pip": self._pip_args(), "system_site_packages": self.system_site_packages}
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def cached_venv(cache: Path, base_python: str, key: str, pip_args: list[str], system_site_packages: bool) -> Path:
    """`<cache>/<key>/bin/python`, making the venv first if needed. Built beside and renamed into place, under
    a lock, so concurrent tasks wait for one build and a failed build leaves nothing half-made behind."""
    target = cache / key
    python = target / "bin" / "python"
    if python.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists():  # another task built it while this one waited
            return python
        building = Path(tempfile.mkdtemp(prefix=f"{key}.building-", dir=cache))
        try:
            _build_venv(building, base_python, pip_args, system_site_packages)
            # venvs hold their own path in scripts; python itself does not care, and we run only python.
            building.rename(target)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return python


def _build_venv(folder: Path, base_python: str, pip_args: list[str], system_site_packages: bool) -> None:
    print(f"Creating a virtualenv for {' '.join(pip_args) or 'no requirements'} (cached for later runs)")
    venv = [base_python, "-m", "venv", str(folder)] + (["--system-site-packages"] if system_site_packages else [])
    _checked(venv, "python -m venv")
    if pip_args:
        _checked([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", *pip_args], "pip install")


def _checked(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    sys.stdout.write(done.stdout + done.stderr)
    if done.returncode != 0:
        raise PythonInterpreterError(f"{what} failed (exit code {done.returncode}): {done.stderr.strip()[-500:]}")
