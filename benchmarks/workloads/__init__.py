"""The workloads by name: W1-W6 of issue 5, W7 of issue 12, W8 of issue 14."""

from __future__ import annotations

from benchmarks.workloads.api import ApiServing
from benchmarks.workloads.backfill import Backfill
from benchmarks.workloads.base import Workload
from benchmarks.workloads.events import EventLatency
from benchmarks.workloads.history import History
from benchmarks.workloads.parse import Parse
from benchmarks.workloads.scale import Scale
from benchmarks.workloads.triggered import Chain, Wide

WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (Wide(), Chain(), Backfill(), Parse(), History(), Scale(), EventLatency(), ApiServing())
}
