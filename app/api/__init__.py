"""The HTTP front door: the REST API and the OpenAI-compatible endpoints (:mod:`app.api.app`), the
server that runs them (:mod:`app.api.server`) and the CLI's way to a running one (:mod:`app.api.local`)."""
