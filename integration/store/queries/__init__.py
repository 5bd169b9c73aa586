"""Every SQL statement of the service, each named once: one module of ``text()`` constants per
concern (inbox, mappings, failures, meters, scheduler, migrations).

Why Python constants rather than ``.sql`` files with ``-- name:`` blocks (procrastinate's way): a
misspelt query name fails at import, not at the first call; a query and the code that binds it are
one "go to definition" apart; and there is no loader or package data to keep in step with the
wheel. Each statement uses named binds (``:name``) and SQL that runs on SQLite and PostgreSQL alike
(``ON CONFLICT``, ``RETURNING``, ``CASE`` instead of two-argument ``MAX``, expanding ``IN`` lists
instead of ``json_each``), built with ``integration.store.types.text``, which declares the store's time
type on every time parameter and column (callers hand and get aware UTC datetimes). The few that
cannot be portable are dicts keyed by dialect name (``Database.dialect``), so PostgreSQL adds its entry
beside SQLite's, and say so where they stand.
"""
