"""What the outside world does after the decision, as calls a demo scenario can make.

Each function is one action of a person at an agent, through the agent's API with the case
system's token: the receiving gemeente's case worker reports that the alternative for an
excepted device is delivered. A scenario of an exception calls it after the days it lets pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import httpx

__all__ = ["AlternativeNotReported", "report_alternative_delivered"]


class AlternativeNotReported(RuntimeError):
    """The receiving agent refused the report (no such exception, or reported before)."""


async def report_alternative_delivered(
    http: httpx.AsyncClient,
    receiving_base_url: str,
    headers: Mapping[str, str],
    *,
    dossier_id: str,
    device_id: str,
    delivered_on: date,
    done_by: str = "consulent",
) -> dict[str, Any]:
    """The case worker at the receiving gemeente reports the alternative delivered."""
    answer = await http.post(
        f"{receiving_base_url.rstrip('/')}/v1/dossiers/{dossier_id}/devices/{device_id}"
        "/alternative-delivered",
        json={"deliveredOn": delivered_on.isoformat(), "doneBy": done_by},
        headers=dict(headers),
    )
    if answer.status_code != 200:
        raise AlternativeNotReported(f"{answer.status_code}: {answer.text}")
    view: dict[str, Any] = answer.json()
    return view
