"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no timestamp-with-time-zone and no JSONB, PostgreSQL has both; these types hide the difference
so that every model and every query is written once. Nothing here knows about dagrunner's tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Surrogate primary keys: BIGINT on PostgreSQL, but INTEGER on SQLite, where only `INTEGER PRIMARY KEY`
#: is an alias of the rowid and therefore auto-increments.
BigId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

#: JSON documents. JSONB on PostgreSQL (it has equality, so DISTINCT/GROUP BY over rows work); a Python
#: `None` is stored as SQL NULL, not as the JSON text 'null'. Mutating a stored dict in place is not
#: detected: assign a new value.
Json: TypeEngine[Any] = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in, an aware UTC datetime out, on every dialect.

    PostgreSQL stores `timestamptz`; SQLite stores the UTC wall time as text (which sorts correctly
    because every value is UTC). A naive datetime is refused rather than guessed at: naive times are how
    schedulers end up an hour off twice a year.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__} {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to a UTC column; "
                "pass an aware datetime (e.g. dagrunner.clock.utcnow())"
            )
        utc = value.astimezone(UTC)
        # Rebuild as a plain datetime: pendulum and other subclasses are not adapted by every driver.
        plain = datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, UTC)
        return plain.replace(tzinfo=None) if dialect.name == "sqlite" else plain

    def process_result_value(self, value: datetime | None, _dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A `StrEnum` stored as its value in a VARCHAR, read back as the enum member.

    Deliberately not a native ENUM or a CHECK constraint: adding a state later is then a code change,
    not a table rebuild on SQLite. Unknown values are refused when written and when read.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_cls: type[E], length: int = 20) -> None:
        super().__init__(length)
        self.enum_cls = enum_cls

    def process_bind_param(self, value: E | str | None, _dialect: Dialect) -> str | None:
        if value is None:
            return None
        return self.enum_cls(value).value

    def process_result_value(self, value: str | None, _dialect: Dialect) -> E | None:
        if value is None:
            return None
        member = self.enum_cls._value2member_map_.get(value)  # the enum call per row showed up in profiles
        return member if member is not None else self.enum_cls(value)  # type: ignore[return-value]

    @property
    def python_type(self) -> type[E]:
        return self.enum_cls
