"""Durable jobs: the catalog's job rows (:mod:`store`), settling, cancelling and recovering them
(:mod:`lifecycle`), the in-process queue (:mod:`runner`), what each kind does (:mod:`handlers`) and
the worker that runs them (:mod:`worker`)."""
