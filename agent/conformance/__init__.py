"""A conformance kit for other vendors: plays the other party against any agent implementation.

``meeverhuizen conformance --target URL --role gemeente|supplier`` enrols the kit as a gemeente
in the registry the target uses (or in a registry of its own, started as a local process, in
which it enrols the target too), serves an endpoint that verifies and receipts what the target
sends, and sends the target protocol messages over HTTP: it checks the target's answers (a
gemeente's device decision and dossier offer, a supplier's order statuses and takeover prices),
the happy path with a signed receipt, a cancellation, exceptions with continued use, settlement
with a supplier of the kit's own, refusals the protocol names, duplicates and retries, and every
negative case of ``docs/protocol.md`` section 7 with its problem type. Results go to a JUnit XML
file and a readable HTML report (``docs/conformance.md``).
"""

__all__: list[str] = []
