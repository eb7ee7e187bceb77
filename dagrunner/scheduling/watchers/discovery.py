"""Which watchers the DAGs declare, with their LIVE triggers (callables included).

The DAG files to look at come from the database: files whose serialized DAGs mention a watcher (the
scheduler's parse wrote them). Each is imported here, in the triggerer process (never in the scheduler),
and its assets are walked: asset schedules, task outlets and inlets, and assets at the file's top level
(an asset with a watcher that no DAG uses gets its messages dead-lettered as "unknown asset").
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dagrunner.authoring.triggers import MessageTrigger
from dagrunner.execution.dag_cache import DagCache, module_name
from dagrunner.persistence.models import DagFile
from dagrunner.scheduling.watchers.handler import WatcherSpec
from dagrunner.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Discovered:
    watchers: tuple[WatcherSpec, ...]
    problems: tuple[str, ...]  # one line each: a file that failed to import, a clash, an unknown trigger


def files_with_watchers(session: Session) -> list[str]:
    """DAG files whose last successful parse declared at least one asset watcher."""
    rows = session.execute(select(DagFile.path, DagFile.serialized).where(DagFile.serialized.is_not(None)))
    return sorted(path for path, serialized in rows if _mentions_watchers(serialized))


def _mentions_watchers(data: Any) -> bool:
    if isinstance(data, dict):
        if data.get("watchers"):
            return True
        return any(_mentions_watchers(v) for v in data.values())
    if isinstance(data, list):
        return any(_mentions_watchers(v) for v in data)
    return False


def discover(files: list[str], settings: Settings) -> Discovered:
    """Import `files` here and collect their watchers. Must run on the main thread (the import timeout
    is a SIGALRM)."""
    cache = DagCache(
        dags_folder=settings.dags_folder, plugins_folder=settings.plugins_folder,
        import_timeout_s=settings.dagbag_import_timeout,
    )  # fmt: skip
    found: dict[str, WatcherSpec] = {}
    problems: list[str] = []
    for path in files:
        try:
            dags = cache.dags_in(path)
        except Exception as exc:  # noqa: BLE001 - one broken file must not stop the other watchers
            problems.append(f"{path}: {exc}")
            continue
        module = sys.modules.get(module_name(os.path.abspath(path)))
        roots = [*vars(module).values()] if module is not None else []
        roots += [item for dag in dags.values() for item in _dag_assets(dag)]
        for asset in _assets(roots):
            for watcher in asset.watchers:
                spec = WatcherSpec(watcher.name, asset.name, watcher.trigger, path)
                problem = _problem(spec, found.get(watcher.name))
                if problem:
                    problems.append(problem)
                elif watcher.name not in found:
                    found[watcher.name] = spec
    return Discovered(tuple(found[name] for name in sorted(found)), tuple(problems))


def _problem(spec: WatcherSpec, earlier: WatcherSpec | None) -> str | None:
    if not isinstance(spec.trigger, MessageTrigger):
        return (f"{spec.fileloc}: watcher {spec.name!r} of asset {spec.asset!r} has trigger {spec.trigger!r}; "
                "use RedisStreamTrigger or RabbitMQTrigger from dagrunner.triggers")  # fmt: skip
    if earlier is None or (earlier.asset == spec.asset and earlier.trigger == spec.trigger):
        return None
    return (f"{spec.fileloc}: watcher name {spec.name!r} is used for asset {spec.asset!r} and, in "
            f"{earlier.fileloc}, for asset {earlier.asset!r}; watcher names must be unique (the first is kept)")  # fmt: skip


def _dag_assets(dag: Any) -> Iterator[Any]:
    for name in ("timetable", "schedule", "asset_condition"):
        value = getattr(dag, name, None)
        yield value
        yield getattr(value, "condition", None)
    for task in getattr(dag, "tasks", []):
        yield from getattr(task, "outlets", None) or []
        yield from getattr(task, "inlets", None) or []


def _assets(roots: list[Any]) -> Iterator[Any]:
    """Every asset (anything with `watchers` reached through `iter_assets()`) among `roots`, once each."""
    seen: set[int] = set()
    for root in roots:
        iter_assets = getattr(root, "iter_assets", None)
        if not callable(iter_assets) or isinstance(root, type):
            continue
        for asset in iter_assets():
            if id(asset) not in seen and getattr(asset, "watchers", None):
                seen.add(id(asset))
                yield asset
