"""A conformance kit for other vendors: plays the other party against any agent implementation.

``meeverhuizen conformance --target URL --role gemeente|supplier`` enrols the kit as a gemeente
in the registry the target uses, sends the target protocol messages over HTTP and checks every
answer: the happy path with a signed receipt, duplicates and retries, and every negative case of
``docs/protocol.md`` section 7 with its problem type. Results go to a JUnit XML file and a
readable HTML report (``docs/conformance.md``).
"""

__all__: list[str] = []
