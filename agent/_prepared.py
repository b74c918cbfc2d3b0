"""Prepared statements: Core statements of the handover path, run straight on ``sqlite3``.

SQLAlchemy spends 30 to 50 microseconds around every statement it executes (execution context,
parameter and result objects, events), several times what SQLite needs for a primary-key lookup or
a one-row INSERT on a WAL database. A statement marked with :func:`prepared` is compiled by
SQLAlchemy once per set of parameter names, with SQLAlchemy's own bind and result processors of
each column type, and then executed on the session's ``sqlite3`` connection directly: the same
SQL, the same stored values, the same rows, inside the same transaction.

What this path does not do, SQLAlchemy keeps doing: a statement that is not prepared, one with
an expanding ``IN`` parameter or a column default that is computed per row, and every statement on
PostgreSQL go through ``Connection.execute`` as before. Errors are SQLAlchemy's (``IntegrityError``
and so on). Connection events (``before_cursor_execute``) do not see prepared statements.
"""

from __future__ import annotations

import keyword
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import ScalarElementColumnDefault

__all__ = ["Rows", "prepared", "run_on_driver", "run_prepared"]

_Statement = TypeVar("_Statement", bound=Executable)
_Processor = Callable[[Any], Any] | None

# id of the statement -> the statement (kept alive, so its id is never reused).
_PREPARED: dict[int, Executable] = {}
# (id of the statement, parameter names) -> plan, or None when the statement must go through
# SQLAlchemy.
_PLANS: dict[tuple[int, tuple[str, ...]], _Plan | None] = {}


def prepared(statement: _Statement) -> _Statement:
    """Mark a statement built once (at import) for the direct path; returns it unchanged."""
    _PREPARED[id(statement)] = statement
    return statement


class Rows:
    """The rows of a prepared SELECT (attribute access by column key), as a ``Result`` offers."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> Sequence[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None


_NO_ROWS = Rows(())


@dataclass(frozen=True)
class _Plan:
    sql: str
    # Per positional parameter: its name, its bind processor, and its fixed value when the
    # statement itself holds it (a literal, a scalar column default).
    names: tuple[str, ...]
    processors: tuple[_Processor, ...]
    fixed: Mapping[str, Any]
    row: Callable[..., Any] | None
    results: tuple[_Processor, ...]


def run_prepared(connection: Connection, statement: Executable, parameters: Any) -> Rows | None:
    """Run a prepared statement on the connection's ``sqlite3`` connection; None: not prepared
    (or not suited), run it through SQLAlchemy instead."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return run_on_driver(driver, connection.dialect, statement, parameters)


def run_on_driver(
    driver: sqlite3.Connection, dialect: Dialect, statement: Executable, parameters: Any
) -> Rows | None:
    """:func:`run_prepared` on a ``sqlite3`` connection of an engine with this dialect."""
    if id(statement) not in _PREPARED:
        return None
    many = isinstance(parameters, list)
    rows: Sequence[Mapping[str, Any]] = parameters if many else [parameters or {}]
    if not rows:
        return _NO_ROWS
    key = (id(statement), tuple(sorted(rows[0])))
    if key not in _PLANS:
        _PLANS[key] = _plan(statement, key[1], dialect)
    plan = _PLANS[key]
    if plan is None:
        return None
    values = [_positional(plan, row) for row in rows]
    try:
        if many:
            driver.executemany(plan.sql, values)
            return _NO_ROWS
        cursor = driver.execute(plan.sql, values[0])
        if plan.row is None:
            return _NO_ROWS
        return Rows([_result(plan, found) for found in cursor.fetchall()])
    except sqlite3.Error as exc:
        raise DBAPIError.instance(plan.sql, parameters, exc, sqlite3.Error) from exc


def _positional(plan: _Plan, given: Mapping[str, Any]) -> tuple[Any, ...]:
    values = []
    for name, processor in zip(plan.names, plan.processors, strict=True):
        value = given[name] if name in given else plan.fixed[name]
        # As SQLAlchemy does: a processor sees None too (JSON writes it as JSON null).
        values.append(value if processor is None else processor(value))
    return tuple(values)


def _result(plan: _Plan, found: tuple[Any, ...]) -> Any:
    assert plan.row is not None
    return plan.row(
        *(
            value if processor is None else processor(value)
            for processor, value in zip(plan.results, found, strict=True)
        )
    )


def _plan(statement: Executable, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
    if not isinstance(statement, ClauseElement):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
        return None
    fixed: dict[str, Any] = {}
    names: list[str] = []
    processors: list[_Processor] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding:
            return None
        if name not in keys:
            if bind.callable is not None or bind.required:
                return None
            fixed[name] = bind.value
        names.append(name)
        processors.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
    # Defaults SQLAlchemy computes before an INSERT or UPDATE: only fixed ones are taken along.
    for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:
        default = column.default if compiled.isinsert else column.onupdate
        if not isinstance(default, ScalarElementColumnDefault):
            return None
        fixed[column.key] = default.arg
    row: Callable[..., Any] | None = None
    results: tuple[_Processor, ...] = ()
    if isinstance(statement, Select):
        columns = list(statement.selected_columns)
        labels = [str(column.key) for column in columns]
        if len(set(labels)) != len(labels) or not all(_field_name(label) for label in labels):
            return None
        row = _row_type(labels)
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
    elif compiled.returning:
        return None
    return _Plan(compiled.string, tuple(names), tuple(processors), fixed, row, results)


def _row_type(labels: list[str]) -> Callable[..., Any]:
    # A named tuple: rows as light as the raw ones, columns by attribute, as SQLAlchemy's Row.
    return namedtuple("Row", labels)


def _field_name(label: str | None) -> bool:
    if not label or not label.isidentifier() or keyword.iskeyword(label):
        return False
    return not label.startswith("_")
