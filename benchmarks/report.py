"""The table printed at the end of a run (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from benchmarks.results import OK, WorkloadResult


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def render(results: list[WorkloadResult], console: Console, *, quick: bool) -> None:
    title = "dagrunner benchmarks" + (" (--quick: small sizes, targets not judged)" if quick else "")
    table = Table(title=title, show_lines=False)
    for name, justify in [("workload", "left"), ("db", "left"), ("metric", "left"), ("median", "right"),
                          ("min", "right"), ("max", "right"), ("repetitions", "left"), ("target", "right"),
                          ("met?", "center")]:  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for result in results:
        if result.status != OK:
            colour = "yellow" if result.status == "not available" else "bold red"
            first_line = (result.error or "").strip().splitlines()[0] if result.error else ""
            table.add_row(result.workload, result.db, f"[{colour}]{result.status.upper()}[/]: {first_line}",
                          "", "", "", "", "", "")  # fmt: skip
        for summary in result.summaries():
            metric = summary.metric
            target = f"{metric.target.op} {fmt(summary.target)}" if metric.target else ""
            met = {True: "[green]yes[/]", False: "[red]NO[/]", None: ""}[summary.met]
            table.add_row(
                result.workload, result.db, f"{metric.key} ({metric.unit})", fmt(summary.median),
                fmt(min(summary.values)), fmt(max(summary.values)), ", ".join(fmt(v) for v in summary.values),
                target, met,
            )  # fmt: skip
        table.add_section()
    console.print(table)
    for result in results:
        if result.status != OK and result.error:
            console.print(f"[bold red]{result.workload} on {result.db}: {result.status}[/]\n{result.error}\n")
