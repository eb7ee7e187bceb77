"""The live event lines the scheduler and `dags test` print: one line per run or task change."""

from __future__ import annotations

from datetime import UTC, datetime

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
    now = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    style = _STYLE.get(event.state, "")
    state = f"[{style}]{event.state}[/]" if style else event.state
    if event.kind.startswith("run"):
        what = "run created" if event.kind == "run.created" else "run"
        line = f"{now} [bold]{event.dag_id}[/] {event.run_id} {what}: {state}"
    else:
        mapped = f"[{event.map_index}]" if event.map_index >= 0 else ""
        line = f"{now} {event.dag_id}.{event.task_id}{mapped} {event.run_id}: {state}"
    if event.detail and event.state not in ("queued", "success"):
        line += f" [dim]({event.detail})[/]"
    console.print(line, markup=True, highlight=False)
