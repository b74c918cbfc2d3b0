"""The daily report: this organisation's counts for one day, signed and sent to the registry.

Owns the counting (``figures``: handovers, days without a device, deadlines, open tasks, from
the agent's own tables; never a person) and the daily job that sends them (``reporting``).
"""

__all__: list[str] = []
