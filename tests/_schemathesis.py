"""Schemathesis against a service's own OpenAPI document, every operation, reproducibly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings


def schemathesis_failures(
    app: Any, *, headers: Mapping[str, str], checks: list[Callable[..., Any]]
) -> tuple[int, dict[str, str]]:
    """The number of operations in ``app``'s document and the failures by operation.

    Sync on purpose: schemathesis runs the ASGI app (and its lifespan) on its own event loop.
    Every operation is run, and all failures are returned, not only the first.
    """
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=dict(headers), checks=checks)

        try:
            exercise()
        except Exception as exc:  # every operation's failures, then report them all
            failures[operation.label] = str(exc)[:2000]
    return len(operations), failures
