"""Server plumbing shared by the registry and the agents (their only shared, non-protocol code).

``api_rules`` builds FastAPI applications that follow the NL GOV API Design Rules (problem+json,
``API-Version``, security headers, body limits); ``migrations`` runs a service's Alembic
migrations (upgrade on start, offline SQL, drift checks); ``tls`` makes the server and client TLS
settings, including mutual TLS; ``deployment`` is production and development mode (what
production refuses, the warning of development, trusted proxies, private SQLite files);
``endpoints`` says which agent endpoints may be registered and called (https, no internal address
unless allow-listed); ``dutch`` writes dates as Dutch readers do, for pages and letters.
"""

__all__: list[str] = []
