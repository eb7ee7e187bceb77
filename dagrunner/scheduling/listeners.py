"""Listener plugins: modules in `plugins/` with Airflow's listener hook functions, called by the relay.

A module of the plugins folder that defines (at top level) any of `HOOKS` is a listener; it is imported
by the relay process only (never by the scheduler loop), and its hooks are called for the published
events, in outbox order, with plain data in Airflow's argument names:

    on_task_instance_running(previous_state, task_instance)
    on_task_instance_success(previous_state, task_instance)
    on_task_instance_failed(previous_state, task_instance, error)
    on_dag_run_running(dag_run, msg) / on_dag_run_success(dag_run, msg) / on_dag_run_failed(dag_run, msg)
    on_asset_changed(asset)

A hook may declare fewer of these parameters (by name) and gets only those.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dagrunner.persistence.outbox import OutboxEvent

log = logging.getLogger(__name__)

#: CloudEvent type -> the hook it calls.
HOOK_OF_TYPE: Mapping[str, str] = {
    "dagrunner.task_instance.running": "on_task_instance_running",
    "dagrunner.task_instance.succeeded": "on_task_instance_success",
    "dagrunner.task_instance.failed": "on_task_instance_failed",
    "dagrunner.dag_run.running": "on_dag_run_running",
    "dagrunner.dag_run.succeeded": "on_dag_run_success",
    "dagrunner.dag_run.failed": "on_dag_run_failed",
    "dagrunner.asset.updated": "on_asset_changed",
}
HOOKS = frozenset(HOOK_OF_TYPE.values())


@dataclass(frozen=True)
class TaskInstanceInfo:
    """What a task-instance hook gets as `task_instance` (Airflow's attribute names, plain values)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int | None
    state: str
    event_id: str
    time: datetime


@dataclass(frozen=True)
class DagRunInfo:
    """What a DAG-run hook gets as `dag_run`."""

    dag_id: str
    run_id: str
    state: str
    event_id: str
    time: datetime


@dataclass(frozen=True)
class AssetInfo:
    """What `on_asset_changed` gets as `asset`: the asset and the event that changed it."""

    name: str
    uri: str | None
    extra: Mapping[str, Any] | None
    asset_event_id: int | None
    source: Mapping[str, Any] | None
    event_id: str
    time: datetime


class ListenerError(Exception):
    """A hook raised; the message names the module, the hook and the error."""


@dataclass(frozen=True)
class Listener:
    module: str
    hooks: Mapping[str, Callable[..., Any]]


def find_listeners(plugins_folder: Path | None) -> tuple[list[Listener], list[str]]:
    """Import the listener modules of the plugins folder: (listeners, one line per module that failed)."""
    if plugins_folder is None or not plugins_folder.is_dir():
        return [], []
    listeners, failures = [], []
    for path in sorted(plugins_folder.glob("*.py")):
        if path.name.startswith("_") or not _defines_a_hook(path):
            continue
        try:
            module = _import(path, plugins_folder)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, the others still work
            failures.append(f"{path}: import failed: {type(exc).__name__}: {exc}")
            continue
        hooks = {name: getattr(module, name) for name in HOOKS if callable(getattr(module, name, None))}
        listeners.append(Listener(path.stem, hooks))
    return listeners, failures


def _defines_a_hook(path: Path) -> bool:
    """Read, not import: only modules that define a hook are imported by the relay."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return "def on_" in path.read_text(errors="replace")  # import it to report the error
    return any(isinstance(n, ast.FunctionDef) and n.name in HOOKS for n in tree.body)


def _import(path: Path, folder: Path) -> Any:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))  # as for DAG files: a plugin may import its neighbours
    name = f"dagrunner_listener_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def arguments(event: OutboxEvent) -> dict[str, Any]:
    """Every argument any hook of the event's type may take, by Airflow's names."""
    d = event.data
    if event.type == "dagrunner.asset.updated":
        source = d.get("source")
        asset = AssetInfo(d.get("asset") or event.subject, d.get("uri"), d.get("extra"), d.get("asset_event_id"),
                          source if isinstance(source, dict) else None, event.event_id, event.time)  # fmt: skip
        return {"asset": asset}
    if event.type.startswith("dagrunner.dag_run."):
        run = DagRunInfo(d["dag_id"], d["run_id"], d["new_state"], event.event_id, event.time)
        return {"dag_run": run, "msg": d.get("reason") or ""}
    ti = TaskInstanceInfo(d["dag_id"], d["run_id"], d["task_id"], d["map_index"], d.get("try_number"),
                          d["new_state"], event.event_id, event.time)  # fmt: skip
    return {"previous_state": d.get("old_state"), "task_instance": ti, "error": d.get("reason")}


def call_hooks(listeners: list[Listener], event: OutboxEvent) -> None:
    """Call each listener's hook for the event, in module order; ListenerError at the first that raises."""
    hook_name = HOOK_OF_TYPE.get(event.type)
    if hook_name is None:
        return
    args = arguments(event)
    for listener in listeners:
        hook = listener.hooks.get(hook_name)
        if hook is None:
            continue
        try:
            hook(**_accepted(hook, args))
        except Exception as exc:  # noqa: BLE001 - user code: any error is reported, none escapes
            raise ListenerError(f"{listener.module}.{hook_name} raised {type(exc).__name__}: {exc}") from exc


def _accepted(hook: Callable[..., Any], args: Mapping[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return dict(args)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(args)
    return {name: value for name, value in args.items() if name in params}
