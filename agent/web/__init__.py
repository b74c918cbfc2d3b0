"""Templates and style of the client's consent and status pages (issue 6)."""

__all__: list[str] = []
