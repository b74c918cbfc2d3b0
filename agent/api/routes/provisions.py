"""Import into the register of current provisions (CSV or JSON; all or nothing)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from agent.api.deps import CaseSystemDep, ServiceDep
from agent.api.problems import BODY_TOO_LARGE, INVALID_INPUT, problem_responses
from agent.errors import ImportFailed, MediaTypeUnsupported, Unauthorised
from agent.register.models import ImportResult

__all__ = ["import_provisions", "router"]

router = APIRouter(tags=["provisions"], dependencies=[CaseSystemDep])

_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        },
    }
}


@router.post(
    "/provisions/imports",
    status_code=201,
    openapi_extra=_IMPORT_BODY,
    responses=problem_responses(
        ImportFailed, INVALID_INPUT, Unauthorised, BODY_TOO_LARGE, MediaTypeUnsupported
    ),
)
async def import_provisions(request: Request, service: ServiceDep) -> ImportResult:
    """Import clients with devices; every bad row is reported and nothing is applied."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ("text/csv", "application/json"):
        raise MediaTypeUnsupported("send text/csv or application/json")
    return await service.import_provisions(
        await request.body(), "csv" if media_type == "text/csv" else "json"
    )
