"""BRP events: a move in the population register starts, asks for or stops a handover.

``events`` checks CloudEvents as the BRP publishes them (pushed to the agent or read from a feed,
``feed``); ``handling`` stores each once and acts on it; ``requests`` takes a receiving
gemeente's request for the dossier of a move this gemeente missed.
"""

__all__: list[str] = []
