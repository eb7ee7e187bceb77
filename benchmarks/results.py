"""Results: per-repetition figures of one workload on one database, their summary, and the JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.spec import Metric
from benchmarks.stats import median

OK, FAILED, NOT_AVAILABLE = "ok", "failed", "not available"


@dataclass
class Repetition:
    index: int
    started_at: str
    duration_s: float = 0.0
    figures: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class MetricSummary:
    metric: Metric
    values: list[float]
    target: float | None
    met: bool | None  # None: no target, or --quick (sizes differ from the targets')

    @property
    def median(self) -> float:
        return median(self.values)

    def as_dict(self) -> dict[str, Any]:
        target = self.metric.target
        return {
            "label": self.metric.label,
            "unit": self.metric.unit,
            "values": self.values,
            "median": self.median,
            "min": min(self.values),
            "max": max(self.values),
            "target": self.target,
            "target_op": target.op if target else None,
            "met": self.met,
        }


@dataclass
class WorkloadResult:
    workload: str
    title: str
    db: str
    metrics: tuple[Metric, ...]
    quick: bool
    status: str = OK
    error: str | None = None
    repetitions: list[Repetition] = field(default_factory=list)

    def summaries(self) -> list[MetricSummary]:
        """One summary per metric that every successful repetition measured."""
        good = [r for r in self.repetitions if r.error is None]
        out = []
        for metric in self.metrics:
            values = [r.figures[metric.key] for r in good if metric.key in r.figures]
            if not values or len(values) != len(good):
                continue
            goal = metric.target.for_db(self.db) if metric.target else None
            met = None if metric.target is None or self.quick else metric.target.met(median(values), self.db)
            out.append(MetricSummary(metric, values, goal, met))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "title": self.title,
            "db": self.db,
            "status": self.status,
            "error": self.error,
            "metrics": {s.metric.key: s.as_dict() for s in self.summaries()},
            "repetitions": [rep.__dict__ for rep in self.repetitions],
        }


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n")
    tmp.replace(path)
