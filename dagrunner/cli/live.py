"""The live event lines the scheduler and `dags test` print: one line per run or task change."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from rich.markup import escape

from dagrunner.cli.render import console
from dagrunner.scheduling.scheduler import SchedulerEvent

_STYLE = {
    "success": "green",
    "failed": "bold red",
    "upstream_failed": "red",
    "up_for_retry": "yellow",
    "skipped": "magenta",
    "running": "cyan",
    "queued": "dim",
    "scheduled": "dim",
}


def print_event(event: SchedulerEvent) -> None:
    """One line per change. Styled through rich on a terminal; written plainly otherwise (a log file or
    a pipe), since rich's markup handling cost more per line than deciding the change did."""
    now = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    if event.kind.startswith("run"):
        what = "run created" if event.kind == "run.created" else "run"
        head, bold = f"{event.run_id} {what}: ", True
        name = event.dag_id
    else:
        mapped = f"[{event.map_index}]" if event.map_index >= 0 else ""
        head, bold = f"{event.run_id}: ", False
        name = f"{event.dag_id}.{event.task_id}{mapped}"
    detail = event.detail if event.detail and event.state not in ("queued", "success") else ""
    if not console.is_terminal:
        sys.stdout.write(f"{now} {name} {head}{event.state}{f' ({detail})' if detail else ''}\n")
        sys.stdout.flush()
        return
    style = _STYLE.get(event.state, "")
    state = f"[{style}]{event.state}[/]" if style else event.state
    shown = f"[bold]{escape(name)}[/]" if bold else escape(name)
    line = f"{now} {shown} {escape(head)}{state}"
    if detail:
        line += f" [dim]({escape(detail)})[/]"
    console.print(line, markup=True, highlight=False)
