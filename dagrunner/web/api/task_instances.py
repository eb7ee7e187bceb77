"""/api/v1 endpoints: task instances."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["task instances"])
