"""Placeholder router, filled by the allocation-beyond-one-batch work (issue #16)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
