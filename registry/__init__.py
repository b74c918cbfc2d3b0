"""Meeverhuizen registry: who is where, with which keys, and which suppliers are contracted."""

__all__: list[str] = []
