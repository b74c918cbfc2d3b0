"""A simulated year of moves over every gemeente (``meeverhuizen simulate``)."""

__all__: list[str] = []
