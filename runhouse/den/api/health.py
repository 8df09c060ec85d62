"""``GET /v1/health``: liveness and version, without a token (and without the database)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from runhouse._version import __version__

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Den answers, and which runhouse it runs."""

    status: Literal["ok"]
    version: str


@router.get("/v1/health", response_model=Health)
async def health() -> Health:
    """Den is up."""
    return Health(status="ok", version=__version__)
