"""Every werkbak route in one router, and its stylesheet."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Response

from agent.web.werkbak import consulent, operator, planner, settlements, sign_in

__all__ = ["router", "stylesheet"]

router = APIRouter(include_in_schema=False)
for module in (sign_in, consulent, planner, settlements, operator):
    router.include_router(module.router)


@cache
def _css() -> bytes:
    return resources.files("agent").joinpath("web/static/werkbak.css").read_bytes()


@router.get("/werkbak/werkbak.css")
async def stylesheet() -> Response:
    """The werkbak's one stylesheet."""
    return Response(
        _css(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )
