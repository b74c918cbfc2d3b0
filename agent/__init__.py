"""Meeverhuizen agent: one per organisation, hands dossiers over durably."""

__all__: list[str] = []
