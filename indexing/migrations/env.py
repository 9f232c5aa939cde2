"""Alembic environment: run with the connection lloco hands over (``indexing.catalog.upgrade``)."""

from alembic import context

from indexing.schema import metadata

target_metadata = metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run lloco's migrations through indexing.catalog.upgrade(engine)")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
