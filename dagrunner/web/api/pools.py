"""/api/v1 endpoints: pools."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["pools"])
