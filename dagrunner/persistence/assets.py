"""Reads about assets for the CLI (and later the web): what `dagrunner assets list|events` show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dagrunner.persistence.models import Asset, AssetAlias, AssetEvent, DagRunAssetEvent


@dataclass(frozen=True)
class AssetView:
    name: str
    uri: str
    group: str
    consumers: list[str]
    producers: list[str]
    readers: list[str]
    watchers: list[dict[str, Any]]
    events: int
    last_event: datetime | None
    kind: str = "asset"

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["last_event"] = self.last_event.isoformat() if self.last_event else None
        return data


@dataclass(frozen=True)
class AssetEventRow:
    id: int
    asset: str
    uri: str
    timestamp: datetime
    extra: dict[str, Any]
    source: dict[str, Any]
    alias: str | None
    triggered_runs: int

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["timestamp"] = self.timestamp.isoformat()
        return data


def list_assets(session: Session) -> list[AssetView]:
    """Every active asset (then alias) by name, with its event count and last event time."""
    stats = dict(
        (asset_id, (count, last))
        for asset_id, count, last in session.execute(
            select(AssetEvent.asset_id, func.count(), func.max(AssetEvent.timestamp)).group_by(AssetEvent.asset_id)
        )
    )
    views = [
        AssetView(
            row.name,
            row.uri,
            row.group,
            list(row.consumers),
            list(row.producers),
            list(row.readers),
            list(row.watchers),
            *stats.get(row.id, (0, None)),
        )  # fmt: skip
        for row in session.scalars(select(Asset).where(Asset.is_active).order_by(Asset.name))
    ]
    views += [
        AssetView(row.name, "", "", list(row.consumers), list(row.producers), [], [], 0, None, kind="alias")
        for row in session.scalars(select(AssetAlias).where(AssetAlias.is_active).order_by(AssetAlias.name))
    ]
    return views


def list_events(session: Session, name: str | None = None, *, limit: int = 50) -> list[AssetEventRow]:
    """The newest `limit` events (of asset `name`, by name or URI, when given), newest first."""
    runs = (
        select(func.count())
        .select_from(DagRunAssetEvent)
        .where(DagRunAssetEvent.event_id == AssetEvent.id)
        .scalar_subquery()
    )
    query = select(AssetEvent, Asset.name, Asset.uri, runs).join(Asset, Asset.id == AssetEvent.asset_id)
    if name is not None:
        query = query.where((Asset.name == name) | (Asset.uri == name))
    rows = session.execute(query.order_by(AssetEvent.id.desc()).limit(limit)).all()
    return [
        AssetEventRow(
            event.id, asset, uri, event.timestamp, dict(event.extra), dict(event.source), event.alias, int(count)
        )  # fmt: skip
        for event, asset, uri, count in rows
    ]


def asset_exists(session: Session, name: str) -> bool:
    return session.scalars(select(Asset.id).where((Asset.name == name) | (Asset.uri == name))).first() is not None
