"""After the decision: what happens with each device until it is with a named person.

The receiving gemeente tasks a person with the alternative for every exception and with the
need behind every fixed device, and writes to the client (``receiving``, ``letters``); a
consulent may change the decision for a device not yet taken over (``override``); the
ownership of a bruikleen device moves between the gemeenten (``transfer``); after the takeover
the client is in the receiving register, the departing gemeente ends its beschikking and both
tell their back office what to report to the CAK (``administration``).
"""

__all__: list[str] = []
