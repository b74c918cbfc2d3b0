"""The consulent's work on dossiers: the worklist, search, the case file and actions with a reason.

``work`` reads and changes dossiers on behalf of a named person (a werkbak user): every look-up
of a client's data is a processing log record with that person as actor, every action is a line
in the dossier's timeline with its reason.
"""

__all__: list[str] = []
