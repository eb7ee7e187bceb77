"""No code but `persistence.audit` writes a state column.

The models refuse an ORM assignment at run time; this test finds the other ways a state could be written
without its audit row, by reading the package's source: an attribute assignment to `.state`,
`setattr(x, "state", ...)`, `set_committed_value(x, "state", ...)`, a Core `.values(state=...)` (or a
`{"state": ...}` given to `.values`), and raw SQL that sets a state column. Creating a row in its initial
state is not a change (`audit.record_created` audits it) and is allowed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import dagrunner

PACKAGE = Path(dagrunner.__file__).parent
THE_ONE_PATH = PACKAGE / "persistence" / "audit.py"
RAW_SQL = re.compile(r"\bupdate\b.*\bset\b.*\bstate\s*=", re.IGNORECASE | re.DOTALL)


def state_writes(source: str, filename: str) -> list[str]:
    """Every place in `source` that writes a state column other than by creating a row."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Attribute) and leaf.attr == "state" and isinstance(leaf.ctx, ast.Store):
                        found.append(f"{where}: assigns .state")
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("setattr", "set_committed_value") and _names_state(node.args[1:2]):
                found.append(f"{where}: {name}(..., 'state', ...)")
            if name == "values" and (
                any(k.arg == "state" for k in node.keywords)
                or any(isinstance(a, ast.Dict) and _names_state(a.keys) for a in node.args)
            ):
                found.append(f"{where}: .values(state=...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_SQL.search(node.value):
            found.append(f"{where}: raw SQL sets a state")
    return found


def _names_state(nodes: list[ast.expr | None]) -> bool:
    return any(isinstance(n, ast.Constant) and n.value == "state" for n in nodes)


def test_only_the_audit_module_writes_states() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != THE_ONE_PATH:
            offenders += state_writes(path.read_text(), str(path.relative_to(PACKAGE)))
    assert offenders == []


def test_the_scan_finds_each_kind_of_write() -> None:
    """The scan itself, on one example of each way round the audit path (so the test above can fail)."""
    source = """
ti.state = "success"
job.state += "x"
setattr(run, "state", "failed")
set_committed_value(ti, "state", "failed")
session.execute(update(SchedulerJob).values(ended_at=now, state=state))
session.execute(update(T).values({"state": "none"}))
session.execute(text("UPDATE task_instance SET state = 'failed' WHERE id = 1"))
ok = DagRun(state=DagRunState.QUEUED)  # creating a row in its initial state is fine
print(ti.state)  # reading is fine
"""
    found = state_writes(source, "example.py")
    assert [line.split(": ", 1)[1] for line in found] == [
        "assigns .state",
        "assigns .state",
        "setattr(..., 'state', ...)",
        "set_committed_value(..., 'state', ...)",
        ".values(state=...)",
        ".values(state=...)",
        "raw SQL sets a state",
    ]
