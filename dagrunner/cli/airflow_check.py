"""`dagrunner dags check-airflow`: which Airflow imports and names in a DAG file dagrunner has, and where.

The file is read with `ast`, never imported (it imports Airflow, which need not be installed). Each name
imported from an `airflow...` module is looked up in the dagrunner modules that `MODULES` maps that
Airflow module to, under the same name first, then under the name `RENAMES` gives. The look-up asks the
dagrunner package itself, so a name that lands in dagrunner is found without touching this table; the
table only says where to look. Attribute uses of an imported name (`task.virtualenv`, `TriggerRule.ALWAYS`)
are checked on the dagrunner object too.

`rewrite_imports` replaces the Airflow import lines of a file, and nothing else, with the dagrunner ones:
the port promise, "change the imports, keep the DAG".
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from dagrunner.errors import DagRunnerError

# `dagrunner.timetables.custom` before `dagrunner.timetables`: its `Timetable` is Airflow's authoring
# interface (the one a DAG subclasses); `dagrunner.timetables.Timetable` is the engine's.
TIMETABLES = ("dagrunner.timetables.custom", "dagrunner.timetables")
TOP = ("dagrunner", "dagrunner.operators", "dagrunner.sensors", *TIMETABLES)
# Operator and sensor modules also held helpers that live at the top here (Airflow 2's
# `airflow.operators.python.get_current_context`), hence the fallback to `dagrunner`.
OPERATORS = ("dagrunner.operators", "dagrunner")
SENSORS = ("dagrunner.sensors", "dagrunner")

# Airflow module (a trailing ".*" also matches its submodules) -> the dagrunner modules to look in, in order.
# The first matching row wins, so the exact rows come before the ".*" ones.
MODULES: Sequence[tuple[str, tuple[str, ...]]] = (
    ("airflow", TOP),
    ("airflow.sdk", TOP),
    ("airflow.sdk.*", TOP),
    ("airflow.decorators", TOP),
    ("airflow.decorators.*", TOP),
    ("airflow.models", TOP),
    ("airflow.models.*", TOP),
    ("airflow.exceptions", ("dagrunner", "dagrunner.errors", "dagrunner.sensors")),
    ("airflow.utils.trigger_rule", ("dagrunner",)),
    ("airflow.utils.weight_rule", ("dagrunner",)),
    ("airflow.utils.task_group", ("dagrunner",)),
    ("airflow.utils.edgemodifier", ("dagrunner",)),
    ("airflow.utils.helpers", ("dagrunner",)),  # chain, cross_downstream (Airflow 2)
    ("airflow.utils.context", ("dagrunner",)),  # Context, get_current_context (Airflow 2)
    ("airflow.utils.weekday", TOP),
    ("airflow.providers.standard.utils.*", TOP),  # WeekDay
    ("airflow.datasets", ("dagrunner",)),
    ("airflow.assets", ("dagrunner",)),
    ("airflow.operators.*", OPERATORS),
    ("airflow.providers.standard.operators.*", OPERATORS),
    ("airflow.sensors.*", SENSORS),
    ("airflow.providers.standard.sensors.*", SENSORS),
    ("airflow.timetables.*", (*TIMETABLES, "dagrunner")),
    ("airflow.plugins_manager", ("dagrunner.loading.plugins",)),  # AirflowPlugin (registers timetables)
    ("airflow.notifications.*", ("dagrunner", "dagrunner.notifications")),
    ("airflow.triggers.*", ("dagrunner.triggers",)),
    ("airflow.providers.standard.triggers.*", ("dagrunner.triggers",)),
    ("airflow.hooks.*", ("dagrunner",)),
)

# Airflow name -> (dagrunner module, dagrunner name), used when dagrunner has no object of the same name:
# our own spelling of the same thing, imported `as` the Airflow name so the DAG's code stays unchanged.
RENAMES: dict[str, tuple[str, str]] = {
    "AirflowSkipException": ("dagrunner", "SkipTask"),
    "AirflowFailException": ("dagrunner", "FailTask"),
    "AirflowSensorTimeout": ("dagrunner.sensors", "SensorTimeout"),
    "AirflowException": ("dagrunner.errors", "DagRunnerError"),
    "Dataset": ("dagrunner", "Asset"),  # Airflow 2's name for an asset
    "DatasetAlias": ("dagrunner", "AssetAlias"),
    "DummyOperator": ("dagrunner.operators", "EmptyOperator"),  # Airflow 2's name for EmptyOperator
}

_MISSING = object()


@dataclass(frozen=True)
class Finding:
    """One Airflow name a file uses, and the dagrunner object that stands for it (None: not there yet)."""

    line: int
    airflow: str  # what the file wrote: "airflow.sdk.DAG", or an attribute use such as "task.virtualenv"
    bound_as: str  # the name the file binds (after `as`), or the attribute use itself
    target_module: str | None = None
    target_name: str | None = None

    @property
    def found(self) -> bool:
        return self.target_module is not None

    @property
    def is_import(self) -> bool:
        return self.airflow.startswith("airflow")

    def import_line(self) -> str | None:
        """The dagrunner import for this name (None for attribute uses and names not there yet)."""
        if not self.found or not self.is_import:
            return None
        alias = "" if self.target_name == self.bound_as else f" as {self.bound_as}"
        return f"from {self.target_module} import {self.target_name}{alias}"

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "airflow": self.airflow,
            "found": self.found,
            "dagrunner": f"{self.target_module}.{self.target_name}" if self.found else None,
            "import": self.import_line(),
        }


def modules_for(airflow_module: str) -> tuple[str, ...]:
    """The dagrunner modules an Airflow module's names are looked up in; () when there is none yet."""
    for pattern, targets in MODULES:
        if pattern == airflow_module or (pattern.endswith(".*") and airflow_module.startswith(pattern[:-2] + ".")):
            return targets
    return ()


def resolve(airflow_module: str, name: str) -> tuple[str, str] | None:
    """(dagrunner module, name) for `from airflow_module import name`, or None when dagrunner lacks it."""
    for module in modules_for(airflow_module):
        if _lookup(module, name) is not _MISSING:
            return module, name
    renamed = RENAMES.get(name)
    if renamed and modules_for(airflow_module) and _lookup(*renamed) is not _MISSING:
        return renamed
    return None


def _lookup(module: str, name: str) -> Any:
    try:
        return getattr(import_module(module), name, _MISSING)
    except ImportError:  # an optional extra (e.g. the broker clients) that is not installed
        return _MISSING


def check_source(source: str, filename: str = "<file>") -> list[Finding]:
    """Every Airflow import and attribute use of an Airflow name in `source`, in line order."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise DagRunnerError(
            f"{filename}:{exc.lineno}: not valid Python ({exc.msg}); fix it, then check again"
        ) from exc
    findings: list[Finding] = []
    bound: dict[str, Finding] = {}
    for node in ast.walk(tree):
        for finding in _import_findings(node):
            findings.append(finding)
            bound[finding.bound_as] = finding
    findings.extend(_attribute_findings(tree, bound))
    return sorted(findings, key=lambda f: (f.line, f.airflow))


def _import_findings(node: ast.AST) -> Iterator[Finding]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_airflow(node.module or ""):
        module = node.module or ""
        for alias in node.names:
            if alias.name == "*":
                yield Finding(node.lineno, f"{module}.*", "*")
                continue
            target = resolve(module, alias.name)
            bound_as = alias.asname or alias.name
            yield Finding(node.lineno, f"{module}.{alias.name}", bound_as, *(target or (None, None)))
    elif isinstance(node, ast.Import):
        for alias in node.names:
            if _is_airflow(alias.name):  # `import airflow.x`: its names are used as attributes; not rewritable
                yield Finding(node.lineno, alias.name, alias.asname or alias.name.split(".")[0])


def _attribute_findings(tree: ast.AST, bound: dict[str, Finding]) -> Iterator[Finding]:
    seen: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        owner = bound.get(node.value.id)
        use = f"{node.value.id}.{node.attr}"
        if owner is None or not owner.found or use in seen:
            continue
        seen.add(use)
        assert owner.target_module and owner.target_name  # found
        has = _lookup(owner.target_module, owner.target_name)
        if getattr(has, node.attr, _MISSING) is _MISSING:
            yield Finding(node.lineno, use, use)
        else:
            yield Finding(node.lineno, use, use, owner.target_module, f"{owner.target_name}.{node.attr}")


def _is_airflow(module: str) -> bool:
    return module == "airflow" or module.startswith("airflow.")


def rewrite_imports(source: str, filename: str = "<file>") -> str:
    """`source` with each `from airflow... import ...` statement replaced by the dagrunner imports of its
    names, and nothing else changed. Raises when a name has no dagrunner equivalent yet."""
    findings = check_source(source, filename)
    missing = [f for f in findings if not f.found]
    if missing:
        names = ", ".join(f"{f.airflow} (line {f.line})" for f in missing)
        raise DagRunnerError(f"{filename}: no dagrunner equivalent yet for {names}; see `dagrunner dags check-airflow`")
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source, filename)
    statements = [
        n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0 and _is_airflow(n.module or "")
    ]
    for node in sorted(statements, key=lambda n: n.lineno, reverse=True):  # bottom up: line numbers stay valid
        indent = " " * node.col_offset
        new = [f"{indent}{line}\n" for line in _imports_of(node.module or "", node.names)]
        end = node.end_lineno or node.lineno
        lines[node.lineno - 1 : end] = new
    return "".join(lines)


def _imports_of(module: str, aliases: Sequence[ast.alias]) -> list[str]:
    """One `from dagrunner... import a, b as c` line per dagrunner module, names in the file's order."""
    by_module: dict[str, list[str]] = {}
    for alias in aliases:
        target = resolve(module, alias.name)
        assert target is not None  # rewrite_imports checked every name first
        bound_as = alias.asname or alias.name
        by_module.setdefault(target[0], []).append(target[1] + ("" if target[1] == bound_as else f" as {bound_as}"))
    return [f"from {target} import {', '.join(names)}" for target, names in by_module.items()]
