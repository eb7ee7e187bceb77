"""/api/v1 endpoints: audit."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["audit"])
