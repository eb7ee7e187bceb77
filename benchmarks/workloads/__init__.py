"""The six workloads of issue 5, by name."""

from __future__ import annotations

from benchmarks.workloads.backfill import Backfill
from benchmarks.workloads.base import Workload
from benchmarks.workloads.history import History
from benchmarks.workloads.parse import Parse
from benchmarks.workloads.scale import Scale
from benchmarks.workloads.triggered import Chain, Wide

WORKLOADS: dict[str, Workload] = {w.name: w for w in (Wide(), Chain(), Backfill(), Parse(), History(), Scale())}
