"""The typed page envelope, so /api/v1/openapi.json describes each list's items (`deps.Paging.page` builds it)."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: `items` from `offset` on, at most `limit` of them, out of `total`."""

    items: list[T]
    total: int
    limit: int
    offset: int
