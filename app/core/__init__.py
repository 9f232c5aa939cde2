"""The service core: :class:`app.core.service.LlocoService` (the one door for the UI, CLI and API,
holding no SQL), the answer modes on one template method, citations, expansion, conversations."""
