"""Evaluation building blocks: answer metrics (``metrics``) and dataset readers (``datasets``)."""
