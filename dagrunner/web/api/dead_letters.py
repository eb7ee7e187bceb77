"""/api/v1 endpoints: dead letters."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["dead letters"])
