"""Keep the metadata DB in step with the DAG folder: `dag_file` rows are the loader's memory between
processes (so a CLI command re-imports only changed files), `dag` rows are what the scheduler and the
CLI list, pause and schedule.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from dagrunner import __version__
from dagrunner.loading.dagbag import DagBag, ParsedFile, RefreshReport
from dagrunner.loading.isolated_import import ImportFailure
from dagrunner.loading.serialization import declared_assets
from dagrunner.persistence.audit import record_event
from dagrunner.persistence.engine import session_scope
from dagrunner.persistence.models import Asset, AssetAlias, Dag, DagFile
from dagrunner.persistence.queries import lock_parse_results
from dagrunner.settings import Settings

PARSER_ACTOR = "dag-parser"


def make_dagbag(settings: Settings) -> DagBag:
    env = {k: v for k, v in os.environ.items() if k.startswith("DAGRUNNER_")}
    env["DAGRUNNER_HOME"] = str(settings.home)
    return DagBag(
        settings.dags_folder,
        plugins_folder=settings.plugins_folder,
        timeout_s=settings.dagbag_import_timeout,
        parallelism=settings.parallelism,
        env=env,
        salt=parse_salt(settings),
        memory_mb=settings.dagbag_import_memory_mb,
    )


def parse_salt(settings: Settings) -> str:
    """What besides a file's text changes its parse: the dagrunner version and the parse-time settings
    (the memory cap too: a file refused under a small cap is imported again once the cap is raised)."""
    return (
        f"{__version__}|{settings.create_cron_data_intervals}|{settings.default_timezone}"
        f"|{settings.dagbag_import_memory_mb}"
    )


def load_dagbag(settings: Settings, engine: Engine, *, actor: str = PARSER_ACTOR) -> DagBag:
    """The DAG folder as it is now: stored parse results for unchanged files, fresh imports for the rest."""
    bag = make_dagbag(settings)
    with session_scope(engine, readonly=True) as session:
        bag.seed(stored_files(session, bag))
    report = bag.refresh()
    if report.changed or not _dag_rows_exist(engine):
        with session_scope(engine) as session:
            write_parse_results(session, bag, report, actor=actor)
    return bag


def stored_files(session: Session, bag: DagBag) -> list[ParsedFile]:
    prefix = str(bag.dags_folder)
    rows = session.scalars(select(DagFile).where(DagFile.path.startswith(prefix))).all()
    return [_parsed_from_row(row) for row in rows]


def _parsed_from_row(row: DagFile) -> ParsedFile:
    failures = (ImportFailure.from_dict(json.loads(row.import_error)),) if row.import_error else ()
    dags = tuple((row.serialized or {}).values())
    return ParsedFile(
        row.path, row.file_hash, row.mtime, dags, failures, row.last_parsed, row.parse_duration or 0.0,
        row.import_output or "",
    )  # fmt: skip


def _dag_rows_exist(engine: Engine) -> bool:
    with session_scope(engine, readonly=True) as session:
        return session.scalars(select(Dag.dag_id).limit(1)).first() is not None


def write_parse_results(
    session: Session, bag: DagBag, report: RefreshReport, *, actor: str, now: datetime | None = None
) -> None:
    """Upsert the changed files, delete removed ones, and bring every `dag` row in line with the bag."""
    now = now or datetime.now(UTC)
    lock_parse_results(session)  # another scheduler may be writing the same new rows
    for path in report.parsed:
        parsed = bag.files[path]
        failure = parsed.failures[0] if parsed.failures else None
        session.merge(
            DagFile(
                path=path,
                file_hash=parsed.content_hash,
                mtime=parsed.mtime,
                serialized={d["dag_id"]: d for d in parsed.dags} or None,
                import_error=json.dumps(failure.to_dict()) if failure else None,
                last_parsed=parsed.parsed_at,
                parse_duration=parsed.duration_s,
                import_output=parsed.output or None,
            )
        )
    for path in report.removed:
        row = session.get(DagFile, path)
        if row is not None:
            session.delete(row)
    _sync_dag_rows(session, bag, actor=actor, now=now)


def _sync_dag_rows(session: Session, bag: DagBag, *, actor: str, now: datetime) -> None:
    existing = {row.dag_id: row for row in session.scalars(select(Dag))}
    for dag_id, dag in bag.dags.items():
        row = existing.get(dag_id)
        if row is None:
            row = Dag(dag_id=dag_id, is_paused=bool(dag.is_paused_upon_creation), fileloc=dag.fileloc)
            session.add(row)
            record_event(
                session, "dag.registered", actor=actor, dag_id=dag_id, when=now,
                detail={"fileloc": dag.fileloc, "paused": row.is_paused},
            )  # fmt: skip
        row.fileloc = dag.fileloc
        row.is_active = True
        row.schedule_description = dag.timetable_description
        row.tags = list(dag.tags)
        row.max_active_runs = dag.max_active_runs
        row.max_active_tasks = dag.max_active_tasks
        row.last_parsed = now
    for dag_id, row in existing.items():
        if dag_id not in bag.dags and row.is_active and row.fileloc.startswith(str(bag.dags_folder)):
            row.is_active = False
    _sync_asset_rows(session, bag, now=now)


def _sync_asset_rows(session: Session, bag: DagBag, *, now: datetime) -> None:
    """One `asset` / `asset_alias` row per asset and alias the loaded DAGs name, saying which DAGs consume
    it (schedule), which tasks produce it (outlets) and read it (inlets). Rows no DAG names any more are
    kept (their events stay) but marked inactive. The bag has already refused DAGs whose asset names and
    URIs disagree with another file's (an import error on their file), so names and URIs are consistent."""
    assets: dict[str, dict[str, Any]] = {}
    aliases: dict[str, dict[str, Any]] = {}
    for dag_id, dag in bag.dags.items():
        for how, node in declared_assets(dag.to_dict()):
            kind = node.get("type")
            entry = (assets if kind == "asset" else aliases).setdefault(
                node["name"], {"node": node, "fileloc": dag.fileloc, "consumers": set(), "producers": set(),
                               "readers": set()}
            )  # fmt: skip
            role, _, task_id = how.partition(":")
            entry[f"{role}s"].add(f"{dag_id}.{task_id}" if task_id else dag_id)
            if kind == "asset" and node.get("watchers") and not entry["node"].get("watchers"):
                entry["node"] = node  # the declaration with watchers describes the asset best
    existing = {row.name: row for row in session.scalars(select(Asset))}
    for name, entry in assets.items():
        node = entry["node"]
        row = existing.get(name)
        if row is None:
            other = session.scalars(select(Asset).where(Asset.uri == node["uri"])).first()
            if other is not None:  # the uri's old name is no longer declared: it takes the new one
                other.uri = f"{other.uri}#renamed-{other.id}"
                session.flush()
            row = Asset(name=name, uri=node["uri"], fileloc=entry["fileloc"])
            session.add(row)
        row.uri = node["uri"]
        row.group = node.get("group", "asset")
        row.extra = dict(node.get("extra") or {})
        row.watchers = list(node.get("watchers") or [])
        row.consumers, row.producers, row.readers = (sorted(entry[k]) for k in ("consumers", "producers", "readers"))
        row.is_active = True
        row.updated_at = now
    for name, row in existing.items():
        if name not in assets and row.is_active:
            row.is_active, row.consumers, row.producers, row.readers = False, [], [], []
            row.updated_at = now
    known = {row.name: row for row in session.scalars(select(AssetAlias))}
    for name, entry in aliases.items():
        alias = known.get(name) or AssetAlias(name=name)
        session.add(alias)
        alias.consumers, alias.producers = sorted(entry["consumers"]), sorted(entry["producers"])
        alias.is_active, alias.updated_at = True, now
    for name, alias in known.items():
        if name not in aliases and alias.is_active:
            alias.is_active, alias.consumers, alias.producers, alias.updated_at = False, [], [], now
