"""What a try sees of assets (#12 part A), with Airflow 3's names: `outlet_events`, `inlets`,
`inlet_events`, `triggering_asset_events`; and the events its success records.

    @task(outlets=[sales])
    def load(outlet_events):
        outlet_events[sales].extra = {"rows": 42}          # or .extra["rows"] = 42
        outlet_events[landing].add(Asset("s3://x/2026-03-01"), extra={"rows": 42})   # an alias

The events are collected into the try's outcome (`OutletAssetEvent`, picklable: it crosses from the task
process to the worker) only when the task succeeds, and recorded by `recording.finish_try` in the
transaction that records the success. A task without outlets pays nothing: no object, no query.
Events read for a try (`AssetEventView`) come from `begin`, in the transaction that starts it, and only
for an asset-triggered run or a task with inlets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dagrunner.timetables.assets import Asset, AssetAlias, BaseAsset


@dataclass(frozen=True)
class AssetEventView:
    """One asset event as a task reads it (Airflow 3's AssetEvent attribute names)."""

    id: int
    asset: Asset
    extra: Mapping[str, Any]
    timestamp: datetime
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int = -1
    source: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.asset.name

    @property
    def uri(self) -> str:
        return self.asset.uri


@dataclass(frozen=True)
class AssetEventsRead:
    """What `begin` read for a try: asset name -> events, oldest first."""

    triggering: Mapping[str, tuple[AssetEventView, ...]] = field(default_factory=dict)
    inlets: Mapping[str, tuple[AssetEventView, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class OutletAssetEvent:
    """An event a successful try records: of `asset` (a name), with `extra`, added through `alias`."""

    asset: str
    extra: Mapping[str, Any]
    alias: str | None = None


class OutletEventAccessor:
    """`outlet_events[asset]`: set `.extra`; for an alias, `.add(Asset(...), extra=...)`."""

    def __init__(self, key: BaseAsset) -> None:
        self.key = key
        self.extra: dict[str, Any] = {}
        self.added: list[tuple[Asset, dict[str, Any]]] = []

    def add(self, asset: Asset, extra: Mapping[str, Any] | None = None) -> None:
        if not isinstance(asset, Asset):
            raise TypeError(f"outlet_events[{self.key!r}].add() takes an Asset, got {asset!r}")
        self.added.append((asset, dict(extra or {})))


class OutletEventAccessors:
    """`outlet_events`: one accessor per asset or alias, made on first use (by object or by name)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], OutletEventAccessor] = {}

    def __getitem__(self, key: BaseAsset | str) -> OutletEventAccessor:
        obj: BaseAsset = Asset(key) if isinstance(key, str) else key
        if not isinstance(obj, Asset | AssetAlias):
            raise TypeError(f"outlet_events takes an Asset, an AssetAlias or an asset name, got {key!r}")
        ident = ("alias" if isinstance(obj, AssetAlias) else "asset", obj.name)
        if ident not in self._by_key:
            self._by_key[ident] = OutletEventAccessor(obj)
        return self._by_key[ident]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, Asset | AssetAlias) and (
            ("alias" if isinstance(key, AssetAlias) else "asset", key.name) in self._by_key
        )

    def events_for(self, outlets: Iterable[Asset | AssetAlias]) -> tuple[OutletAssetEvent, ...]:
        """The events the task's outlets record: one per asset (with its extra), one per asset added
        through an alias."""
        found: list[OutletAssetEvent] = []
        for outlet in outlets:
            accessor = self[outlet]
            if isinstance(outlet, AssetAlias):
                found += [OutletAssetEvent(a.name, extra, outlet.name) for a, extra in accessor.added]
            else:
                found.append(OutletAssetEvent(outlet.name, dict(accessor.extra)))
        return tuple(found)


class InletEventsAccessor(Mapping[Any, tuple[AssetEventView, ...]]):
    """`inlet_events[asset]` (or by name): the inlet's events, newest last."""

    def __init__(self, events: Mapping[str, tuple[AssetEventView, ...]]) -> None:
        self._events = dict(events)

    def __getitem__(self, key: Any) -> tuple[AssetEventView, ...]:
        name = key.name if isinstance(key, Asset) else key
        return self._events.get(name, ())

    def __iter__(self) -> Any:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)


def asset_context(inlets: list[Asset | AssetAlias], read: AssetEventsRead | None) -> dict[str, Any]:
    """The four context keys."""
    read = read or AssetEventsRead()
    return {
        "outlet_events": OutletEventAccessors(),
        "inlets": list(inlets),
        "inlet_events": InletEventsAccessor(read.inlets),
        "triggering_asset_events": {name: list(events) for name, events in read.triggering.items()},
    }
