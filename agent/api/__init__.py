"""The agent's HTTP API: one router per resource under ``routes``."""

__all__: list[str] = []
