"""The browser tests reuse the two in-process agents of the agent tests."""

from tests.agent.conftest import agents, clock, letters, peer_resolver, second_database_url

__all__ = ["agents", "clock", "letters", "peer_resolver", "second_database_url"]
