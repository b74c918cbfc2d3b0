"""A whole network on one machine: the demo, a registry and agents as local processes, a BRP.

``network`` starts a registry and agents as real ``meeverhuizen ... serve`` processes on
127.0.0.1 and enrols them; ``demo`` runs one scenario of a move through them end to end;
``scenarios`` holds the scenarios as data and ``scenario_steps`` the steps of the outside world
(``demo_consent`` plays the client on the page); ``outcomes`` reads from the agents where each
device ended and who acts next; ``brp_simulator`` plays the BRP (pushed events and a feed);
``synthetic`` makes register clients for tests and benchmarks. The service itself never imports
this package.
"""

__all__: list[str] = []
