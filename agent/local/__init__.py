"""A whole network on one machine: the demo, a registry and agents as local processes, a BRP.

``network`` starts a registry and agents as real ``meeverhuizen ... serve`` processes on
127.0.0.1 and enrols them; ``demo`` runs a handover through them end to end, with
``demo_consent`` and ``demo_suppliers`` playing the client and the suppliers' planners;
``brp_simulator`` plays the BRP (pushed events and a feed); ``synthetic`` makes register clients
for tests and benchmarks. The service itself never imports
this package.
"""

__all__: list[str] = []
