"""The problem+json answers of each route, described in the OpenAPI document (ADR API-46/47).

Routes list the errors they can raise with :func:`problem_responses`; the document itself is
finished by the shared :mod:`registry.server_kit.openapi` (one ``Problem`` schema, no 422).
"""

from __future__ import annotations

from registry.server_kit.openapi import (
    BODY_TOO_LARGE,
    INVALID_INPUT,
    ProblemKind,
    ProblemSource,
    problem_responses,
)

__all__ = [
    "BODY_TOO_LARGE",
    "INVALID_INPUT",
    "ProblemKind",
    "ProblemSource",
    "problem_responses",
]
