"""HTTP API of the registry: dependencies and one router per resource."""

__all__: list[str] = []
