"""Assets and asset conditions: "run when these data were updated" (Airflow 3's names and semantics).

`Asset(name, uri=..., group=..., extra=..., watchers=[...])` names a piece of data; a task updates it
through `outlets=[asset]`, a broker message through an `AssetWatcher`, a person with `dagrunner assets
emit`. A DAG scheduled on assets runs when its condition holds over the assets updated since its last
asset-triggered run:

    schedule=[a, b]          every one of them (AssetAll)
    schedule=a | b           any of them (AssetAny)
    schedule=a & (b | c)     nesting as written

An `AssetAlias(name)` stands for whichever assets a task adds events to through it at run time
(`outlet_events[alias].add(Asset("x"))`); a condition on an alias holds once an event came through it.

Conditions are pure: `condition.evaluate(satisfied)` takes the names of the assets updated (and, for
aliases, `ALIAS_PREFIX + alias name`) and answers; `serialize()` / `deserialize_condition()` store them as
JSON in the serialized DAG. This is the timetables layer: no database, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dagrunner.errors import InvalidScheduleError
from dagrunner.timetables.simple import NullTimetable

#: How an alias appears among the satisfied keys `evaluate` takes (asset names are used as they are).
ALIAS_PREFIX = "alias:"
_MAX_NAME = 1500


@dataclass(frozen=True)
class AssetWatcher:
    """Turns messages from a broker into events of the asset it is attached to (run by part B's host).

    `trigger` is a message trigger (`dagrunner.triggers.RedisStreamTrigger`, ...): a pure config object.
    """

    name: str
    trigger: Any

    def serialize(self) -> dict[str, Any]:
        """`{"name", "trigger"}`: the trigger's own `serialize()` when it has one, else its class name."""
        serialize = getattr(self.trigger, "serialize", None)
        trigger = serialize() if callable(serialize) else {"type": type(self.trigger).__name__}
        return {"name": self.name, "trigger": trigger}


class BaseAsset:
    """An asset condition: an asset, an alias, or any/all of conditions. Combine with `|` and `&`."""

    def __or__(self, other: object) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def __and__(self, other: object) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def evaluate(self, satisfied: set[str]) -> bool:
        """Whether the condition holds when exactly the assets (and aliases) in `satisfied` were updated."""
        raise NotImplementedError

    def iter_assets(self) -> Iterator[Asset]:
        """Every asset the condition names, depth first (repeats included)."""
        raise NotImplementedError

    def iter_aliases(self) -> Iterator[AssetAlias]:
        raise NotImplementedError

    def serialize(self) -> dict[str, Any]:
        raise NotImplementedError

    def words(self) -> str:
        """The condition in words, as `dags list` shows it inside "when ... updated"."""
        raise NotImplementedError


class Asset(BaseAsset):
    """A named piece of data. `name` or `uri` alone is enough: the other defaults to it (Airflow 3)."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str = "asset",
        extra: Mapping[str, Any] | None = None,
        watchers: Sequence[AssetWatcher] | None = None,
    ) -> None:
        if name is None and uri is None:
            raise InvalidScheduleError("Asset() needs a name or a uri, e.g. Asset('warehouse.daily_sales')")
        self.name: str = _checked("name", name if name is not None else uri)
        self.uri: str = _checked_uri(uri if uri is not None else self.name)
        self.group: str = _checked("group", group)
        self.extra: dict[str, Any] = _json_dict(f"Asset {self.name!r} extra", extra)
        self.watchers: list[AssetWatcher] = list(watchers or [])
        for watcher in self.watchers:
            if not isinstance(watcher, AssetWatcher):
                raise InvalidScheduleError(
                    f"Asset {self.name!r}: watchers must be AssetWatcher(name, trigger) objects, got {watcher!r}"
                )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and (self.name, self.uri) == (other.name, other.uri)

    def __hash__(self) -> int:
        return hash(("asset", self.name, self.uri))

    def __repr__(self) -> str:
        shown = f"{self.name!r}" if self.uri == self.name else f"{self.name!r}, uri={self.uri!r}"
        return f"Asset({shown})"

    def evaluate(self, satisfied: set[str]) -> bool:
        return self.name in satisfied

    def iter_assets(self) -> Iterator[Asset]:
        yield self

    def iter_aliases(self) -> Iterator[AssetAlias]:
        return iter(())

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "asset", "name": self.name, "uri": self.uri, "group": self.group}
        data["extra"] = dict(self.extra)
        data["watchers"] = [w.serialize() for w in self.watchers]
        return data

    def words(self) -> str:
        return self.name


class AssetAlias(BaseAsset):
    """A name a task resolves to real assets at run time (`outlet_events[alias].add(Asset(...))`)."""

    def __init__(self, name: str, *, group: str = "asset") -> None:
        self.name: str = _checked("alias name", name)
        self.group: str = _checked("group", group)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetAlias) and self.name == other.name

    def __hash__(self) -> int:
        return hash(("alias", self.name))

    def __repr__(self) -> str:
        return f"AssetAlias({self.name!r})"

    @property
    def key(self) -> str:
        """How this alias appears among the satisfied keys."""
        return ALIAS_PREFIX + self.name

    def evaluate(self, satisfied: set[str]) -> bool:
        return self.key in satisfied

    def iter_assets(self) -> Iterator[Asset]:
        return iter(())

    def iter_aliases(self) -> Iterator[AssetAlias]:
        yield self

    def serialize(self) -> dict[str, Any]:
        return {"type": "alias", "name": self.name, "group": self.group}

    def words(self) -> str:
        return f"alias {self.name}"


class _Combined(BaseAsset):
    joiner: str

    def __init__(self, *objects: BaseAsset) -> None:
        if not objects:
            raise InvalidScheduleError(f"{type(self).__name__}() needs at least one asset or alias")
        for obj in objects:
            if not isinstance(obj, BaseAsset):
                raise InvalidScheduleError(
                    f"{type(self).__name__}: {obj!r} is not an Asset, an AssetAlias or a condition of them"
                )
        self.objects: tuple[BaseAsset, ...] = tuple(objects)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.objects == other.objects  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.objects))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"

    def iter_assets(self) -> Iterator[Asset]:
        for obj in self.objects:
            yield from obj.iter_assets()

    def iter_aliases(self) -> Iterator[AssetAlias]:
        for obj in self.objects:
            yield from obj.iter_aliases()

    def serialize(self) -> dict[str, Any]:
        return {"type": self.kind, "objects": [obj.serialize() for obj in self.objects]}

    kind: str

    def words(self) -> str:
        parts = [f"({obj.words()})" if isinstance(obj, _Combined) and len(obj.objects) > 1 else obj.words()
                 for obj in self.objects]  # fmt: skip
        return f" {self.joiner} ".join(parts)


class AssetAny(_Combined):
    """Holds when any of its conditions holds (`a | b`)."""

    kind = "any"
    joiner = "or"

    def __or__(self, other: object) -> AssetAny:  # a | b | c stays flat
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(*self.objects, other)

    def evaluate(self, satisfied: set[str]) -> bool:
        return any(obj.evaluate(satisfied) for obj in self.objects)


class AssetAll(_Combined):
    """Holds when every one of its conditions holds (`a & b`, `schedule=[a, b]`)."""

    kind = "all"
    joiner = "and"

    def __and__(self, other: object) -> AssetAll:  # a & b & c stays flat
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(*self.objects, other)

    def evaluate(self, satisfied: set[str]) -> bool:
        return all(obj.evaluate(satisfied) for obj in self.objects)


def deserialize_condition(data: Mapping[str, Any]) -> BaseAsset:
    """The condition `serialize()` described (watchers come back with their serialized trigger dict: the
    live trigger objects exist only where the DAG file is imported)."""
    kind = data.get("type") if isinstance(data, Mapping) else None
    try:
        if kind == "asset":
            watchers = [AssetWatcher(w["name"], w.get("trigger")) for w in data.get("watchers", [])]
            return Asset(data["name"], data["uri"], group=data.get("group", "asset"), extra=data.get("extra"),
                         watchers=watchers)  # fmt: skip
        if kind == "alias":
            return AssetAlias(data["name"], group=data.get("group", "asset"))
        if kind in ("any", "all"):
            objects = [deserialize_condition(obj) for obj in data["objects"]]
            return AssetAny(*objects) if kind == "any" else AssetAll(*objects)
    except (KeyError, TypeError) as error:
        raise InvalidScheduleError(f"serialized asset condition {data!r} is malformed: {error!r}") from None
    raise InvalidScheduleError(f"serialized asset condition {data!r} has unknown type {kind!r}")


def as_condition(schedule: object) -> BaseAsset | None:
    """The condition a `schedule=` value means when it is about assets (None when it is not): a single
    asset, alias or condition, or a non-empty list of them (all of them, as in Airflow)."""
    if isinstance(schedule, BaseAsset):
        return schedule
    if isinstance(schedule, list | tuple) and schedule and all(isinstance(s, BaseAsset) for s in schedule):
        return schedule[0] if len(schedule) == 1 else AssetAll(*schedule)
    if isinstance(schedule, list | tuple) and any(isinstance(s, BaseAsset) for s in schedule):
        wrong = next(s for s in schedule if not isinstance(s, BaseAsset))
        raise InvalidScheduleError(f"schedule list holds {wrong!r}, which is not an Asset or an AssetAlias")
    return None


def describe_condition(condition: BaseAsset) -> str:
    """E.g. "when orders.placed and (a or b) are updated"."""
    plural = isinstance(condition, AssetAll) and len(condition.objects) > 1
    return f"when {condition.words()} {'are' if plural else 'is'} updated"


class AssetTriggeredTimetable(NullTimetable):
    """`schedule=<asset condition>`: runs come from asset events, never from the clock (so, for the clock,
    a NullTimetable). A manual run is `[X, X]` as with trigger timetables."""

    kind = "asset"

    def __init__(self, condition: BaseAsset, timezone: str | None = None) -> None:
        super().__init__(timezone)
        self.condition = condition

    @property
    def description(self) -> str:
        return describe_condition(self.condition)

    def serialize(self) -> dict[str, Any]:
        return {"type": self.kind, "timezone": self.timezone, "condition": self.condition.serialize()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> AssetTriggeredTimetable:
        return cls(deserialize_condition(data["condition"]), data.get("timezone"))


def task_assets(objects: Iterable[object] | None, what: str) -> list[Asset | AssetAlias]:
    """A task's `outlets=` / `inlets=` checked: assets and aliases only."""
    found: list[Asset | AssetAlias] = []
    for obj in objects or []:
        if not isinstance(obj, Asset | AssetAlias):
            raise InvalidScheduleError(f"{what} must hold Asset or AssetAlias objects, got {obj!r}")
        found.append(obj)
    return found


def _checked(what: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_NAME:
        raise InvalidScheduleError(
            f"asset {what} {value!r} must be a non-empty string of at most {_MAX_NAME} characters"
        )
    return value


def _checked_uri(uri: object) -> str:
    text = _checked("uri", uri)
    if "://" in text and not urlsplit(text).scheme:
        raise InvalidScheduleError(f"asset uri {text!r} is not a URI (scheme://...)")
    return text


def _json_dict(what: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(value or {})
    try:
        json.dumps(data)
    except (TypeError, ValueError) as error:
        raise InvalidScheduleError(f"{what} {data!r} is not JSON: {error}") from None
    return data
