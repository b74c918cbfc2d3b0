"""The supplier side of a move: takeover orders, departure notices, the planner and settlement.

A gemeente's agent places takeover orders with its contracted suppliers and follows them
(``orders``, their bodies in ``order_bodies``), passes what the client would notice of them on
to the departing gemeente (``progress``) and tells its own supplier that a device leaves the
contract (``notices``) or stays in use (``continued_use``). A supplier's agent takes orders and
notices in, lets its planner record contact and takeover and keeps the contact deadlines
(``desk``), stops what the gemeente stops (``stops``), and settles the takeover price with the
other supplier (``settlement``).
"""

__all__: list[str] = []
