"""The base of every shape in the agent's own API: camelCase on the wire, strict, frozen."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["ApiModel", "DeviceId"]

DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class ApiModel(BaseModel):
    """Base of the agent API models: camelCase on the wire, unknown fields refused.

    ``from_attributes``: a view is made straight from its table row (``View.model_validate(row)``),
    so a row's fields are listed once, in the view.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        from_attributes=True,
    )
