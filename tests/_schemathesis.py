"""Schemathesis against a service's own OpenAPI document, every operation, reproducibly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Cases per operation, valid and invalid ones together: the run stays within the suite's budget.
MAX_EXAMPLES = 25


def schemathesis_failures(
    app: Any,
    *,
    headers: Mapping[str, str],
    checks: list[Callable[..., Any]],
    path_values: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    """The number of operations in ``app``'s document and the failures by operation.

    Each operation gets cases that follow its schema and cases that break it (schemathesis'
    positive and negative modes); ``path_values`` (by parameter name, case-insensitive) adds
    valid cases on resources that exist, so success answers are checked too.

    Sync on purpose: schemathesis runs the ASGI app (and its lifespan) on its own event loop.
    Every operation is run, and all failures are returned, not only the first.
    """
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    known = {name.lower(): value for name, value in (path_values or {}).items()}
    failures: dict[str, str] = {}
    for operation in operations:
        strategies = [
            operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
            operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
        ]
        names = [parameter.name for parameter in operation.path_parameters]
        existing = {name: known[name.lower()] for name in names if name.lower() in known}
        if existing:
            strategies.append(
                operation.as_strategy(
                    schemathesis.GenerationMode.POSITIVE, path_parameters=existing
                )
            )

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=MAX_EXAMPLES,
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
