"""/api/v1 endpoints: approvals."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["approvals"])
