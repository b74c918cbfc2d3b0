"""One router per registry resource."""

__all__: list[str] = []
