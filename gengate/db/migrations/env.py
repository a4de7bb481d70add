"""Alembic environment: gengate always hands in an open connection (see gengate.db.engine)."""

from alembic import context

from gengate.db.models import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
