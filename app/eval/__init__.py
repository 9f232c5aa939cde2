"""Evaluation: answer metrics (``metrics``), dataset readers (``datasets``), what each set asks
(``tasks``), the runner (``runner``), stored runs (``store``) and reports (``report``, ``plots``)."""
