"""/api/v1 endpoints: assets."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["assets"])
