"""The declarative base of every table of the agent: naming convention, UTC times, JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    LargeBinary,
    MetaData,
)
from sqlalchemy.orm import DeclarativeBase

from registry.server_kit.migrations import NAMING_CONVENTION, UtcDateTime

__all__ = ["Base"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
        bytes: LargeBinary,
    }
