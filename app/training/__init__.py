"""Adapter training: examples from QA files and the collection itself (:mod:`data`), the training
run and its attachment to the collection (:mod:`train`)."""
