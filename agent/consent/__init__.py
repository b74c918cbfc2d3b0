"""Consent: the client decides what moves along and which data go to whom.

``flow`` asks for consent when a dossier starts and records the answer (the offer goes out with
consent); ``unanswered`` reminds, hands an unanswered request to a consulent and lets it expire;
``notices``
and ``channels`` bring the personal link by letter, e-mail or SMS; ``links`` exchanges a link for
a page session; ``page`` is what the client's pages show, and ``progress`` what they say per device
after the decision; ``withdrawal`` tells every recipient of the client's data to stop.
"""

__all__: list[str] = []
