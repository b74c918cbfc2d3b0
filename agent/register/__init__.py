"""The register of current provisions: which client has which devices under which indicatie.

A gemeente's agent keeps it to know, when a resident moves, what could move along. ``imports``
parses CSV and JSON imports (all or nothing, every bad row with its line); ``store`` replaces
clients by BSN and reads one client back for a handover; ``models`` are the records themselves.
"""

__all__: list[str] = []
