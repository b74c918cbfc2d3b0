"""Fails the test run when a test BSN appears in any log line (never a BSN in a log).

A root handler, installed at session start, formats every record of the whole run with the
production formatter (:class:`protocol.logs.JsonFormatter`) and looks for the valid BSNs of
``tests/data/bsn.json``. At session end a hit fails the run, even when every test passed.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from protocol.logs import JsonFormatter, quiet_parameter_loggers

__all__ = ["BsnLogScan", "pytest_sessionfinish", "pytest_sessionstart"]

_BSN_FILE = Path(__file__).parent / "data" / "bsn.json"
_NINE_DIGITS = re.compile(r"(?<![0-9])[0-9]{9}(?![0-9])")
_KEY = pytest.StashKey["BsnLogScan"]()


class BsnLogScan(logging.Handler):
    """Keeps the log lines that contain a test BSN."""

    def __init__(self, bsns: frozenset[str]) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.bsns = bsns
        self.hits: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted: scan its raw parts
            line = f"{record.msg} {record.args}"
        if any(number in self.bsns for number in _NINE_DIGITS.findall(line)):
            self.hits.append(line[:500])


def pytest_sessionstart(session: pytest.Session) -> None:
    bsns = frozenset(json.loads(_BSN_FILE.read_text(encoding="utf-8"))["valid"])
    scan = BsnLogScan(bsns)
    root = logging.getLogger()
    root.addHandler(scan)
    # Every record reaches the scan, with the loggers quieted as `serve` quiets them.
    root.setLevel(logging.DEBUG)
    quiet_parameter_loggers()
    session.stash[_KEY] = scan


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    scan = session.stash.get(_KEY, None)
    if scan is None:
        return
    logging.getLogger().removeHandler(scan)
    if not scan.hits:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"{len(scan.hits)} log line(s) contain a test BSN, e.g.:\n" + "\n".join(scan.hits[:5])
    if reporter is not None:
        reporter.write_sep("=", "BSN found in log output", red=True)
        reporter.write_line(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
