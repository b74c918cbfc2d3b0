"""The dossier core: a move of one client, seen from one side, through its states.

``dossiers`` starts, changes, cancels and shows dossiers (the state machine is ``states``);
``departing`` sends the offer once the client consented and takes the receiving gemeente's
decision; ``receiving`` turns an offer into a decision per device (``policy``) and a continued
provision; ``inbound`` verifies, stores and applies every signed message, and ``progress``
reads back the receiving gemeente's progress per device; ``tasks`` and ``deadlines`` hand work
to people and to time; ``processing_log`` records every processing of a person's data. The core
knows no capability: consent, the supplier side and BRP events register their message handlers,
hooks and jobs in ``hooks``.
"""

__all__: list[str] = []
