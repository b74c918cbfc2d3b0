"""Delivery: the outbox, from the transaction that queues a message to its signed receipt.

``outgoing`` builds this agent's protocol messages and back-office CloudEvents and queues them
in the caller's transaction; ``outbox`` signs and delivers them after the commit (at least once,
in order per stream, with retries and dead letters); ``attempts`` decides what one attempt's
answer means; ``cloudevents`` shapes the back-office events.
"""

__all__: list[str] = []
