"""Alembic's environment: the revisions run on the connection ``integration migrate`` hands over, inside
its transaction, which already holds the migration lock (integration/store/migrate.py). There is no URL
here on purpose: run migrations with ``integration migrate``, never ``alembic upgrade`` alone."""
from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run the migrations with `integration migrate` (DATABASE_URL), not with alembic itself")
context.configure(connection=connection)
with context.begin_transaction():  # inside the caller's transaction: Alembic begins and commits nothing
    context.run_migrations()
