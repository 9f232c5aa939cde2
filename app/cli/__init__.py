"""The ``lloco`` command: a thin shell over the library (:mod:`app.cli.main` and its sub-commands)."""
