"""The whole catalog schema: every table module imported, so ``Base.metadata`` holds every table.

The tables live beside what uses them (:mod:`indexing.catalog` the collections, documents, pages and
chunks; accounts, chats, evaluation runs, jobs and the lexical index in modules of their own), each
importing ``Base`` from :mod:`indexing.catalog`. Alembic's environment and the schema tests compare the
database against :data:`metadata`, so they import it from here.
"""

from __future__ import annotations

from indexing import account_catalog, chat_catalog, eval_catalog, job_catalog, lexical  # noqa: F401 - registers them
from indexing.catalog import Base

metadata = Base.metadata
TABLE_MODULES = (account_catalog, chat_catalog, eval_catalog, job_catalog, lexical)
