"""Storage: every table of the agent, the engine and its transactions, and the schema migrations.

``tables`` holds the schema (a package imported as one, which the migrations describe);
``database`` the engine, ``Database.transaction`` and ``Database.reading``, and the Alembic
migrations of the schema (``MIGRATIONS``, revisions in ``_migrations/``); ``claims`` how several
replicas on one PostgreSQL database claim due work without doing it twice; ``registry_answers``
keeps the registry client's verified answers across restarts; ``polling`` lets a periodic job
skip its poll while nothing it serves can be due.
Nothing here knows a dossier's rules.
"""

__all__: list[str] = []
