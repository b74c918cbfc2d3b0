"""Meeverhuizen registry: who is where, with which keys, and which supplier a gemeente contracted."""

__all__: list[str] = []
