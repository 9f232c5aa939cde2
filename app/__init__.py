"""The service layer (collections, ingestion, ask, models) and the ``lloco`` CLI."""
